"""SFT of every adapter type on a real micro Qwen3: PEFT-exact output, curves, data errors."""

from __future__ import annotations

import json
import re

import pytest
from safetensors import safe_open

from expertpm._errors import UserError
from expertpm_forge.tokenizer import DEFAULT_PROMPT_TEMPLATE, load_tokenizer
from expertpm_forge.train import (
    AdapterSpec, Records, TrainConfig, TrainConfigError, TrainingDataError, load_adapter, load_base, train_sft,
)
from expertpm_forge.train.data import IGNORE, encode_sft
from expertpm_testing.forge_train import topic_records

QUICK = TrainConfig(max_steps=3, batch_size=4, max_length=64, warmup_steps=1, checkpoint_every=0)
TENSOR_MARK = {"lora": "lora_A.weight", "dora": "lora_magnitude_vector", "ia3": "ia3_l", "prompt": "prompt_embeddings"}
PEFT_TYPE = {"lora": "LORA", "dora": "LORA", "ia3": "IA3", "prompt": "PROMPT_TUNING"}


@pytest.mark.parametrize("kind", ["lora", "dora", "ia3", "prompt"])
def test_sft_writes_a_peft_adapter_directory(kind, micro_base, tmp_path):
    result = train_sft(micro_base, topic_records(12, seed=0), tmp_path / "run", adapter=AdapterSpec(type=kind, num_virtual_tokens=4),
                       config=QUICK, base_name="micro-base")
    assert result.completed and result.steps == 3
    assert sorted(p.name for p in result.output.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    config = json.loads((result.output / "adapter_config.json").read_text())
    assert config["peft_type"] == PEFT_TYPE[kind] and config["base_model_name_or_path"] == "micro-base"
    assert config.get("use_dora", False) == (kind == "dora")
    with safe_open(str(result.output / "adapter_model.safetensors"), framework="pt") as fh:
        names = list(fh.keys())
    assert any(TENSOR_MARK[kind] in name for name in names), names
    if kind != "prompt":
        assert all(name.startswith("base_model.model.model.layers.") for name in names)

    model, _ = load_base(micro_base)
    reloaded = load_adapter(model, result.output, trainable=False)  # PEFT itself can read it back
    assert reloaded.active_peft_config.peft_type.value == PEFT_TYPE[kind]
    assert not (tmp_path / "run" / "checkpoint").exists()  # removed once the run completed


def test_sft_saves_loss_curve_and_summary(micro_base, tmp_path):
    result = train_sft(micro_base, topic_records(16, seed=0), tmp_path / "run", config=QUICK)
    log = json.loads(result.curve["json"].read_text())
    assert [e["step"] for e in log] == [1, 2, 3] and all(e["loss"] > 0 for e in log)
    assert result.curve["csv"].read_text().splitlines()[0] == "step,loss,lr,tokens,epoch"
    assert result.curve["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["method"] == "sft" and summary["steps"] == 3 and summary["examples"] == 16
    assert summary["adapter"]["type"] == "lora" and len(summary["base"]["weights_sha256"]) == 64


def test_loss_is_taken_on_the_completion_only(forge_tokenizer_dir):
    tok = load_tokenizer(forge_tokenizer_dir)
    records = Records.coerce([{"prompt": "Topic of: a cat", "completion": "animal"}])
    (example,) = encode_sft(records, tok, DEFAULT_PROMPT_TEMPLATE, 64, eos_id=tok.eos_token_id)
    prompt_len = len(tok(DEFAULT_PROMPT_TEMPLATE.replace("{prompt}", "Topic of: a cat"), add_special_tokens=False)["input_ids"])
    completion = tok("animal", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert example.labels == [IGNORE] * prompt_len + completion
    assert example.input_ids[prompt_len:] == completion


def test_record_longer_than_the_context_is_named(micro_base, tmp_path):
    data = tmp_path / "data.jsonl"
    rows = [{"prompt": "Topic of: a cat", "completion": "animal"}] * 2 + [{"prompt": "hi", "completion": "word " * 80}]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(TrainingDataError) as info:
        train_sft(micro_base, data, tmp_path / "run", config=QUICK)
    message = str(info.value)
    assert f"{data}:3" in message and "max_length is 64" in message
    total, prompt, completion = map(int, re.search(r"record is (\d+) tokens \(prompt (\d+) \+ completion (\d+)\)", message).groups())
    assert total == prompt + completion > 64 and completion > 80
    assert "raise train.max_length (the base's context is 256)" in message


def test_bad_training_data_is_a_clear_error(micro_base, tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": \n')
    with pytest.raises(TrainingDataError, match=r"data.jsonl:2: invalid JSON"):
        train_sft(micro_base, data, tmp_path / "run", config=QUICK)
    data.write_text('{"prompt": "a", "answer": "b"}\n')
    with pytest.raises(TrainingDataError, match=r"data.jsonl:1: field 'completion' must be a non-empty string"):
        train_sft(micro_base, data, tmp_path / "run", config=QUICK)
    with pytest.raises(TrainingDataError, match="empty"):
        train_sft(micro_base, [], tmp_path / "run", config=QUICK)


def test_bad_settings_are_refused_before_training(micro_base, tmp_path):
    with pytest.raises(TrainConfigError, match="unknown adapter type 'qlora'"):
        AdapterSpec(type="qlora")
    with pytest.raises(TrainConfigError, match="train.batch_size: batch_size must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(UserError, match="target module.*w_q.*the base's linear layers are: .*q_proj"):
        train_sft(micro_base, topic_records(4, 0), tmp_path / "run", adapter=AdapterSpec(target_modules=("w_q",)), config=QUICK)
    with pytest.raises(TrainConfigError, match=r"max_length 256 \(\+16 virtual tokens\) exceeds the base's context of 256"):
        train_sft(micro_base, topic_records(4, 0), tmp_path / "run", adapter=AdapterSpec(type="prompt"),
                  config=TrainConfig(max_length=256))

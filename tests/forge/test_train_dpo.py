"""DPO from chosen/rejected pairs: reference handling and the preference it learns."""

from __future__ import annotations

import json
import math

import pytest

from expertpm_forge.tokenizer import DEFAULT_PROMPT_TEMPLATE
from expertpm_forge.train import AdapterSpec, Records, TrainConfig, TrainingDataError, load_adapter, load_base, train_dpo
from expertpm_forge.train.data import encode_pairs
from expertpm_forge.train.objectives import reference_logps
from expertpm_testing.forge_train import TOPICS, topic_records

CONFIG = TrainConfig(learning_rate=1e-2, max_steps=30, batch_size=8, max_length=64, warmup_steps=2,
                     checkpoint_every=0, dpo_beta=0.5)


def pairs(n: int, seed: int) -> list[dict]:
    out = []
    for record in topic_records(n, seed):
        wrong = sorted(TOPICS)[(sorted(TOPICS).index(record["completion"]) + 1) % len(TOPICS)]
        out.append({"prompt": record["prompt"], "chosen": record["completion"], "rejected": wrong})
    return out


def mean_margin(base_dir, adapter_dir, data) -> float:
    """Mean log p(chosen) - log p(rejected) under base + adapter (or the base alone)."""
    model, tok = load_base(base_dir)
    if adapter_dir is not None:
        model = load_adapter(model, adapter_dir, trainable=False)
    encoded = encode_pairs(Records.coerce(data), tok, DEFAULT_PROMPT_TEMPLATE, 64, eos_id=tok.eos_token_id)
    logps = reference_logps(model, encoded, 16, tok.pad_token_id)
    return sum(c - r for c, r in logps) / len(logps)


def test_dpo_starts_at_log2_and_learns_the_preference(micro_base, tmp_path):
    train, held_out = pairs(48, seed=0), pairs(24, seed=1)
    result = train_dpo(micro_base, train, tmp_path / "dpo", adapter=AdapterSpec(type="lora"), config=CONFIG)
    log = json.loads(result.curve["json"].read_text())
    # A fresh LoRA is the identity, so policy == reference (the base): the first loss is log 2.
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert sum(e["loss"] for e in log[-5:]) / 5 < 0.4
    assert result.summary["reference"] == "base" and result.summary["method"] == "dpo"
    assert mean_margin(micro_base, result.output, held_out) > mean_margin(micro_base, None, held_out) + 0.3


def test_dpo_continues_from_an_sft_adapter_against_it(micro_base, topic_expert, tmp_path):
    result = train_dpo(micro_base, pairs(16, seed=0), tmp_path / "dpo", init_adapter=topic_expert,
                       config=TrainConfig(**{**CONFIG.as_dict(), "max_steps": 2}))
    log = json.loads(result.curve["json"].read_text())
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)  # reference = the starting expert
    assert result.summary["reference"] == "initial adapter"
    assert json.loads((result.output / "adapter_config.json").read_text())["r"] == 8


def test_identical_chosen_and_rejected_is_refused(micro_base, tmp_path):
    bad = [{"prompt": "Topic of: a cat", "chosen": "animal", "rejected": "animal"}]
    with pytest.raises(TrainingDataError, match=r"records\[0\]: chosen and rejected are identical"):
        train_dpo(micro_base, bad, tmp_path / "dpo", config=CONFIG)

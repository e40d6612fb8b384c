"""Resumable checkpoints: an interrupted and resumed run ends with exactly the weights of an
uninterrupted one (dropout on, gradient accumulation on, so RNG and optimiser state both matter)."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from expertpm_forge.train import AdapterSpec, CheckpointError, TrainConfig, continue_pretraining, train_sft
from expertpm_testing.forge_train import BASE_CORPUS, topic_records

CONFIG = TrainConfig(max_steps=6, batch_size=4, grad_accum=2, max_length=64, warmup_steps=2, checkpoint_every=2, seed=3)
ADAPTER = AdapterSpec(type="lora", rank=4, dropout=0.1)


def _tensors(path):
    return load_file(str(path / "adapter_model.safetensors"))


def test_resumed_run_equals_uninterrupted_run(micro_base, tmp_path):
    data = topic_records(20, seed=1)
    straight = train_sft(micro_base, data, tmp_path / "straight", adapter=ADAPTER, config=CONFIG)

    first = train_sft(micro_base, data, tmp_path / "resumed", adapter=ADAPTER, config=CONFIG, stop_at_step=3)
    assert not first.completed and first.output is None and first.steps == 3
    checkpoint = tmp_path / "resumed" / "checkpoint"
    assert json.loads((checkpoint / "state.json").read_text())["step"] == 3
    assert not (tmp_path / "resumed" / "adapter").exists()

    second = train_sft(micro_base, data, tmp_path / "resumed", adapter=ADAPTER, config=CONFIG)
    assert second.completed and not checkpoint.exists()
    a, b = _tensors(straight.output), _tensors(second.output)
    assert a.keys() == b.keys()
    for name in a:
        assert (a[name] == b[name]).all(), name  # bit-identical, not merely close
    assert json.loads(straight.curve["json"].read_text()) == json.loads(second.curve["json"].read_text())
    for name in ("adapter/adapter_config.json", "summary.json", "curve.csv", "curve.png"):
        assert (straight.out_dir / name).read_bytes() == (second.out_dir / name).read_bytes(), name


def test_checkpoint_of_another_run_is_refused(micro_base, tmp_path):
    data = topic_records(20, seed=1)
    train_sft(micro_base, data, tmp_path / "run", adapter=ADAPTER, config=CONFIG, stop_at_step=2)
    other = TrainConfig(**{**CONFIG.as_dict(), "learning_rate": 0.05})
    with pytest.raises(CheckpointError, match="belongs to a different run"):
        train_sft(micro_base, data, tmp_path / "run", adapter=ADAPTER, config=other)
    with pytest.raises(CheckpointError, match="different run"):
        train_sft(micro_base, topic_records(20, seed=2), tmp_path / "run", adapter=ADAPTER, config=CONFIG)
    fresh = train_sft(micro_base, data, tmp_path / "run", adapter=ADAPTER, config=other, resume=False)
    assert fresh.completed and fresh.steps == 6


def test_continued_pretraining_resumes_exactly(micro_base, tmp_path):
    config = TrainConfig(max_steps=4, batch_size=8, max_length=32, warmup_steps=1, checkpoint_every=0)
    corpus = [BASE_CORPUS / "chat.txt"]
    straight = continue_pretraining(micro_base, corpus, tmp_path / "straight", config=config)
    continue_pretraining(micro_base, corpus, tmp_path / "resumed", config=config, stop_at_step=2)
    resumed = continue_pretraining(micro_base, corpus, tmp_path / "resumed", config=config)
    a = load_file(str(straight.output / "model.safetensors"))
    b = load_file(str(resumed.output / "model.safetensors"))
    assert all((a[k] == b[k]).all() for k in a)
    assert (resumed.output / "tokenizer.json").read_bytes() == (micro_base / "tokenizer.json").read_bytes()

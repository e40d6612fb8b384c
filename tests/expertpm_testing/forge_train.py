"""Fixtures for forge training and evaluation: a real tokenizer and a real (micro) Qwen3 base.

Built once per test session from the bundled corpus in `experts/base/corpus`. The micro base is
far smaller than the bundled tiny base so training tests take seconds; it gets a short
continued pre-training so it knows the chat format (like any instruction-ready base would).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE_CORPUS = REPO / "experts" / "base" / "corpus"
PROBE_TEXT = REPO / "experts" / "base" / "probe.txt"

# A Qwen3 with 2 layers of width 64: ~0.25M parameters besides the embeddings.
MICRO = dict(hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=32,
             intermediate_size=128, context_length=256)


@pytest.fixture(scope="session")
def forge_tokenizer_dir(tmp_path_factory) -> Path:
    from expertpm_forge.tokenizer import TokenizerConfig, train_tokenizer

    return train_tokenizer([BASE_CORPUS], tmp_path_factory.mktemp("forge-tokenizer"),
                           TokenizerConfig(vocab_size=1024))


@pytest.fixture(scope="session")
def micro_base(tmp_path_factory, forge_tokenizer_dir) -> Path:
    """A micro Qwen3 base pre-trained for a few steps on the chat part of the corpus."""
    from expertpm_forge.base import BaseModelConfig, init_base
    from expertpm_forge.train import TrainConfig, continue_pretraining

    root = tmp_path_factory.mktemp("forge-micro-base")
    init = init_base(forge_tokenizer_dir, root / "init", BaseModelConfig(**MICRO), seed=0)
    config = TrainConfig(learning_rate=3e-3, max_steps=30, batch_size=16, max_length=64, warmup_steps=4,
                         checkpoint_every=0)
    result = continue_pretraining(init, [BASE_CORPUS / "chat.txt"], root / "cpt", config=config)
    return result.output


@pytest.fixture(scope="session")
def topic_expert(tmp_path_factory, micro_base) -> Path:
    """A LoRA expert trained on `topic_records` (400 records, 5 epochs): its adapter directory."""
    from expertpm_forge.train import AdapterSpec, TrainConfig, train_sft

    config = TrainConfig(learning_rate=1e-2, epochs=5, batch_size=8, warmup_steps=5, max_length=128)
    result = train_sft(micro_base, topic_records(400, seed=0), tmp_path_factory.mktemp("topic-expert"),
                       adapter=AdapterSpec(type="lora"), config=config, base_name="micro-base")
    return result.output


TOPICS = {
    "animal": ["cat", "dog", "horse", "rabbit", "owl", "fox", "goat", "duck"],
    "food": ["bread", "rice", "soup", "apples", "cheese", "beans", "pasta", "salad"],
    "color": ["red", "blue", "green", "yellow", "white", "black", "brown", "grey"],
    "weather": ["sunny", "rainy", "cloudy", "windy", "cold", "warm", "foggy", "snowy"],
}
FRAMES = ["I saw something {w} today.", "Tell me about the {w}.", "We talked about {w} at lunch.",
          "Is {w} a good choice?", "The {w} was on my mind.", "Anna likes {w} a lot."]


def topic_records(n: int, seed: int) -> list[dict]:
    """A tiny classification task: which topic does a sentence's key word belong to?"""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(sorted(TOPICS))
        sentence = rng.choice(FRAMES).format(w=rng.choice(TOPICS[label]))
        out.append({"prompt": f"Topic of: {sentence}", "completion": label})
    return out


__all__ = ["forge_tokenizer_dir", "micro_base", "topic_expert", "topic_records", "TOPICS", "BASE_CORPUS", "PROBE_TEXT", "MICRO"]

"""Our Qwen3/Llama implementation against transformers on the same weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from expertpm_runtime import Engine, EngineConfig, SamplingParams

from conftest import build_tiny_base

PROMPTS = [[1, 2, 3, 4, 5], [40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58], [9]]


def hf_greedy(model_dir: Path, prompt: list[int], n: int) -> list[int]:
    hf = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    out = hf.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None,
                      pad_token_id=0)
    return out[0, len(prompt):].tolist()


def test_greedy_tokens_match_transformers(tiny_engine_factory, tiny_base):
    engine = tiny_engine_factory()
    ours = engine.generate(PROMPTS, SamplingParams(max_tokens=12, ignore_eos=True))
    assert ours == [hf_greedy(tiny_base, p, 12) for p in PROMPTS]


def test_logits_close_to_transformers(tiny_engine_factory, tiny_base):
    engine = tiny_engine_factory()
    hf = AutoModelForCausalLM.from_pretrained(tiny_base, dtype=torch.float32)
    for prompt in PROMPTS:
        ours = engine.prompt_logits(prompt)
        ref = hf(torch.tensor([prompt])).logits[0]
        torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_llama_greedy_matches_transformers(tmp_path):
    base = build_tiny_base(tmp_path / "llama", arch="llama", tokenizer=False, seed=3)
    engine = Engine(EngineConfig(model=base, kv_cache_bytes=1 << 20))
    ours = engine.generate(PROMPTS[:2], SamplingParams(max_tokens=10, ignore_eos=True))
    assert ours == [hf_greedy(base, p, 10) for p in PROMPTS[:2]]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_runs_close_to_float32(tiny_engine_factory, dtype):
    ref = tiny_engine_factory().prompt_logits(PROMPTS[1])
    ours = tiny_engine_factory(dtype=dtype).prompt_logits(PROMPTS[1])
    assert ours.dtype == torch.float32
    assert (ours - ref).abs().max() < 0.1 * ref.abs().max()


def test_prefix_cache_and_paging_do_not_change_tokens(tiny_engine_factory):
    """Block size 4 splits prompts across blocks; the second run hits the prefix cache."""
    engine = tiny_engine_factory(block_size=4)
    params = SamplingParams(max_tokens=8, ignore_eos=True)
    first = engine.generate(PROMPTS, params)
    again = engine.generate(PROMPTS, params)
    assert first == again
    assert engine.stats()["cached_prompt_tokens"] >= 16
    assert first == tiny_engine_factory(enable_prefix_caching=False).generate(PROMPTS, params)

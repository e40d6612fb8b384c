"""Segmented LoRA in one decode step: every row of a mixed batch gets exactly its own experts.

Rows grouped by expert with equal counts take the blocked path (views, no gather), anything else
the gathered path (padding, composition, rows without experts); fused q/k/v and gate/up take the
one-matmul group path only when all parts share their experts. Each batch's decode logits must
equal each row's logits computed alone.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from expertpm_runtime import SamplingParams

PROMPTS = [[5, 17, 33, 2, 99], [140, 7, 61], [250, 3, 12, 8, 8, 8, 1], [77, 4], [1, 2], [30, 31, 32, 33],
           [200, 201], [9, 9, 9]]


def decode_logits(engine, prompts, uses):
    """Logits of one decode step (the last prompt token, one token per row, over the cache)."""
    from expertpm_runtime.sequence import Sequence

    runner = engine.runner
    seqs = [Sequence(seq_id=1000 + i, token_ids=list(p), num_prompt_tokens=len(p), params=SamplingParams(),
                     experts=tuple(u)) for i, (p, u) in enumerate(zip(prompts, uses))]
    try:
        with torch.inference_mode():
            for s in seqs:
                engine.block_manager.allocate(s)
                s.num_cached_tokens = 0
                engine._pin(s)
            runner.model(runner._prepare(seqs, True), runner.kv_cache)  # fills the cache
            ctx = runner._prepare(seqs, False)
            assert ctx.q_index is None  # the decode path: one token per row
            return runner.model(ctx, runner.kv_cache)
    finally:
        for s in seqs:
            engine._unpin(s)
            engine.block_manager.deallocate(s)


@pytest.fixture(scope="module")
def experts(make_expert):
    return [make_expert("lora", seed=41), make_expert("lora", seed=42, r=2, alpha=8),
            make_expert("lora", seed=43, r=8, alpha=8, targets=["q_proj", "v_proj", "down_proj"]),
            make_expert("lora", seed=44, r=4, alpha=16), make_expert("lora", seed=45, r=4, alpha=16)]


def use(spec, weight=1.0):
    from expertpm_runtime.sequence import ExpertUse

    return ExpertUse(spec.digest, weight)


@pytest.mark.parametrize("layout", ["blocked", "blocked-some-kinds", "blocked-same-scale", "interleaved",
                                    "interleaved-same-scale", "unbalanced", "one-expert"])
def test_decode_rows_equal_rows_alone(experts, tiny_engine_factory, layout):
    e = experts
    rows = {
        "blocked": [[use(e[(0, 1, 3, 4)[i // 2]])] for i in range(8)],
        "blocked-some-kinds": [[use(e[i // 2])] for i in range(8)],
        "blocked-same-scale": [[use(e[3 + i // 4])] for i in range(8)],  # α·s the same everywhere
        "interleaved": [[use(e[i % 4])] for i in range(8)],
        "interleaved-same-scale": [[use(e[3 + i % 2])] for i in range(8)],
        "unbalanced": [[], [use(e[0])], [use(e[0])], [use(e[0])], [use(e[1])],
                       [use(e[0], 0.5), use(e[1], 1.5)], [use(e[3], -0.7)], [use(e[2])]],
        "one-expert": [[use(e[3], 0.7)] for _ in range(8)],
    }[layout]
    engine = tiny_engine_factory()
    for spec in e:
        engine.validate_experts([spec])
    together = decode_logits(engine, PROMPTS, rows)
    alone = torch.cat([decode_logits(engine, [p], [u]) for p, u in zip(PROMPTS, rows)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    base = decode_logits(engine, PROMPTS, [[]] * 8)
    adapted = [i for i, u in enumerate(rows) if u]
    assert (together[adapted] - base[adapted]).abs().amax(dim=-1).min() > 1e-3  # the experts did act


def test_rows_come_back_in_request_order(experts, tiny_engine_factory):
    """The runner groups rows by expert set for the step; each request still gets its own tokens."""
    params = SamplingParams(max_tokens=4, ignore_eos=True)
    rows = [[experts[i % 4]] if i % 3 else [] for i in range(8)]
    together = tiny_engine_factory().generate(PROMPTS, params, rows)
    alone = [tiny_engine_factory().generate([p], params, [r])[0] for p, r in zip(PROMPTS, rows)]
    assert together == alone
    weighted = [[dataclasses.replace(experts[0], weight=0.5)], [experts[0]]]
    assert tiny_engine_factory().generate(PROMPTS[:2], params, weighted) == [
        tiny_engine_factory().generate([p], params, [w])[0] for p, w in zip(PROMPTS[:2], weighted)]

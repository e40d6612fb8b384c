"""Continuous batching, preemption and the KV budget (scheduler alone, no model)."""

from __future__ import annotations

import pytest

from expertpm._errors import RuntimeUserError
from expertpm_runtime.block_manager import BlockManager
from expertpm_runtime.config import SamplingParams
from expertpm_runtime.scheduler import Scheduler
from expertpm_runtime.sequence import ExpertUse, Sequence, SequenceStatus, cache_salt

_ids = iter(range(10_000))


def seq(n_prompt, max_tokens=4, experts=(), first=0) -> Sequence:
    experts = tuple(ExpertUse(d, 1.0) for d in experts)
    tokens = list(range(first, first + n_prompt))
    return Sequence(seq_id=next(_ids), token_ids=tokens, num_prompt_tokens=n_prompt,
                    params=SamplingParams(max_tokens=max_tokens, ignore_eos=True), experts=experts,
                    salt=cache_salt(experts))


def make(num_blocks=8, block_size=4, **kw) -> Scheduler:
    kw = {"max_num_seqs": 8, "max_num_batched_tokens": 64, "max_model_len": 64, "max_resident_experts": 4, **kw}
    return Scheduler(BlockManager(num_blocks, block_size), **kw)


def run_step(s: Scheduler, token=7):
    seqs, prefill = s.schedule()
    bm = s.block_manager
    assert 0 <= bm.num_used <= bm.num_blocks
    assert sum(len(x.block_table) for x in s.running) >= bm.num_used  # shared blocks counted once
    for x in seqs:
        assert len(x.block_table) * bm.block_size >= len(x)  # room for every token computed
    finished = s.postprocess(seqs, [token] * len(seqs))
    return seqs, prefill, finished


def test_new_requests_join_between_decode_steps():
    s = make()
    a = seq(5, max_tokens=6)
    s.add(a)
    assert run_step(s)[:2] == ([a], True)
    assert run_step(s)[:2] == ([a], False)
    b = seq(3, max_tokens=2, first=50)
    s.add(b)
    assert run_step(s)[:2] == ([b], True)  # admitted while a is mid-generation
    seqs, prefill, finished = run_step(s)
    assert seqs == [a, b] and not prefill and finished == [b]
    assert b.finish_reason == "length" and b.completion_token_ids == [7, 7]
    while s.has_unfinished():
        run_step(s)
    assert a.num_completion_tokens == 6 and s.block_manager.num_used == 0


def test_preemption_under_memory_pressure_never_exceeds_budget():
    s = make(num_blocks=6, block_size=4)
    seqs = [seq(7, max_tokens=8, first=100 * i) for i in range(3)]  # each needs 4 blocks eventually
    for x in seqs:
        s.add(x)
    steps = 0
    while s.has_unfinished():
        run_step(s)
        steps += 1
        assert steps < 200
    assert s.num_preemptions > 0
    assert all(x.num_completion_tokens == 8 and x.status is SequenceStatus.FINISHED for x in seqs)
    assert s.block_manager.num_used == 0


def test_a_request_that_can_never_fit_is_refused():
    s = make(num_blocks=2, block_size=4)
    with pytest.raises(RuntimeUserError, match="needs 3 KV cache blocks"):
        s.add(seq(6, max_tokens=4))
    s.add(seq(6, max_tokens=2))  # exactly 2 blocks


def test_resident_experts_limit_admission():
    s = make(num_blocks=32, max_resident_experts=2)
    a, b, c = seq(3, experts=["a" * 64]), seq(3, experts=["b" * 64], first=10), seq(3, experts=["c" * 64], first=20)
    for x in (a, b, c):
        s.add(x)
    seqs, prefill = s.schedule()
    assert seqs == [a, b] and prefill and list(s.waiting) == [c]
    assert set(s.resident_experts) == {"a" * 64, "b" * 64}
    s.postprocess(seqs, [1, 1])
    while c.status is SequenceStatus.WAITING:
        run_step(s)
    assert a.status is SequenceStatus.FINISHED or b.status is SequenceStatus.FINISHED
    with pytest.raises(RuntimeUserError, match="uses 3 experts but only 2 adapter slots exist"):
        s.add(seq(2, experts=["a" * 64, "b" * 64, "c" * 64]))


def test_batch_limits_and_abort():
    s = make(max_num_seqs=2, num_blocks=32)
    xs = [seq(3, max_tokens=3, first=10 * i) for i in range(3)]
    for x in xs:
        s.add(x)
    seqs, _ = s.schedule()
    assert seqs == xs[:2]
    s.abort(xs[0])
    assert xs[0].finish_reason == "abort" and xs[0].block_table == []
    s.abort(xs[2])  # still waiting
    assert not s.waiting and list(s.running) == [xs[1]]


def test_stop_tokens_and_context_limit():
    s = make(max_model_len=8)
    a = seq(5, max_tokens=50)
    b = Sequence(seq_id=next(_ids), token_ids=[1, 2], num_prompt_tokens=2,
                 params=SamplingParams(max_tokens=50, stop_token_ids=(7,)))
    s.add(a)
    s.add(b)
    _, _, finished = run_step(s)
    assert finished == [b] and b.finish_reason == "stop"
    while s.has_unfinished():
        run_step(s, token=3)
    assert a.finish_reason == "length" and len(a) == 8

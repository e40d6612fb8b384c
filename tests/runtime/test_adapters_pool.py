"""The slot pool: one copy into a fixed slot row, LRU over unpinned slots, digest as the cache key."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from expertpm._errors import RuntimeUserError

PROMPT = [5, 17, 33, 2, 99, 140, 7]


def inside(t: torch.Tensor, row: torch.Tensor) -> bool:
    start, end = row.data_ptr(), row.data_ptr() + row.numel()
    return start <= t.data_ptr() and t.data_ptr() + t.numel() * t.element_size() <= end


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_expert_tensors_live_in_their_slot_row(make_expert, tiny_engine_factory, dtype):
    spec = make_expert("lora", seed=71)
    engine = tiny_engine_factory(dtype=dtype)
    (pkg,) = engine.validate_experts([spec])
    pool = engine.runner.pool
    slot = pool.acquire(pkg, engine.runner.layouts[spec.digest])
    part = pool.slots[slot].lora("q_proj", 1)
    assert part.A.dtype == getattr(torch, dtype) and tuple(part.A.shape) == (4, 64)
    assert inside(part.A, pool.raw[slot]) and inside(part.B, pool.raw[slot])
    assert pool.raw.shape == (8, pool.slot_bytes)  # fixed shape: 8 slots


def test_reload_after_eviction_gives_the_same_logits(make_expert, tiny_engine_factory):
    spec = make_expert("dora", seed=72)
    engine = tiny_engine_factory()
    first = engine.prompt_logits(PROMPT, [spec])
    engine.runner.pool.forget(spec.digest)
    assert engine.runner.pool.by_digest == {}
    again = engine.prompt_logits(PROMPT, [spec])
    assert engine.stats()["adapter_loads"] == 2
    torch.testing.assert_close(first, again, atol=0, rtol=0)


def test_lru_eviction_and_pins(make_expert, tiny_engine_factory):
    specs = [make_expert("lora", seed=s) for s in (73, 74, 75)]
    engine = tiny_engine_factory(adapter_slots=2, max_chain=2)
    a, b, c = (engine.validate_experts([s])[0] for s in specs)
    pool = engine.runner.pool
    for pkg in (a, b, a):
        pool.acquire(pkg)
        pool.release(pkg.digest)
    pool.acquire(c)  # b is the least recently used
    assert set(pool.by_digest) == {a.digest, c.digest} and pool.evictions == 1
    pool.acquire(a)  # now a and c are pinned
    with pytest.raises(RuntimeError, match="all adapter slots are pinned"):
        pool.acquire(b)


def test_cache_key_is_the_digest_not_the_name_or_path(make_expert, tiny_engine_factory):
    spec = make_expert("lora", seed=76)
    other_digest = dataclasses.replace(spec, digest="ef" * 32)
    engine = tiny_engine_factory()
    engine.prompt_logits(PROMPT, [spec])
    engine.prompt_logits(PROMPT, [spec])
    assert engine.stats()["adapter_loads"] == 1 and engine.stats()["adapter_hits"] == 1
    engine.prompt_logits(PROMPT, [other_digest])
    assert engine.stats()["adapter_loads"] == 2 and engine.stats()["adapters_resident"] == 2


def test_rank_above_slot_capacity_is_refused(make_expert, tiny_engine_factory):
    spec = make_expert("lora", seed=77, r=8)
    engine = tiny_engine_factory(max_rank=4)
    with pytest.raises(RuntimeUserError) as info:
        engine.add_request(PROMPT, experts=[spec])
    assert str(info.value) == "expert tiny-lora-77@1.0.0 has rank 8 but adapter slots hold at most rank 4 — raise max_rank"


def test_bfloat16_adapter_file_converts_on_load(make_expert, tiny_engine_factory, tmp_path):
    """A file dtype that differs from the model's goes through the per-tensor conversion path."""
    import shutil

    from safetensors.torch import load_file, save_file

    spec = make_expert("lora", seed=78)
    dst = tmp_path / "bf16"
    shutil.copytree(spec.path, dst)
    tensors = {k: v.to(torch.bfloat16) for k, v in load_file(dst / "adapter_model.safetensors").items()}
    save_file(tensors, dst / "adapter_model.safetensors")
    engine = tiny_engine_factory()
    ref = engine.prompt_logits(PROMPT, [spec])
    ours = engine.prompt_logits(PROMPT, [dataclasses.replace(spec, path=dst, digest="12" * 32)])
    assert (ours - ref).abs().max() < 0.05 * ref.abs().max()
    assert not torch.equal(ours, ref)

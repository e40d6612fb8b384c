"""Bad requests are refused with one clear RuntimeUserError each, and the engine keeps working."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

from expertpm._errors import RuntimeUserError
from expertpm_runtime import ExpertSpec, SamplingParams

from conftest import build_expert

DIGEST = "ab" * 32


def refused(fn, *args, **kw) -> str:
    with pytest.raises(RuntimeUserError) as info:
        fn(*args, **kw)
    return str(info.value)


def test_missing_and_unpackaged_expert_dirs(tiny_engine_factory, tmp_path):
    engine = tiny_engine_factory()
    missing = tmp_path / "nope"
    assert refused(engine.add_request, [1, 2], experts=[ExpertSpec(DIGEST, missing)]) == (
        f"expert directory {missing} does not exist — install the expert with `expertpm install NAME`")
    (tmp_path / "raw").mkdir()
    assert refused(engine.add_request, [1, 2], experts=[ExpertSpec(DIGEST, tmp_path / "raw")]) == (
        f"{tmp_path / 'raw'} is not an installed expert package (no manifest.json) — "
        "install the expert with `expertpm install NAME`")
    assert refused(engine.add_request, [1], experts=[ExpertSpec("not-a-digest", tmp_path)]) == (
        "expert digest 'not-a-digest' is not a sha256 hex string — pass the installed package's digest")


def test_expert_for_another_base_is_refused_before_loading_tensors(tiny_base, tiny_engine_factory, tmp_path):
    spec = build_expert(tiny_base, tmp_path / "foreign", "lora", seed=5, name="foreign", base_digest="cd" * 32)
    (spec.path / "adapter_model.safetensors").write_bytes(b"not a safetensors file")  # never read
    engine = tiny_engine_factory()
    message = refused(engine.add_request, [1, 2], experts=[spec])
    assert message == (
        f"expert foreign@1.0.0 is built for a different base model (tiny-base ^0.1, weights cdcdcdcdcdcd) "
        f"than the loaded one (weights {engine.base_digest[:12]}) — install a version of the expert built for "
        "this base, or load the base it names")
    assert engine.stats()["adapter_loads"] == 0


def test_too_many_experts_and_duplicates(make_expert, tiny_engine_factory):
    engine = tiny_engine_factory(max_chain=2)
    a, b, c = (make_expert("lora", seed=s) for s in (41, 42, 43))
    assert refused(engine.add_request, [1], experts=[a, b, c]) == (
        "3 experts requested but at most 2 can be composed on one request — name fewer experts")
    assert refused(engine.add_request, [1], experts=[a, dataclasses.replace(a, weight=0.5)]) == (
        "expert tiny-lora-41@1.0.0 is named twice in one request — name it once")


def test_prompt_longer_than_context(tiny_engine_factory):
    engine = tiny_engine_factory(max_model_len=32)
    assert refused(engine.add_request, list(range(33))) == (
        "prompt is 33 tokens but the model's context is 32 tokens — shorten the prompt")


def test_prompt_tuning_tokens_count_towards_the_context(make_expert, tiny_engine_factory):
    engine = tiny_engine_factory(max_model_len=32)
    assert refused(engine.add_request, list(range(30)), experts=[make_expert("prompt", seed=44)]) == (
        "prompt is 34 tokens but the model's context is 32 tokens — shorten the prompt")


def test_request_larger_than_the_whole_kv_budget(tiny_engine_factory):
    # one block of 16 tokens = 2 (k, v) * 2 layers * 16 * 2 kv heads * 16 dims * 4 bytes = 8 KiB
    engine = tiny_engine_factory(kv_cache_bytes=4 * 8192)
    assert engine.stats()["kv_blocks_total"] == 4
    message = refused(engine.add_request, list(range(40)), SamplingParams(max_tokens=40))
    assert message == ("request needs 5 KV cache blocks (80 tokens) but the whole cache holds 4 blocks (64 tokens)"
                       " — lower max_tokens, shorten the prompt, or give the engine a larger kv_cache_bytes")
    assert engine.generate([list(range(40))], SamplingParams(max_tokens=20, ignore_eos=True))[0].__len__() == 20


def test_budget_smaller_than_one_block(tiny_base):
    from expertpm_runtime import Engine, EngineConfig

    message = refused(Engine, EngineConfig(model=tiny_base, kv_cache_bytes=1000))
    assert message == ("kv_cache_bytes=1000 holds no KV block (one block takes 8192 bytes) — "
                       "raise kv_cache_bytes or lower block_size")


def test_bad_tokens_and_sampling_params(tiny_engine_factory):
    engine = tiny_engine_factory()
    assert refused(engine.add_request, []) == "prompt is empty — give at least one token"
    assert refused(engine.add_request, [1, 320]) == "token id 320 is outside the vocabulary (0..319)"
    assert refused(engine.add_request, [1], SamplingParams(max_tokens=0)) == (
        "max_tokens must be a positive integer, not 0")
    assert refused(engine.add_request, [1], SamplingParams(top_p=0)) == "top_p must be in (0, 1], not 0"
    assert re.match("temperature must be >= 0", refused(engine.add_request, [1], SamplingParams(temperature=-1)))
    assert not engine.has_unfinished()


def test_unsupported_adapter_tensors_are_refused_at_add(tiny_base, make_expert, tiny_engine_factory, tmp_path):
    from safetensors.torch import load_file, save_file

    src = make_expert("lora", seed=45)
    dst = tmp_path / "odd"
    shutil.copytree(src.path, dst)
    tensors = load_file(dst / "adapter_model.safetensors")
    tensors["base_model.model.lm_head.lora_A.weight"] = next(iter(tensors.values())).clone()
    save_file(tensors, dst / "adapter_model.safetensors")
    engine = tiny_engine_factory()
    assert refused(engine.add_request, [1], experts=[dataclasses.replace(src, path=dst)]) == (
        "expert tiny-lora-45@1.0.0: tensor base_model.model.lm_head.lora_A.weight is not supported by the "
        "runtime — only adapters on the attention and MLP projections of the decoder layers can be applied")


def test_expert_that_vanishes_before_scheduling_fails_only_its_request(make_expert, tiny_engine_factory, tmp_path):
    src = make_expert("lora", seed=46)
    dst = tmp_path / "vanishing"
    shutil.copytree(src.path, dst)
    engine = tiny_engine_factory()
    doomed = engine.add_request([1, 2, 3], SamplingParams(max_tokens=3), [dataclasses.replace(src, path=dst,
                                                                                               digest="9a" * 32)])
    fine = engine.add_request([4, 5, 6], SamplingParams(max_tokens=3, ignore_eos=True))
    (dst / "adapter_model.safetensors").unlink()
    results: dict[int, list] = {doomed: [], fine: []}
    reasons = {}
    while engine.has_unfinished():
        for out in engine.step():
            results[out.request_id] += out.new_token_ids
            if out.finished:
                reasons[out.request_id] = out.finish_reason
    assert reasons == {doomed: "error", fine: "length"} and len(results[fine]) == 3
    assert "adapter_model.safetensors" in engine.last_error
    assert engine.stats()["kv_blocks_used"] == 0 and engine.stats()["requests_failed"] == 1

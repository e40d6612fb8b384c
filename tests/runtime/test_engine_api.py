"""The Engine API end to end on the tiny model: stepping, stopping, sampling, aborts, stats, slots."""

from __future__ import annotations

from expertpm_runtime import RequestOutput, SamplingParams

GREEDY = SamplingParams(max_tokens=8, ignore_eos=True)
PROMPTS = [[5, 17, 33, 2, 99], [140, 7, 61], [250, 3, 12, 8, 8, 8, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4], [77]]


def test_step_streams_one_token_per_request(tiny_engine_factory):
    engine = tiny_engine_factory()
    rid = engine.add_request(PROMPTS[0], GREEDY)
    seen: list[int] = []
    outs = engine.step()
    assert len(outs) == 1 and isinstance(outs[0], RequestOutput) and outs[0].request_id == rid
    seen += outs[0].new_token_ids
    late = engine.add_request(PROMPTS[1], GREEDY)  # joins mid-generation
    late_tokens: list[int] = []
    while engine.has_unfinished():
        for out in engine.step():
            assert len(out.new_token_ids) == 1
            (seen if out.request_id == rid else late_tokens).extend(out.new_token_ids)
            if out.finished:
                assert out.finish_reason == "length"
    alone = tiny_engine_factory().generate([PROMPTS[0], PROMPTS[1]], GREEDY)
    assert [seen, late_tokens] == alone
    assert late != rid


def test_stop_token_ends_generation_and_is_included(tiny_engine_factory):
    engine = tiny_engine_factory()
    full = engine.generate([PROMPTS[0]], GREEDY)[0]
    stop = full[3]
    cut = engine.generate([PROMPTS[0]], SamplingParams(max_tokens=8, stop_token_ids=(stop,)))[0]
    assert cut == full[:full.index(stop) + 1]


def test_seeded_sampling_is_reproducible(tiny_engine_factory):
    engine = tiny_engine_factory()
    p = SamplingParams(max_tokens=12, temperature=1.0, top_p=0.9, top_k=50, seed=7, ignore_eos=True)
    a = engine.generate([PROMPTS[0]], p)
    assert a == engine.generate([PROMPTS[0]], p)
    other = engine.generate([PROMPTS[0]], SamplingParams(max_tokens=12, temperature=1.0, seed=8, ignore_eos=True))
    assert a != other
    top1 = engine.generate([PROMPTS[0]], SamplingParams(max_tokens=8, temperature=0.7, top_k=1, ignore_eos=True))
    assert top1 == engine.generate([PROMPTS[0]], GREEDY)


def test_abort_frees_everything_and_is_reported(make_expert, tiny_engine_factory):
    engine = tiny_engine_factory()
    spec = make_expert("lora", seed=51)
    rid = engine.add_request(PROMPTS[2], GREEDY, experts=[spec])
    engine.step()
    assert engine.stats()["kv_blocks_used"] > 0
    engine.abort(rid)
    outs = engine.step()
    assert outs == [RequestOutput(rid, [], True, "abort")]
    assert not engine.has_unfinished()
    assert engine.stats()["kv_blocks_used"] == 0
    assert all(s.pins == 0 for s in engine.runner.pool.slots)
    engine.abort(rid)  # twice is harmless
    assert engine.step() == []


def test_preemption_gives_the_same_tokens(tiny_engine_factory):
    prompts = [[i + 1] * (5 + 3 * i) for i in range(6)]
    params = SamplingParams(max_tokens=20, ignore_eos=True)
    roomy = tiny_engine_factory().generate(prompts, params)
    tight = tiny_engine_factory(kv_cache_bytes=16 * 2048, block_size=4)  # 16 blocks of 4 tokens
    assert tight.generate(prompts, params) == roomy
    stats = tight.stats()
    assert stats["preemptions"] > 0 and stats["kv_blocks_total"] == 16 and stats["kv_blocks_used"] == 0


def test_lru_eviction_and_pinning_with_few_slots(make_expert, tiny_engine_factory):
    specs = [make_expert("lora", seed=s) for s in (61, 62, 63)]
    engine = tiny_engine_factory(adapter_slots=2, max_chain=2)
    rows = [[specs[0]], [specs[1]], [specs[2]], [specs[0], specs[2]]]
    prompts = PROMPTS[:4]
    out = engine.generate(prompts, GREEDY, rows)
    stats = engine.stats()
    assert stats["adapter_evictions"] >= 1 and stats["adapters_resident"] <= 2
    alone = [tiny_engine_factory().generate([p], GREEDY, [r])[0] for p, r in zip(prompts, rows)]
    assert out == alone


def test_stats_count_work(make_expert, tiny_engine_factory):
    engine = tiny_engine_factory()
    engine.generate(PROMPTS[:2], GREEDY, [[make_expert("ia3", seed=64)], []])
    s = engine.stats()
    assert s["requests_added"] == 2 and s["requests_finished"] == 2
    assert s["generation_tokens"] == 16 and s["prompt_tokens"] == 8
    assert s["prefill_seconds"] > 0 and s["decode_seconds"] > 0 and s["adapter_load_seconds"] > 0
    assert s["adapter_loads"] == 1 and s["num_running"] == 0 and s["num_waiting"] == 0


def test_tokenizer_comes_from_the_model_dir(tiny_engine_factory):
    tok = tiny_engine_factory().tokenizer
    assert tok.decode(tok.encode("héllo")) == "héllo"

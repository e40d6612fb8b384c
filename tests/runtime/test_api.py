"""The Python API over a real tiny base and real PEFT LoRA experts: defaults from manifests,
composition, routing, stop strings, streaming, aborts and concurrent callers."""

from __future__ import annotations

import threading
import time

import pytest

from expertpm._errors import RuntimeUserError
from expertpm_runtime import Engine, EngineConfig, ExpertSpec, SamplingParams
from expertpm_runtime.api import Runtime
from expertpm_runtime.catalog import UnknownExpertError
from expertpm_runtime.router import RouterConfig
from serving_fixtures import tiny_packages  # noqa: F401

TEMPLATE = "<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def runtime(tiny_packages):
    rt = Runtime.from_dirs(tiny_packages.base, list(tiny_packages.experts.values()),
                           router=RouterConfig(use_embeddings=False), kv_cache_bytes=1 << 20)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def reference(tiny_packages):
    """A second engine on the same base, driven directly: what the API must reproduce."""
    return Engine(EngineConfig(model=tiny_packages.base, kv_cache_bytes=1 << 20))


def spec(packages, name: str, weight: float = 1.0) -> ExpertSpec:
    return ExpertSpec(packages.digests[name], packages.experts[name], weight)


def stats(rt: Runtime) -> dict:
    return rt.loop.call(lambda engine: engine.stats()).result(timeout=30)


def test_expert_defaults_come_from_its_manifest(runtime, reference, tiny_packages):
    out = runtime.generate("Parse this JSON", experts="json-tool", ignore_eos=True)
    prompt = reference.tokenizer.encode(TEMPLATE.replace("{prompt}", "Parse this JSON"))
    [expected] = reference.generate([prompt], SamplingParams(max_tokens=8, ignore_eos=True),
                                    [[spec(tiny_packages, "json-tool")]])
    assert list(out.token_ids) == expected and out.finish_reason == "length"
    assert out.experts == ("json-tool",) and out.route is None and out.prompt_tokens == len(prompt)
    assert out.text == reference.tokenizer.decode(expected, skip_special_tokens=True)


def test_explicit_options_override_the_manifest(runtime):
    assert len(runtime.generate("Parse this JSON", experts="json-tool", max_tokens=3, ignore_eos=True).token_ids) == 3


def test_weighted_composition_matches_the_engine(runtime, reference, tiny_packages):
    out = runtime.generate("hello there", experts="json-tool*0.5+french", max_tokens=10, ignore_eos=True)
    # json-tool comes first, so its template applies
    prompt = reference.tokenizer.encode(TEMPLATE.replace("{prompt}", "hello there"))
    [expected] = reference.generate([prompt], SamplingParams(max_tokens=10, ignore_eos=True),
                                    [[spec(tiny_packages, "json-tool", 0.5), spec(tiny_packages, "french")]])
    assert list(out.token_ids) == expected and out.experts == ("json-tool", "french")
    same = runtime.generate("hello there", experts=[("json-tool", 0.5), "french"], max_tokens=10, ignore_eos=True)
    assert same.token_ids == out.token_ids


def test_base_alone_and_auto_routing(runtime, reference):
    base = runtime.generate("hello there", max_tokens=6, ignore_eos=True)
    assert list(base.token_ids) == reference.generate([reference.tokenizer.encode("hello there")],
                                                      SamplingParams(max_tokens=6, ignore_eos=True))[0]
    routed = runtime.generate("say it in French", experts="auto", max_tokens=4)
    assert routed.experts == ("french",) and routed.route.method == "keywords"
    generic = runtime.generate("hello there", experts="auto", max_tokens=6, ignore_eos=True)
    assert generic.experts == () and generic.route.base_only and generic.token_ids == base.token_ids


def test_stop_string_ends_the_text_before_it(runtime):
    full = runtime.generate("hello there", max_tokens=24, ignore_eos=True).text
    i = next(i for i in range(1, len(full) - 2) if "\ufffd" not in full[i:i + 2] and full[i:i + 2].strip())
    stop = full[i:i + 2]
    out = runtime.generate("hello there", max_tokens=24, ignore_eos=True, stop=[stop])
    assert out.text == full[:full.index(stop)] and out.finish_reason == "stop"
    assert "".join(runtime.stream("hello there", max_tokens=24, ignore_eos=True, stop=stop)) == out.text


def test_stream_yields_the_same_text_as_generate(runtime):
    pieces = list(runtime.stream("Parse this JSON", experts="json-tool", max_tokens=16, ignore_eos=True))
    assert len(pieces) > 1
    assert "".join(pieces) == runtime.generate("Parse this JSON", experts="json-tool", max_tokens=16,
                                               ignore_eos=True).text


def test_closing_a_stream_early_aborts_and_frees_its_blocks(runtime):
    before = stats(runtime)
    stream = runtime.stream("hello there", max_tokens=100, ignore_eos=True)
    next(stream)
    stream.close()
    deadline = time.monotonic() + 30
    while (s := stats(runtime))["num_running"] or s["kv_blocks_used"]:
        assert time.monotonic() < deadline, s
        time.sleep(0.01)
    assert s["requests_aborted"] == before["requests_aborted"] + 1
    assert s["generation_tokens"] - before["generation_tokens"] < 100


def test_chat_messages_use_the_template_or_the_chat_template(runtime):
    one = runtime.prepare(messages=[{"role": "user", "content": "hi"}], experts="json-tool")
    assert one.prompt == TEMPLATE.replace("{prompt}", "hi")
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},
             {"role": "user", "content": [{"type": "text", "text": "and "}, {"type": "text", "text": "then?"}]}]
    many = runtime.prepare(messages=turns, experts="json-tool")
    assert many.prompt == ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n"
                           "<|im_start|>user\nand then?<|im_end|>\n<|im_start|>assistant\n")
    with pytest.raises(RuntimeUserError, match=r"messages\[0\] needs a role of system, user, assistant"):
        runtime.prepare(messages=[{"content": "no role"}])


def test_refusals_are_user_errors(runtime):
    with pytest.raises(UnknownExpertError):
        runtime.generate("x", experts="nope")
    with pytest.raises(RuntimeUserError, match=r"^prompt is \d+ tokens but the model's context is 128 tokens"):
        runtime.generate("word " * 300)
    with pytest.raises(RuntimeUserError, match="give either a prompt or chat messages"):
        runtime.prepare()


def test_concurrent_callers_get_their_own_results(runtime):
    prompts = [("hello there", None), ("Parse this JSON", "json-tool"), ("say it in French", "french"),
               ("hello there", "json-tool*0.5+french")]
    alone = [runtime.generate(p, experts=e, max_tokens=12, ignore_eos=True).token_ids for p, e in prompts]
    results: dict[int, tuple] = {}

    def worker(i: int) -> None:
        p, e = prompts[i % len(prompts)]
        results[i] = runtime.generate(p, experts=e, max_tokens=12, ignore_eos=True).token_ids

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert {i: results[i] for i in range(8)} == {i: alone[i % len(prompts)] for i in range(8)}


def test_manifest_stop_and_sampling_defaults_reach_the_engine(runtime):
    from dataclasses import replace

    from expertpm_runtime.catalog import ExpertChoice

    json_tool = runtime.catalog.get("json-tool")
    gen = {"temperature": 0.7, "top_p": 0.9, "top_k": 5, "max_tokens": 20, "stop": ["<|im_end|>", "###"]}
    tuned = replace(json_tool, manifest={**json_tool.manifest, "generation": gen})
    p = runtime.prepare("hi", choices=(ExpertChoice(tuned),), stop="@@", seed=3)
    eos = runtime.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert (p.params.temperature, p.params.top_p, p.params.top_k, p.params.max_tokens) == (0.7, 0.9, 5, 20)
    assert p.params.stop_token_ids == (eos,) and p.stop == ("###", "@@") and p.params.seed == 3
    assert p.prompt == "hi"  # no template in this manifest
    assert runtime.prepare("hi", choices=(ExpertChoice(tuned),), temperature=0.0).params.temperature == 0.0
    sampled = [runtime.generate_prepared(p).token_ids for _ in range(2)]
    assert sampled[0] == sampled[1]  # seeded sampling repeats

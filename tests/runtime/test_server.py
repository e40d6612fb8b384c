"""The OpenAI-compatible server on a real uvicorn over the tiny store: models, completions, chat,
SSE streaming, compositions, auto routing, /metrics and /health."""

from __future__ import annotations

import re

import httpx
import pytest

from serving_fixtures import sse_events, tiny_home, tiny_packages, tiny_server  # noqa: F401


@pytest.fixture
def client(tiny_server):
    with httpx.Client(base_url=tiny_server.url, timeout=60) as c:
        yield c


def test_models_lists_base_compatible_experts_and_auto(client, tiny_home):
    data = client.get("/v1/models").json()["data"]
    assert [(m["id"], m["kind"]) for m in data] == [("tiny-qwen3", "base"), ("french", "expert"),
                                                     ("json-tool", "expert"), ("auto", "router")]
    assert all(m["object"] == "model" for m in data)
    assert re.fullmatch(r"[0-9a-f]{64}", data[1]["digest"])


def test_completion_equals_the_python_api(client, tiny_server):
    r = client.post("/v1/completions", json={"model": "json-tool", "prompt": "Parse this JSON", "ignore_eos": True})
    assert r.status_code == 200 and r.headers["x-expertpm-experts"] == "json-tool"
    body = r.json()
    expected = tiny_server.runtime.generate("Parse this JSON", experts="json-tool", ignore_eos=True)
    assert body["object"] == "text_completion" and body["model"] == "json-tool"
    assert body["choices"][0]["text"] == expected.text and body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": expected.prompt_tokens, "completion_tokens": 8,
                             "total_tokens": expected.prompt_tokens + 8}  # max_tokens from the manifest
    assert body["expertpm"] == {"experts": ["json-tool"]}


def test_streamed_chat_equals_the_whole_answer(client):
    request = {"model": "json-tool*0.5+french", "messages": [{"role": "user", "content": "hello there"}],
               "max_tokens": 12, "ignore_eos": True}
    whole = client.post("/v1/chat/completions", json=request).json()
    assert whole["object"] == "chat.completion" and whole["expertpm"]["experts"] == ["json-tool", "french"]
    with client.stream("POST", "/v1/chat/completions", json={**request, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == whole["choices"][0]["message"]["content"]


def test_streamed_completion(client):
    request = {"model": "french", "prompt": "hello", "max_tokens": 9, "ignore_eos": True}
    whole = client.post("/v1/completions", json=request).json()["choices"][0]["text"]
    with client.stream("POST", "/v1/completions", json={**request, "stream": True}) as r:
        events = sse_events(r)
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == whole and events[-1] == "[DONE]"


def test_auto_routes_and_reports_its_decision(client):
    r = client.post("/v1/completions", json={"model": "auto", "prompt": "answer in French", "max_tokens": 2})
    assert r.headers["x-expertpm-experts"] == "french"
    route = r.json()["expertpm"]["route"]
    assert route["experts"] == ["french"] and route["method"] == "keywords"
    r = client.post("/v1/completions", json={"model": "auto", "prompt": "good morning", "max_tokens": 2})
    assert r.headers["x-expertpm-experts"] == "base" and r.json()["expertpm"]["route"]["reason"].startswith(
        "generic query → base")
    base = client.post("/v1/completions", json={"model": "tiny-qwen3", "prompt": "good morning", "max_tokens": 2})
    assert base.json()["expertpm"] == {"experts": []}


def test_metrics_and_health(client):
    client.post("/v1/completions", json={"model": "auto", "prompt": "parse json", "max_tokens": 3})
    client.post("/v1/completions", json={"model": "nope", "prompt": "x"})
    text = client.get("/metrics").text
    for family, kind in [("expertpm_router_seconds", "histogram"), ("expertpm_expert_load_seconds", "histogram"),
                         ("expertpm_queue_wait_seconds", "histogram"), ("expertpm_step_seconds", "histogram"),
                         ("expertpm_time_to_first_token_seconds", "histogram"),
                         ("expertpm_requests_total", "counter"), ("expertpm_engine_kv_blocks_used", "gauge"),
                         ("expertpm_engine_adapter_load_seconds_total", "counter")]:
        assert f"# TYPE {family} {kind}" in text
    values = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert float(values['expertpm_router_seconds_count{method="keywords"}']) >= 1
    assert float(values['expertpm_router_decisions_total{expert="json-tool"}']) >= 1
    assert float(values['expertpm_requests_total{endpoint="/v1/completions",status="404"}']) >= 1
    assert float(values['expertpm_step_seconds_count{phase="prefill"}']) >= 1
    assert float(values['expertpm_step_seconds_count{phase="decode"}']) >= 1
    assert float(values["expertpm_expert_load_seconds_count"]) >= 1
    assert float(values["expertpm_engine_adapter_loads_total"]) >= 1
    assert values['expertpm_step_seconds_bucket{phase="decode",le="+Inf"}'] == \
        values['expertpm_step_seconds_count{phase="decode"}']
    assert client.get("/health").json() == {"status": "ok", "base": "tiny-qwen3", "experts": 2}

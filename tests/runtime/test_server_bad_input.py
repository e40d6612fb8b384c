"""Bad input to the server: each gets its exact 4xx OpenAI error, nothing is loaded or leaked, and
the server keeps serving. Includes a client vanishing mid-stream and a too-small KV budget."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from expertpm_runtime.api import Runtime
from expertpm_runtime.router import RouterConfig
from serving_fixtures import RunningServer, tiny_home, tiny_packages, tiny_server  # noqa: F401

UNKNOWN = ("unknown expert 'nope': it is not installed — installed experts: french, json-tool; "
           "install it with `expertpm install nope`")


@pytest.fixture
def client(tiny_server):
    with httpx.Client(base_url=tiny_server.url, timeout=60) as c:
        yield c


def error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    return r.json()["error"]


def test_unknown_expert_is_404_model_not_found(client):
    e = error(client.post("/v1/completions", json={"model": "nope", "prompt": "x"}), 404)
    assert e == {"message": UNKNOWN, "type": "invalid_request_error", "param": None, "code": "model_not_found"}
    e = error(client.post("/v1/chat/completions", json={"model": "french+nope",
                                                         "messages": [{"role": "user", "content": "x"}]}), 404)
    assert e["message"] == UNKNOWN


def test_expert_for_another_base_is_refused_before_loading(client, tiny_server):
    before = tiny_server.stats()
    e = error(client.post("/v1/completions", json={"model": "foreign", "prompt": "x"}), 400)
    assert e["code"] == "base_mismatch"
    assert e["message"].startswith("expert foreign@0.1.0 is built for base tiny-qwen3 ^1.0.0 (weights ")
    assert ", not the loaded base tiny-qwen3 (weights " in e["message"]
    after = tiny_server.stats()
    assert (after["adapter_loads"], after["requests_added"]) == (before["adapter_loads"], before["requests_added"])


def test_more_experts_than_max_chain(client):
    e = error(client.post("/v1/completions", json={"model": "json-tool+french+json-tool", "prompt": "x"}), 400)
    assert e["message"] == ("3 experts requested but at most 2 can be composed on one request (max_chain) — "
                            "name fewer experts, or raise max_chain")
    assert e["code"] == "too_many_experts"


def test_prompt_longer_than_the_context(client, tiny_server):
    e = error(client.post("/v1/completions", json={"model": "tiny-qwen3", "prompt": "word " * 300}), 400)
    n = len(tiny_server.runtime.tokenizer.encode("word " * 300))
    assert e["message"] == f"prompt is {n} tokens but the model's context is 128 tokens — shorten the prompt"


@pytest.mark.parametrize("body, status, message", [
    (b'{"model": "french", "prompt": ', 400,
     "the request body is not valid JSON: Expecting value at line 1, column 31 — send a JSON object"),
    (b"\xff\xfe", 400, "the request body is not UTF-8"),
    (b'["french"]', 400, "the request body must be a JSON object"),
    (b'{"prompt": "x"}', 400, "'model' is required: an expert name, 'a+b' for a composition, or 'auto'"),
    (b'{"model": "french"}', 400, "'prompt' must be a string"),
    (b'{"model": "french", "prompt": "x", "max_tokens": "10"}', 400, "'max_tokens' must be an integer, not \"10\""),
    (b'{"model": "french", "prompt": "x", "max_tokens": 0}', 400, "max_tokens must be a positive integer, not 0"),
    (b'{"model": "french", "prompt": "x", "temperature": -1}', 400, "temperature must be >= 0, not -1"),
    (b'{"model": "french", "prompt": "x", "n": 2}', 400, "only n=1 is supported"),
    (b'{"model": "french*x", "prompt": "x"}', 400,
     "weight 'x' of expert 'french' is not a number — write NAME*0.5 (server) or NAME:0.5 (CLI)"),
])
def test_malformed_completion_bodies(client, body, status, message):
    e = error(client.post("/v1/completions", content=body, headers={"content-type": "application/json"}), status)
    assert e["message"] == message and e["type"] == "invalid_request_error"


def test_malformed_chat_bodies(client):
    e = error(client.post("/v1/chat/completions", json={"model": "french"}), 400)
    assert e["message"] == "'messages' is required" and e["param"] == "messages"
    e = error(client.post("/v1/chat/completions", json={"model": "french", "messages": [{"role": "robot"}]}), 400)
    assert e["message"] == ('messages[0] needs a role of system, user, assistant — '
                            'write {"role": "user", "content": "..."}')


def test_client_disconnect_mid_stream_aborts_and_frees_kv_blocks(tiny_server):
    before = tiny_server.stats()
    request = {"model": "french", "prompt": "hello", "max_tokens": 100, "ignore_eos": True, "stream": True}
    with httpx.Client(base_url=tiny_server.url, timeout=60) as c:
        with c.stream("POST", "/v1/completions", json=request) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
        # leaving the block closes the connection after the first event
    deadline = time.monotonic() + 30
    while (s := tiny_server.stats())["requests_aborted"] == before["requests_aborted"] or s["num_running"]:
        assert time.monotonic() < deadline, s
        time.sleep(0.02)
    assert s["requests_aborted"] == before["requests_aborted"] + 1
    assert s["kv_blocks_used"] == 0 and s["num_waiting"] == 0
    assert s["generation_tokens"] - before["generation_tokens"] < 100


def test_the_server_still_serves_after_all_that(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.post("/v1/completions", json={"model": "french", "prompt": "hi", "max_tokens": 2}).status_code == 200
    assert error(client.get("/v1/nothing"), 404)["message"] == "Not Found"
    assert error(client.get("/v1/completions"), 405)["type"] == "invalid_request_error"


@pytest.fixture(scope="module")
def small_server(tiny_home):
    """A 4-block KV cache (64 tokens) behind a model whose context is 128 tokens."""
    runtime = Runtime.from_store(tiny_home, router=RouterConfig(use_embeddings=False), kv_cache_bytes=4 * 8192)
    server = RunningServer(runtime)
    assert server.stats()["kv_blocks_total"] == 4
    yield server
    server.close()


def test_request_larger_than_the_memory_budget_is_refused(small_server):
    with httpx.Client(base_url=small_server.url, timeout=60) as c:
        r = c.post("/v1/completions", json={"model": "tiny-qwen3", "prompt": "hello", "max_tokens": 100})
    prompt = len(small_server.runtime.tokenizer.encode("hello"))
    need = -(-(prompt + 100) // 16)
    assert error(r, 400)["message"] == (
        f"request needs {need} KV cache blocks ({prompt + 100} tokens) but the whole cache holds 4 blocks "
        "(64 tokens) — lower max_tokens, shorten the prompt, or give the engine a larger kv_cache_bytes")


def test_requests_that_do_not_fit_together_wait_their_turn(small_server):
    """Each needs 3 of the 4 blocks: they run one after the other and give their solo answers."""
    prompts = ["hello there", "Parse this JSON", "say it in French"]
    solo = [small_server.runtime.generate(p, max_tokens=36, ignore_eos=True).text for p in prompts]
    results: dict[int, httpx.Response] = {}

    def call(i: int) -> None:
        with httpx.Client(base_url=small_server.url, timeout=120) as c:
            results[i] = c.post("/v1/completions", json={"model": "tiny-qwen3", "prompt": prompts[i],
                                                          "max_tokens": 36, "ignore_eos": True})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [results[i].status_code for i in range(3)] == [200] * 3
    assert [results[i].json()["choices"][0]["text"] for i in range(3)] == solo
    assert small_server.stats()["kv_blocks_used"] == 0

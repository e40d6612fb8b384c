"""The teacher client and the synthesize step against real servers on 127.0.0.1: caching,
retries, an endpoint that is down or answers garbage, and answers kept across a failed run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expertpm._errors import NetworkError
from expertpm_forge.data.synthesize import parse_examples
from expertpm_forge.pipeline import run_pipeline
from expertpm_forge.recipe import load_recipe
from expertpm_forge.teacher.client import ResponseCache, TeacherClient, TeacherError, cache_key

PROMPT = [{"role": "user", "content": "<task>sql</task><count>3</count><schema>CREATE TABLE t (id INTEGER, "
                                      "name TEXT, age INTEGER);</schema><document>t.name: Ana, Ben</document>"}]


def test_stand_in_answers_and_the_cache_answers_next_time(stand_in_teacher: str, tmp_path: Path) -> None:
    with TeacherClient(stand_in_teacher, "expertpm-stand-in", cache_dir=tmp_path / "cache") as client:
        first = client.complete(PROMPT, params={"temperature": 0}, parse=parse_examples)
        again = client.complete(PROMPT, params={"temperature": 0}, parse=parse_examples)
        other = client.complete(PROMPT, params={"temperature": 0.5}, parse=parse_examples)
    assert not first.cached and again.cached and not other.cached
    assert first.value == again.value and len(first.value) == 3
    assert client.requests_sent == 2
    assert first.key == cache_key("expertpm-stand-in", PROMPT, {"temperature": 0})
    assert len(ResponseCache(tmp_path / "cache")) == 2


def test_5xx_and_malformed_answers_are_retried(scripted_teacher, tmp_path: Path) -> None:
    endpoint, server = scripted_teacher([500, "not json at all", '{"choices": []}', "teacher"])
    with TeacherClient(endpoint, "m", cache_dir=tmp_path, retries=3, backoff=0.001) as client:
        result = client.complete(PROMPT, parse=parse_examples)
    assert server.requests == 4 and len(result.value) == 3


def test_malformed_json_after_all_retries_is_a_clear_error(scripted_teacher, tmp_path: Path) -> None:
    reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Sure! Here are examples:"}}]})
    endpoint, server = scripted_teacher([], default=reply)
    with TeacherClient(endpoint, "m", cache_dir=tmp_path, retries=2, backoff=0.001) as client:
        with pytest.raises(TeacherError) as info:
            client.complete(PROMPT, parse=parse_examples)
    assert str(info.value) == (f"teacher {endpoint} failed after 3 attempts: the answer is not what the template "
                               "asks for: Expecting value: line 1 column 1 (char 0) — answers received so far are "
                               "cached; fix the teacher and run again")
    assert server.requests == 3 and len(ResponseCache(tmp_path)) == 0


def test_endpoint_down_is_a_clear_error(closed_port: int) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}/v1"
    with TeacherClient(endpoint, "m", retries=1, backoff=0.001) as client:
        with pytest.raises(NetworkError) as info:
            client.complete(PROMPT)
    assert str(info.value) == (f"teacher {endpoint} is unreachable after 2 attempts: ConnectError: [Errno 111] "
                               "Connection refused — start it (e.g. `expertpm forge teacher-serve`) or fix "
                               "teacher.endpoint")


def test_4xx_is_not_retried(scripted_teacher) -> None:
    endpoint, server = scripted_teacher([401])
    with TeacherClient(endpoint, "m", retries=3, backoff=0.001) as client:
        with pytest.raises(TeacherError) as info:
            client.complete(PROMPT)
    assert server.requests == 1
    assert str(info.value) == (f"teacher {endpoint} refused the request: HTTP 401: scripted 401 — check "
                               "teacher.endpoint, teacher.model and the API key")


def test_parse_examples_accepts_fences_and_wrapped_lists() -> None:
    assert parse_examples('```json\n[{"a": 1}]\n```') == [{"a": 1}]
    assert parse_examples('{"examples": [{"a": 1}]}') == [{"a": 1}]
    with pytest.raises(ValueError, match="expected a JSON list of objects"):
        parse_examples('[1, 2]')


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_synthesize_keeps_answers_when_the_teacher_fails_half_way(make_expert, sql_recipe, scripted_teacher,
                                                                  stand_in_teacher) -> None:
    # 2 chunks x 2 rounds = 4 requests; the teacher answers 2, then only fails
    endpoint, flaky = scripted_teacher(["teacher", "teacher"], default=503)
    recipe = sql_recipe(endpoint, teacher={"concurrency": 1, "retries": 1},
                        data={"sources": ["docs/*.md"], "chunk_tokens": 200})
    root = make_expert(recipe)
    with pytest.raises(TeacherError, match="failed after 2 attempts: HTTP 503: scripted 503"):
        run_pipeline(load_recipe(root))
    cache = ResponseCache(root / ".forge" / "cache" / "teacher")
    assert len(cache) == 2 and not (root / ".forge" / "synthesize").exists()

    # the same recipe against a healthy teacher only asks for what is missing
    endpoint, healthy = scripted_teacher([], default="teacher")
    root = make_expert(sql_recipe(endpoint, teacher={"concurrency": 1, "retries": 1},
                                  data={"sources": ["docs/*.md"], "chunk_tokens": 200}))
    outcomes = {o.step: o for o in run_pipeline(load_recipe(root))}
    assert healthy.requests == 2
    summary = outcomes["synthesize"].summary
    assert (summary["requests"], summary["cached"]) == (4, 2)
    assert summary["teacher"]["templates"] == {"builtin:sql": json.loads(
        (root / ".forge" / "synthesize" / "provenance.json").read_text())["teacher"]["templates"]["builtin:sql"]}

    # and the examples are exactly those of an uninterrupted run with the stand-in teacher
    clean = make_expert(sql_recipe(stand_in_teacher, teacher={"cache_dir": ".forge/other-cache"},
                                   data={"sources": ["docs/*.md"], "chunk_tokens": 200}), name="sql-clean")
    run_pipeline(load_recipe(clean))
    assert read(root / ".forge" / "synthesize" / "examples.jsonl") == read(
        clean / ".forge" / "synthesize" / "examples.jsonl")

"""`expertpm run` and `expertpm chat` as subprocesses against a real store of tiny packages."""

from __future__ import annotations

import pytest

from expertpm_testing.core import run_cli
from serving_fixtures import tiny_home, tiny_packages, tiny_server  # noqa: F401

KW = ("--keywords-only", "--kv-cache-mb", "1")


@pytest.mark.slow  # loads torch and the model in a subprocess
def test_run_streams_the_experts_completion(tiny_home, tiny_server):
    proc = run_cli("run", "--experts", "json-tool", "Parse this JSON", *KW, home=tiny_home)
    assert proc.returncode == 0, proc.stderr
    expected = tiny_server.runtime.generate("Parse this JSON", experts="json-tool").text
    assert proc.stdout == expected + "\n"


@pytest.mark.slow  # loads torch and the model in a subprocess
def test_run_auto_shows_the_route_and_reads_stdin(tiny_home, tiny_server):
    proc = run_cli("run", "--auto", "--show-route", "--max-tokens", "5", "-", *KW, home=tiny_home,
                   input="answer in French")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines()[-1] == "experts: french (french by keyword match)"
    assert proc.stdout == tiny_server.runtime.generate("answer in French", experts="french", max_tokens=5).text + "\n"


def test_run_refuses_bad_experts_before_loading_the_model(tiny_home):
    cases = {
        "nope": "error: unknown expert 'nope': it is not installed — installed experts: french, json-tool; "
                "install it with `expertpm install nope`",
        "json-tool,json-tool": "error: expert 'json-tool' is named twice — name each expert once",
        "json-tool:abc": "error: weight 'abc' of expert 'json-tool' is not a number — write NAME*0.5 (server) "
                         "or NAME:0.5 (CLI)",
    }
    for experts, message in cases.items():
        proc = run_cli("run", "--experts", experts, "x", home=tiny_home)
        assert (proc.returncode, proc.stderr.strip()) == (1, message)
    proc = run_cli("run", "--experts", "foreign", "x", home=tiny_home)
    assert proc.returncode == 1 and proc.stderr.startswith("error: expert foreign@0.1.0 is built for base ")
    proc = run_cli("run", "--experts", "french,json-tool", "--max-chain", "1", "x", home=tiny_home)
    assert proc.stderr.strip() == ("error: 2 experts requested but at most 1 can be composed on one request "
                                   "(max_chain) — name fewer experts, or raise max_chain")
    assert run_cli("run", "--experts", "french", "--auto", "x", home=tiny_home).returncode == 2


def test_run_without_a_base(tmp_path):
    proc = run_cli("run", "x", home=tmp_path / "empty-home")
    assert (proc.returncode, proc.stderr.strip()) == (
        1, "error: no base model is installed — install one with `expertpm install NAME`, or pass --base NAME|DIR")
    proc = run_cli("run", "--base", "./missing/base", "x", home=tmp_path / "empty-home")
    assert proc.stderr.strip() == ("error: base model directory ./missing/base does not exist — pass an installed "
                                   "base's name or a Hugging Face model directory")


@pytest.mark.slow  # loads torch and the model in a subprocess
def test_chat_session(tiny_home, tiny_server):
    script = "hello there\n/experts json-tool\nParse this\n/experts nope\n/auto\nin French\n/quit\nnever read\n"
    proc = run_cli("chat", "--max-tokens", "4", *KW, home=tiny_home, input=script)
    assert proc.returncode == 0, proc.stderr
    rt, history, expected = tiny_server.runtime, [], []
    for text, experts in [("hello there", None), ("Parse this", "json-tool"), ("in French", "french")]:
        history.append({"role": "user", "content": text})
        answer = rt.generate(messages=history, experts=experts, max_tokens=4).text
        history.append({"role": "assistant", "content": answer})
        expected.append(answer + "\n")
    assert proc.stdout == "".join(expected)
    err = proc.stderr.splitlines()
    assert err[0] == "base tiny-qwen3; experts: french, json-tool"
    assert err[2:] == ["experts: json-tool", "error: unknown expert 'nope': it is not installed — installed experts: "
                       "french, json-tool; install it with `expertpm install nope`",
                       "the router picks experts for each message", "[french]"]

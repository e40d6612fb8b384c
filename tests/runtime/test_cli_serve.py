"""`expertpm serve` as a real process: it comes up, answers, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from serving_fixtures import REPO_ROOT, free_port, tiny_home, tiny_packages  # noqa: F401


@pytest.mark.slow  # starts a server process that loads torch and the model
def test_serve_answers_and_stops_on_interrupt(tiny_home):
    port = free_port()
    env = {**os.environ, "EXPERTPM_HOME": str(tiny_home)}
    proc = subprocess.Popen([sys.executable, "-m", "expertpm", "serve", "--port", str(port), "--keywords-only",
                             "--kv-cache-mb", "1"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)
        r = httpx.post(f"{url}/v1/chat/completions", timeout=60,
                       json={"model": "auto", "messages": [{"role": "user", "content": "parse this json"}],
                             "max_tokens": 3})
        assert r.status_code == 200 and r.json()["expertpm"]["experts"] == ["json-tool"]
        assert httpx.post(f"{url}/v1/completions", json={"model": "nope", "prompt": "x"}).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert "serving base tiny-qwen3 with experts: french, json-tool" in stderr
    assert f"listening on http://127.0.0.1:{port}/v1" in stderr

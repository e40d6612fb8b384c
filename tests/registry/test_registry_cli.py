"""`expertpm registry serve` as a real process: it serves, says how to follow the index, refuses a
directory that is not an index in one line, and the CLI module imports no server code up front."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from expertpm_testing.registry import start_registry_process as start
from expertpm_testing.registry import stop_registry_process as stop


@pytest.mark.parametrize("workers", ["1", pytest.param("2", marks=pytest.mark.slow)])
def test_serve_runs_the_registry(registry_world, workers):
    proc, url = start(registry_world.dir, "--workers", workers)
    try:
        status = httpx.get(url + "/api/status").json()
        assert status["fingerprint"] == registry_world.fingerprint
        for _ in range(4):
            assert httpx.get(url + "/index/snapshot.json").status_code == 200
        assert "sql" in httpx.get(url + "/", headers={"Accept": "text/html"}).text
    finally:
        err = stop(proc)
    assert f"expertpm index add test-index {url}/index/ --fingerprint {registry_world.fingerprint}" in err


def test_serving_something_that_is_not_an_index_is_one_clear_line(tmp_path, cli):
    done = cli("registry", "serve", str(tmp_path))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "not an index repository" in done.stderr
    assert "Traceback" not in done.stderr
    bad_port = cli("registry", "serve", str(tmp_path), "--port", "70000")
    assert bad_port.returncode == 1 and "--port" in bad_port.stderr


def test_the_command_module_imports_no_server_code():
    code = ("import sys, expertpm.cli.registry; "
            "print(sorted(m for m in ('litestar', 'uvicorn', 'jinja2', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""Shared by the registry benchmarks: start servers as separate processes on 127.0.0.1 and run the
load generator (`expertpm_registry.loadgen`) as a third one."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(proc: subprocess.Popen, url: str, log, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url}")


class Server:
    """A server process; `url` is where its index files are."""

    def __init__(self, command: list[str], url: str, probe: str) -> None:
        # a file, not a pipe: http.server logs every request and would block on a full pipe
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = url
        _wait(self.proc, probe, self.log)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def registry_server(index_dir: Path, *, workers: int = 1) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "expertpm", "registry", "serve", str(index_dir), "--port", str(port),
                   "--workers", str(workers)], f"http://127.0.0.1:{port}/index/",
                  f"http://127.0.0.1:{port}/index/config.json")


def static_server(directory: Path) -> Server:
    port = free_port()
    return Server([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                   str(directory)], f"http://127.0.0.1:{port}/", f"http://127.0.0.1:{port}/config.json")


def load(url: str, paths_file: Path, *, clients: int, requests: int, max_seconds: float) -> dict:
    done = subprocess.run([sys.executable, "-m", "expertpm_registry.loadgen", url, "--paths-file", str(paths_file),
                           "--clients", str(clients), "--requests", str(requests), "--max-seconds", str(max_seconds)],
                          capture_output=True, text=True, timeout=max_seconds + 120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)

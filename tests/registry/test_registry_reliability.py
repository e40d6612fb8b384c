"""Bad input, fuzzing, load and a changing index: never a 5xx, never an error under load, never an
undetected mix of two snapshots."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pygit2
import pytest

from expertpm._home import Home
from expertpm._index import _gitdb as git
from expertpm._index import add_index, open_index, update_index, verify_index
from expertpm._index._client import load_state

from expertpm_testing.registry import ARTIFACTS_DIR

QUERIES = [
    {"q": "x" * 201}, {"q": "%ZZ%00"}, {"q": "\x00\x01"}, {"q": "ä" * 150}, {"limit": "abc"}, {"limit": "0"},
    {"limit": "99999999999999999999999"}, {"kind": "robot"}, {"page": "-1"}, {"q": ["a", "b", "c"]},
    {"version": "v" * 500}, {"q": "sql", "limit": "1e3"},
]


@pytest.mark.parametrize("params", QUERIES)
@pytest.mark.parametrize("path", ["/api/search", "/", "/api/packages/sql", "/packages/sql", "/status"])
def test_malformed_queries_are_4xx_or_ignored_never_5xx(registry, path, params):
    response = httpx.get(registry.url + path, params=params)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["status_code"] == 400


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        try:
            return s.recv(4096)
        except ConnectionResetError:
            return b""


@pytest.mark.parametrize("target", [
    b"/api/search?q=" + b"a" * 100_000,
    b"/api/search?" + b"&".join(b"q=%d" % i for i in range(5000)),
    b"/index/" + b"a/" * 5000,
    b"/api/packages/" + b"x" * 5000,
    b"/api/packages/%C3%28",
    b"/?q=\xff\xfe",
    b"/index/%00",
])
def test_huge_or_broken_request_lines_are_refused_cleanly(registry, target):
    reply = raw_request(registry.port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status = reply.split(b"\r\n", 1)[0]
    assert not status.startswith(b"HTTP/1.1 5"), status
    assert httpx.get(registry.url + "/api/status").status_code == 200  # and the server is still fine


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(registry):
    pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")
    cli = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(cli), "run", f"{registry.url}/schema/openapi.json", "--checks", "not_a_server_error",
         "--max-examples", "12", "--seed", "1", "--request-timeout", "10", "--no-color"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


def index_paths(index_dir: Path) -> list[str]:
    repo = pygit2.Repository(str(index_dir))
    return [p for p, _ in git.walk_files(repo.references["refs/heads/main"].peel(pygit2.Commit).tree)]


def run_load(url: str, paths: list[str], tmp_path: Path, *, requests: int, check_etag: bool = False,
             clients: int = 64, max_seconds: float = 40) -> dict:
    """The load generator in a second process (bounded in requests and in time)."""
    paths_file = tmp_path / "paths.txt"
    paths_file.write_text("\n".join(paths))
    command = [sys.executable, "-m", "expertpm_registry.loadgen", url, "--paths-file", str(paths_file),
               "--clients", str(clients), "--requests", str(requests), "--max-seconds", str(max_seconds)]
    if check_etag:
        command.append("--check-etag")
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_64_concurrent_clients_fetch_index_files_without_errors(registry, registry_world, tmp_path):
    result = run_load(registry.index_url, index_paths(registry_world.dir), tmp_path, requests=3000, check_etag=True)
    out = ARTIFACTS_DIR / "registry"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load.json").write_text(json.dumps(result, indent=2))
    print(f"\nregistry load: {result['requests']} requests from {result['clients']} clients, "
          f"{result['requests_per_second']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    assert result["errors"] == 0, result["error_samples"]
    assert result["requests"] > 0 and result["statuses"] == {"200": result["requests"]}


@pytest.mark.slow
def test_the_index_changing_under_load_never_yields_a_mix(fresh_registry_world, serve_registry, tmp_path):
    """Clients fetch while versions are published: every response is whole (body matches its
    ETag), and a sparse client either verifies one snapshot or starts over — never a mix."""
    world = fresh_registry_world
    server = serve_registry(world.dir)
    home = Home(tmp_path / "client")
    add_index(home, "reg", server.index_url, fingerprint=world.fingerprint)
    for name in ("sql", "sentiment"):
        open_index(home, "reg").entries(name)
    paths = ["snapshot.json", "config.json", "3/s/sql", "se/nt/sentiment"] + \
            [p for p in index_paths(world.dir) if p.startswith("snapshot/")]
    stop, published, seen, problems = threading.Event(), [], set(), []

    def publish() -> None:
        try:
            for i in range(6):
                world.publish_expert("sql" if i % 2 else "sentiment", f"{2 + i}.0.0", seed=100 + i)
                published.append(i)
        finally:
            stop.set()

    def follow() -> None:
        while not stop.is_set():
            try:
                update_index(home, "reg")
                state = load_state(home, "reg")
                seen.add(state.snapshot_version)
                index = open_index(home, "reg")
                for name in ("sql", "sentiment"):
                    index.entries(name)
            except Exception as exc:  # any error here is a client that failed to follow the index
                problems.append(repr(exc))

    load: dict = {}

    def fetch_under_load() -> None:  # a second process, for as long as the publishing goes on (bounded)
        load.update(run_load(server.index_url, paths, tmp_path, requests=200_000, check_etag=True, clients=32,
                             max_seconds=8))

    threads = [threading.Thread(target=f) for f in (fetch_under_load, publish, follow)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    print(f"\nunder load: {load['requests']} requests, snapshots followed: {sorted(seen)}")
    assert len(published) == 6
    assert load["errors"] == 0, load["error_samples"]
    assert problems == []
    update_index(home, "reg")
    final = verify_index(home, "reg")  # every held line of the final state, re-verified
    assert final.state.snapshot_version == max(seen | {final.state.snapshot_version})
    index = open_index(home, "reg")
    assert index.entries("sql")[-1].version == "7.0.0" and index.entries("sentiment")[-1].version == "6.0.0"

"""Fixtures for projects, the installer, search and mirrors: a real signed index holding a tiny base
model and a few experts bound to it, a client home ("another machine"), a project directory, the
real CLI run inside it, and a real HTTP server on 127.0.0.1 that can cut a download short.

The standard catalogue (built once per session, copied per test):

    tiny-qwen3 1.0.0 (base)      sql 1.0.0, 1.1.0           sql-explain 1.0.0 (requires sql ^1.1)
    tool-call 1.0.0              cypher 1.0.0 (incompatible with sql)
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from expertpm._home import Home
from expertpm._keys import Keyring

from .index import IndexWorld
from .packages import make_expert_source

BASE_NAME = "tiny-qwen3"
PROJECT_EXPERTS = {
    "sql": dict(description="text to SQL: turns questions into SELECT queries",
                keywords=["sql", "select", "query", "database"], examples=["how many users signed up today"]),
    "sql-explain": dict(description="explains SQL queries in plain English", keywords=["sql", "explain"],
                        examples=["what does this query do"], requires={"sql": "^1.1"}),
    "tool-call": dict(description="calls tools and functions with JSON arguments", keywords=["tool", "function"],
                      examples=["book a table for two"]),
    "cypher": dict(description="text to Cypher for graph databases", keywords=["cypher", "graph", "neo4j"],
                   examples=["friends of friends of alice"], incompatible_with={"sql": "*"}),
}


@dataclass
class ProjectWorld:
    """An index (maintainer side), a client home and an empty project directory."""

    tmp: Path
    index: IndexWorld
    home: Home
    project: Path
    base_src: Path
    seeds: dict = field(default_factory=dict)

    # -- publishing (maintainer side) ----------------------------------------------------------
    def publish_base(self, version: str = "1.0.0"):
        from expertpm._index import publish
        from expertpm._package import pack

        doc = json.loads((self.base_src / "manifest.json").read_text())
        doc["version"] = version
        (self.base_src / "manifest.json").write_text(json.dumps(doc))
        out = self.tmp / "dist" / "base"
        out.mkdir(parents=True, exist_ok=True)
        return publish(self.index.dir, pack(self.base_src, out, self.index.publisher), self.index.publisher)

    def pack_expert(self, name: str, version: str = "1.0.0", *, base_range: str = "^1", description: str | None = None,
                    keywords=(), examples=(), requires=None, incompatible_with=None, size: int = 0,
                    **manifest) -> Path:
        from expertpm._package import pack

        seed = self.seeds[name] = self.seeds.get(name, len(self.seeds) * 10) + 1
        src = make_expert_source(
            self.tmp / "src" / f"{name}-{version}", seed=seed, name=name, version=version,
            description=description or f"{name} expert", base={"name": BASE_NAME, "version": base_range},
            routing={"keywords": list(keywords) or [name], "exclude_keywords": [], "examples": list(examples),
                     "priority": 0.5},
            requires=dict(requires or {}), incompatible_with=dict(incompatible_with or {}), **manifest)
        if size:
            (src / "notes.dat").write_bytes(os.urandom(size))  # incompressible padding, for download tests
        out = self.tmp / "dist" / f"{name}-{version}"
        out.mkdir(parents=True, exist_ok=True)
        return pack(src, out, self.index.publisher, base_dir=self.base_src)

    def publish_expert(self, name: str, version: str = "1.0.0", *, embedding=None, **kw):
        from expertpm._index import publish

        defaults = PROJECT_EXPERTS.get(name, {})
        package = self.pack_expert(name, version, **{**defaults, **kw})
        return publish(self.index.dir, package, self.index.publisher, embedding=embedding)

    def yank(self, name: str, version: str, yank: bool = True):
        from expertpm._index import set_yanked

        return set_yanked(self.index.dir, name, version, self.index.publisher, yank=yank)

    # -- the client machine --------------------------------------------------------------------
    def follow(self, name: str = "default", url: str | None = None, *, home: Home | None = None, **kw):
        from expertpm._index import add_index

        return add_index(home or self.home, name, url or str(self.index.dir), fingerprint=self.index.fingerprint,
                         **kw)

    def cli(self, *args: str, cwd: Path | None = None, home: Home | Path | None = None,
            env: dict | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        """Run the real CLI in a subprocess inside the project directory."""
        full_env = dict(os.environ)
        full_env["EXPERTPM_HOME"] = str(getattr(home, "root", home) or self.home.root)
        full_env.update(env or {})
        return subprocess.run([*prefix, sys.executable, "-m", "expertpm", *args], capture_output=True, text=True,
                              env=full_env, cwd=cwd or self.project)

    def ok(self, *args: str, **kw) -> str:
        proc = self.cli(*args, **kw)
        assert proc.returncode == 0, f"expertpm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}"
        return proc.stdout

    def fails(self, *args: str, code: int = 1, **kw) -> str:
        """The one error line of a failing command (asserting there is exactly one and no traceback)."""
        proc = self.cli(*args, **kw)
        assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(lines) == 1, proc.stderr
        return lines[0].removeprefix("error: ")


def make_project_world(tmp: Path) -> ProjectWorld:
    """A fresh index whose publisher may publish every name, a client home, an empty project dir."""
    from expertpm._index import delegate, publisher_key_from
    from expertpm._scaffold import scaffold

    from .index import make_index_world

    index = make_index_world(tmp / "world", threshold=1)
    delegate(index.dir, publisher_key_from(index.maintainer, "publisher"), ["*"], index.root_keys[:1])
    base_src = scaffold(BASE_NAME, tmp / "base-src", kind="base")
    project = tmp / "project"
    project.mkdir(exist_ok=True)
    return ProjectWorld(tmp, index, Home(tmp / "client-home"), project, base_src)


def publish_catalogue(world: ProjectWorld) -> None:
    world.publish_base("1.0.0")
    world.publish_expert("sql", "1.0.0")
    world.publish_expert("sql", "1.1.0")
    for name in ("sql-explain", "tool-call", "cypher"):
        world.publish_expert(name, "1.0.0")


def copy_world(template: ProjectWorld, tmp: Path) -> ProjectWorld:
    """A private copy of a world (its index, maintainer keys and base source) under `tmp`."""
    for part in ("world", "base-src"):
        shutil.copytree(template.tmp / part, tmp / part, symlinks=True)
    old = template.index
    ring = Keyring(Home(tmp / "world" / "maintainer"))
    index = IndexWorld(tmp / "world", tmp / "world" / "index", old.fingerprint, Home(tmp / "world" / "maintainer"),
                       Home(tmp / "world" / "client"), [ring.load("root-a"), ring.load("root-b")],
                       ring.load("publisher"))
    project = tmp / "project"
    project.mkdir()
    return ProjectWorld(tmp, index, Home(tmp / "client-home"), project, tmp / "base-src", dict(template.seeds))


@pytest.fixture(scope="session")
def _catalogue_template(tmp_path_factory) -> ProjectWorld:
    world = make_project_world(tmp_path_factory.mktemp("catalogue"))
    publish_catalogue(world)
    return world


@pytest.fixture
def project_world(_catalogue_template, tmp_path) -> ProjectWorld:
    """The standard catalogue in a private index, a fresh client home (not yet following it) and an
    empty project directory."""
    return copy_world(_catalogue_template, tmp_path)


@pytest.fixture
def followed_world(project_world) -> ProjectWorld:
    """`project_world` whose client home follows the index as `default`."""
    project_world.follow()
    return project_world


# -- a real HTTP server for index files and artifacts ----------------------------------------------

class ServedFiles:
    """A threaded HTTP server on 127.0.0.1 serving `root`, with Range support and fault injection:
    `cut[path] = n` ends the next response for `path` after n bytes (the connection is dropped);
    `fail[path] = status` answers every request for `path` with that status until removed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.cut: dict[str, int] = {}
        self.fail: dict[str, int] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        handler = _handler_for(self)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler_for(served: ServedFiles):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].lstrip("/")
            served.requests.append((path, self.headers.get("Range")))
            target = served.root / path
            status = None if path in served.cut else served.fail.get(path)  # a pending cut comes first
            if status is not None or ".." in Path(path).parts or not target.is_file():
                self.send_response(status or 404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = target.read_bytes()
            start = 0
            wanted = self.headers.get("Range")
            if wanted and wanted.startswith("bytes=") and wanted.endswith("-"):
                start = int(wanted[6:-1])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            limit = served.cut.pop(path, None)
            if limit is not None:
                self.wfile.write(body[:limit])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def serve_dir():
    """`serve_dir(path) -> ServedFiles`: serve a directory over HTTP on 127.0.0.1 for this test."""
    servers: list[ServedFiles] = []

    def start(root: Path) -> ServedFiles:
        servers.append(ServedFiles(root))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


NO_NETWORK_RUNNER = r"""
import os, sys
def _refuse(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto"):
        sys.stderr.write(f"NETWORK ATTEMPT: {event} {args!r}\n")
        sys.stderr.flush()
        os._exit(99)
sys.addaudithook(_refuse)
from expertpm.cli import main
sys.exit(main(sys.argv[1:]))
"""


def serve_index(world: ProjectWorld, serve_dir) -> ServedFiles:
    """Export the world's index (tree and artifacts) as plain files and serve them over HTTP."""
    from expertpm._index import IndexHost, export_index

    out = world.tmp / "served"
    if out.exists():
        shutil.rmtree(out)
    export_index(IndexHost(world.index.dir), out)
    return serve_dir(out)


def run_without_network(world: ProjectWorld, *args: str, home: Home | None = None,
                        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI with an audit hook that kills the process (exit 99) on any socket connect or DNS
    lookup, inside a network namespace with no interfaces when `unshare -rn` works here."""
    prefix: tuple[str, ...] = ()
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        prefix = ("unshare", "-rn")
    env = dict(os.environ, EXPERTPM_HOME=str((home or world.home).root))
    return subprocess.run([*prefix, sys.executable, "-c", NO_NETWORK_RUNNER, *args], capture_output=True,
                          text=True, env=env, cwd=cwd or world.project)


__all__ = [
    "BASE_NAME", "PROJECT_EXPERTS", "ProjectWorld", "ServedFiles", "copy_world", "followed_world",
    "make_project_world", "project_world", "publish_catalogue", "run_without_network", "serve_dir", "serve_index",
    "_catalogue_template",
]

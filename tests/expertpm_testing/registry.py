"""Fixtures for the registry server: a real signed index with a base model, experts (one with a
dependency, one yanked version, evaluations) and their artifacts; a real uvicorn server on
127.0.0.1 in a background thread; and helpers for headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from .index import IndexWorld, make_index_world

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,1000")


def make_base_source(directory: Path, *, name: str = "tiny", version: str = "1.0.0", seed: int = 0) -> Path:
    """A base-model package source: a (very small) Hugging Face directory plus its manifest."""
    from safetensors.numpy import save_file

    from expertpm._manifest import directory_digests

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    save_file({"model.embed_tokens.weight": rng.standard_normal((256, 16), dtype=np.float32)},
              str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "qwen3", "vocab_size": 256, "hidden_size": 16}))
    (directory / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE", "vocab": {}}}))
    (directory / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 512}))
    weights, tokenizer = directory_digests(directory)
    manifest = {"format_version": 1, "name": name, "version": version, "kind": "base",
                "description": "a tiny base model for tests", "license": "Apache-2.0", "authors": ["tests"],
                "model": {"architecture": "qwen3", "weights_sha256": weights, "tokenizer_sha256": tokenizer,
                          "vocab_size": 256, "context_length": 512}}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


@dataclass
class RegistryWorld:
    """An `IndexWorld` whose publisher may publish every name, holding:

    * `tiny` 1.0.0 — a base model;
    * `sql` 1.0.0, 1.1.0 and 1.2.0 (yanked), on `tiny ^1.0`, with an evaluation;
    * `sql-explain` 1.0.0, which requires `sql ^1.0`;
    * `sentiment` 0.3.0, with routing keywords and an excluded keyword.
    """

    world: IndexWorld
    weights_sha256: str

    @property
    def dir(self) -> Path:
        return self.world.dir

    @property
    def fingerprint(self) -> str:
        return self.world.fingerprint

    def publish_expert(self, name: str, version: str, *, seed: int = 0, **manifest):
        base = {"name": "tiny", "version": "^1.0", "weights_sha256": self.weights_sha256,
                "tokenizer_sha256": "c" * 64, "vocab_size": 256}
        return self.world.publish(name, version, seed=seed, base=base, **manifest)


def make_registry_world(tmp: Path) -> RegistryWorld:
    from expertpm._index import delegate, publish, publisher_key_from, set_yanked
    from expertpm._package import pack

    world = make_index_world(tmp)
    delegate(world.dir, publisher_key_from(world.maintainer, "publisher", "Test Lab"), ["*"], world.root_keys)
    base_src = make_base_source(tmp / "src" / "tiny")
    (tmp / "dist" / "base").mkdir(parents=True, exist_ok=True)
    publish(world.dir, pack(base_src, tmp / "dist" / "base", world.publisher), world.publisher)
    weights = json.loads((base_src / "manifest.json").read_text())["model"]["weights_sha256"]
    reg = RegistryWorld(world, weights)
    sql = {"description": "Turns questions into SQL queries",
           "routing": {"keywords": ["sql", "select", "database"], "examples": ["how many users signed up today?"]},
           "eval": {"metric": "exact_match", "expert_score": 0.82, "base_score": 0.31, "n": 200}}
    for i, version in enumerate(("1.0.0", "1.1.0", "1.2.0")):
        reg.publish_expert("sql", version, seed=i, **sql)
    set_yanked(world.dir, "sql", "1.2.0", world.publisher)
    reg.publish_expert("sql-explain", "1.0.0", seed=5, description="Explains SQL query plans",
                       requires={"sql": "^1.0"}, routing={"keywords": ["explain", "query plan"]})
    reg.publish_expert("sentiment", "0.3.0", seed=7, description="Classifies the sentiment of reviews",
                       routing={"keywords": ["sentiment", "review"], "exclude_keywords": ["sql"]},
                       eval={"metric": "accuracy", "expert_score": 0.91, "base_score": 0.55, "n": 300})
    return reg


@pytest.fixture(scope="module")
def registry_world(tmp_path_factory: pytest.TempPathFactory) -> RegistryWorld:
    """A populated index (built once per test module: tests must not change it)."""
    return make_registry_world(tmp_path_factory.mktemp("registry"))


@pytest.fixture
def fresh_registry_world(tmp_path: Path) -> RegistryWorld:
    """A populated index of this test's own, free to change."""
    return make_registry_world(tmp_path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PathLog:
    """ASGI wrapper that notes the path of every HTTP request (to check what a client fetched)."""

    def __init__(self, app) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


class RunningRegistry:
    """`create_app(index_dir)` served by uvicorn on 127.0.0.1 in a daemon thread; `requests()`
    lists the paths requested since the last `requests(clear=True)`."""

    def __init__(self, index_dir: Path, **app_options) -> None:
        import uvicorn

        from expertpm_registry import create_app

        self.app = create_app(index_dir, **app_options)
        self.log = _PathLog(self.app)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.index_url = f"{self.url}/index/"
        config = uvicorn.Config(self.log, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> "RunningRegistry":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the registry server did not start")
            time.sleep(0.02)
        return self

    def requests(self, *, clear: bool = False) -> list[str]:
        """Index paths requested (without the /index/ prefix), oldest first."""
        paths = [p.removeprefix("/index/") for p in self.log.paths]
        if clear:
            self.log.paths.clear()
        return paths

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve_registry():
    """`serve_registry(index_dir, **options) -> RunningRegistry`, stopped after the test."""
    running: list[RunningRegistry] = []

    def start(index_dir: Path, **options) -> RunningRegistry:
        server = RunningRegistry(index_dir, **options).start()
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def registry(registry_world: RegistryWorld):
    """The module's `registry_world` served on 127.0.0.1."""
    server = RunningRegistry(registry_world.dir).start()
    yield server
    server.stop()


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) if both are installed (Debian: `apt-get install chromium chromium-driver`)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser(tmp_path: Path):
    """Headless Chromium driven by selenium; skipped with the reason when either is missing."""
    paths = chromium_paths()
    if paths is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=paths[1]))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str) -> Path:
    """Save a screenshot under test-artifacts/registry/ (kept by CI as a test artifact)."""
    out = ARTIFACTS_DIR / "registry"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def start_registry_process(index_dir: Path, *args: str) -> tuple[subprocess.Popen, str]:
    """`expertpm registry serve INDEX_DIR --port N ARGS…` as a real process: (process, base URL)."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "expertpm", "registry", "serve", str(index_dir), "--port",
                             str(port), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/api/status", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the server did not answer in time")


def stop_registry_process(proc: subprocess.Popen) -> str:
    """Stop a `registry serve` process; its stderr."""
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@contextmanager
def registry_process(index_dir: Path, *args: str):
    """The base URL of `expertpm registry serve INDEX_DIR`, stopped on leaving."""
    proc, url = start_registry_process(index_dir, *args)
    try:
        yield url
    finally:
        stop_registry_process(proc)


__all__ = [
    "RegistryWorld", "RunningRegistry", "browser", "chromium_paths", "free_port", "fresh_registry_world",
    "make_base_source", "make_registry_world", "registry", "registry_process", "registry_world", "screenshot",
    "serve_registry", "start_registry_process", "stop_registry_process",
]

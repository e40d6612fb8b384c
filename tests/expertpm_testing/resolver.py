"""Fixtures for the resolver, experts.toml and experts.lock: real, signed index entries in memory.

`entry(...)` builds a complete index-entry dict (schema `index-entry`, signed with a fixed ed25519
key so bytes are stable across runs); `memory_index(...)` wraps entries in the in-memory source the
provider reads; `write_project(dir, text)` writes an experts.toml.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from expertpm._canonical import canonical_json
from expertpm._keys import SigningKey
from expertpm._provider import MemorySource
from expertpm._resolver import BaseProvider, Requirement, resolve
from expertpm._versions import Version, VersionRange

PUBLISHER = SigningKey("resolver-tests", bytes(range(32)))
WEIGHTS_V1 = hashlib.sha256(b"tiny-qwen3 1.x weights").hexdigest()
WEIGHTS_V2 = hashlib.sha256(b"tiny-qwen3 2.x weights").hexdigest()
TOKENIZER = hashlib.sha256(b"tiny-qwen3 tokenizer").hexdigest()
FINGERPRINT = hashlib.sha256(b"test index root key").hexdigest()
OTHER_FINGERPRINT = hashlib.sha256(b"corp index root key").hexdigest()


def entry(name: str, version: str, *, kind: str = "expert", base: str = "tiny-qwen3", base_range: str = "^1",
          weights: str = WEIGHTS_V1, requires: dict | None = None, incompatible_with: dict | None = None,
          yanked: bool = False) -> dict:
    """A signed index entry; for `kind="base"`, `weights` is the base's own weights digest."""
    doc = {
        "name": name, "version": version, "kind": kind,
        "sha256": hashlib.sha256(f"{name}@{version} archive".encode()).hexdigest(),
        "size": 1000 + len(name) + len(version),
        "manifest_sha256": hashlib.sha256(f"{name}@{version} manifest".encode()).hexdigest(),
        "description": f"{name} for tests", "license": "Apache-2.0",
        "requires": dict(requires or {}), "incompatible_with": dict(incompatible_with or {}),
        "routing": {"keywords": [name], "exclude_keywords": [], "examples": []},
        "published": "2025-01-01T00:00:00Z", "publisher": PUBLISHER.key_id,
    }
    if kind == "base":
        doc["model"] = {"architecture": "qwen3", "weights_sha256": weights, "tokenizer_sha256": TOKENIZER,
                        "vocab_size": 512, "context_length": 256}
    else:
        doc["base"] = {"name": base, "version": base_range, "weights_sha256": weights,
                       "tokenizer_sha256": TOKENIZER, "vocab_size": 512}
    doc["signature"] = PUBLISHER.sign(canonical_json(doc)).signature
    if yanked:
        doc["yanked"] = True
    return doc


def base_entries(name: str = "tiny-qwen3") -> list[dict]:
    """tiny-qwen3 1.0.0 and 1.1.0 (same weights, digest WEIGHTS_V1) and 2.0.0 (WEIGHTS_V2)."""
    return [entry(name, "1.0.0", kind="base", weights=WEIGHTS_V1), entry(name, "1.1.0", kind="base", weights=WEIGHTS_V1),
            entry(name, "2.0.0", kind="base", weights=WEIGHTS_V2)]


def memory_index(entries: list[dict], *, name: str = "default", fingerprint: str = FINGERPRINT,
                 snapshot_version: int = 7) -> MemorySource:
    return MemorySource(name, fingerprint, tuple(entries), snapshot_version)


class LockWorld:
    """A real signed index with base `tiny-qwen3` 1.0.0 and experts bound to it, a client home
    following it as `default`, and an empty project directory. `publish(name, version, ...)` adds
    experts (`requires=`, `incompatible_with=`); `follow()` refreshes the client's view."""

    def __init__(self, tmp: Path) -> None:
        from expertpm._home import Home
        from expertpm._index import delegate, publisher_key_from
        from expertpm._scaffold import scaffold

        from .index import make_index_world

        self.tmp = tmp
        self.index = make_index_world(tmp / "world", threshold=1)
        delegate(self.index.dir, publisher_key_from(self.index.maintainer, "publisher"), ["*"], self.index.root_keys[:1])
        self.base_src = scaffold("tiny-qwen3", tmp / "base-src", kind="base")
        self.home = Home(tmp / "client")
        self.project = tmp / "project"
        self.project.mkdir()
        self._publish_path(self._pack(self.base_src, "base"))
        self.followed = False

    def _pack(self, src: Path, label: str, **kw) -> Path:
        from expertpm._pack import pack

        out = self.tmp / "dist" / label
        out.mkdir(parents=True, exist_ok=True)
        return pack(src, out, self.index.publisher, **kw)

    def _publish_path(self, package: Path):
        from expertpm._index import publish

        return publish(self.index.dir, package, self.index.publisher)

    def publish(self, name: str, version: str = "1.0.0", *, seed: int = 0, **manifest):
        from .packages import make_expert_source

        src = make_expert_source(self.tmp / "src" / f"{name}-{version}", seed=seed, name=name, version=version,
                                 base={"name": "tiny-qwen3", "version": "^0.1"}, **manifest)
        published = self._publish_path(self._pack(src, f"{name}-{version}", base_dir=self.base_src))
        if self.followed:
            self.follow()
        return published

    def follow(self) -> None:
        from expertpm._index import add_index, update_index

        if self.followed:
            update_index(self.home, "default")
        else:
            add_index(self.home, "default", str(self.index.dir), fingerprint=self.index.fingerprint)
            self.followed = True


@pytest.fixture
def lock_world(tmp_path: Path) -> LockWorld:
    return LockWorld(tmp_path)


def write_project(directory: Path, text: str) -> Path:
    path = Path(directory) / "experts.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An empty directory to hold one project's experts.toml and experts.lock."""
    directory = tmp_path / "project"
    directory.mkdir()
    return directory


class DictProvider(BaseProvider):
    """The generic core's view of a plain table: {package: {version: {dependency: range}}}."""

    def __init__(self, data: dict, *, prefer: dict | None = None) -> None:
        self.data = data
        self.prefer = prefer or {}
        self.dependency_calls = 0

    def versions(self, package):
        return sorted(Version.parse(v) for v in self.data.get(package, {}))

    def matches(self, package, constraint, version):
        return VersionRange.parse(constraint).contains(version)

    def choose_version(self, package, allowed):
        wanted = self.prefer.get(package)
        return next((v for v in allowed if str(v) == wanted), allowed[-1])

    def dependencies(self, package, version):
        self.dependency_calls += 1
        return [requirement(name, rng) for name, rng in self.data[package][str(version)].items()]


def requirement(name: str, rng: str) -> Requirement:
    return Requirement(name, rng, name if rng == "*" else (f"{name}{rng}" if rng[0] in "<>=" else f"{name} {rng}"))


def solve(data: dict, *requirements: str, **kw) -> dict[str, str]:
    """Resolve "name range" requirements against a DictProvider; returns {name: version}."""
    reqs = [requirement(*r.split(" ", 1)) if " " in r else requirement(r, "*") for r in requirements]
    result = resolve(DictProvider(data, **kw), reqs)
    return {name: str(version) for name, version in result.versions.items()}


__all__ = [
    "DictProvider",
    "LockWorld",
    "lock_world",
    "requirement",
    "solve",
    "FINGERPRINT",
    "OTHER_FINGERPRINT",
    "PUBLISHER",
    "WEIGHTS_V1",
    "WEIGHTS_V2",
    "base_entries",
    "entry",
    "memory_index",
    "project_dir",
    "write_project",
]

"""Fixtures for the content-addressed store: crafted safetensors files, packages that bypass
`pack`'s checks, big packages for the crash tests, and a store in the test's home."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from expertpm._canonical import canonical_json, sha256_bytes
from expertpm._home import Home
from expertpm._keys import SigningKey


def write_raw_safetensors(path: Path, header: object, buffer: bytes) -> Path:
    """Write a safetensors file with exactly this header (a JSON-able object, or raw bytes) and buffer."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + buffer)
    return path


def raw_safetensors(header: object, buffer: bytes) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + buffer


def sign_and_archive(out: Path, files: dict[str, bytes], key: SigningKey, **manifest_overrides) -> Path:
    """A correctly signed package holding exactly `files`, built without `pack`'s content checks
    (so it may carry, say, a malformed safetensors file that only the store refuses)."""
    from expertpm._archive import write_archive
    from expertpm._manifest import MANIFEST_FILE, SIGNATURE_FILE

    from .packages import EXPERT_MANIFEST

    doc = dict(EXPERT_MANIFEST, **manifest_overrides)
    doc["files"] = {name: {"sha256": sha256_bytes(data), "size": len(data)} for name, data in sorted(files.items())}
    manifest_bytes = canonical_json(doc)
    members = [(MANIFEST_FILE, manifest_bytes), (SIGNATURE_FILE, canonical_json(key.sign(manifest_bytes).to_dict()))]
    write_archive(out, members + sorted(files.items()))
    return out


def make_big_expert(out_dir: Path, key: SigningKey, *, megabytes: int, version: str = "1.0.0",
                    name: str = "big", seed: int = 0) -> Path:
    """Pack a real expert whose adapter holds `megabytes` MB of incompressible float32 weights."""
    from safetensors.numpy import save_file

    from expertpm._package import pack

    from .packages import make_expert_source

    src = make_expert_source(out_dir / f"src-{name}-{version}", seed=seed, name=name, version=version)
    rng = np.random.default_rng(seed)
    rows = max(1, megabytes * (1 << 20) // (4 * 4096))
    tensors = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight":
               rng.standard_normal((rows, 4096), dtype=np.float32)}
    save_file(tensors, str(src / "adapter_model.safetensors"))
    dist = out_dir / "dist"
    dist.mkdir(exist_ok=True)
    return pack(src, dist, key)


@pytest.fixture(scope="session")
def big_expert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed ~32 MB expert package (`big@1.0.0`), built once per test session."""
    return make_big_expert(tmp_path_factory.mktemp("big"), SigningKey.generate("big"), megabytes=32)


@pytest.fixture
def store(home: Path):
    """The `Store` of the test's home."""
    from expertpm._store import Store

    return Store(Home(home))


def store_entries(home: Path) -> dict[str, list[str]]:
    """What the store holds on disk: the entries of packages/, refs/ (as name/version) and tmp/."""
    root = Home(home).store_dir
    refs = sorted(f"{n}/{v}" for n in _ls(root / "refs") for v in _ls(root / "refs" / n))
    return {"packages": _ls(root / "packages"), "refs": refs, "tmp": _ls(root / "tmp")}


def _ls(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.is_dir() else []


__all__ = ["write_raw_safetensors", "raw_safetensors", "sign_and_archive", "make_big_expert", "big_expert",
           "store", "store_entries"]

"""Shared by the index benchmarks: build a big signed index quickly, and tiny real packages.

`build_index(dir, packages, versions)` creates a real index (root key, timestamp key, one
publisher delegated `*`) and writes `packages` package files of `versions` signed lines each in
one commit through the index's own commit path (bins and snapshot included). Lines are signed
with the publisher's real key; only the per-line schema check of `publish` is skipped.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from expertpm._canonical import canonical_json  # noqa: E402
from expertpm._home import Home  # noqa: E402
from expertpm._index import IndexHost, PublisherKey, delegate, init_index  # noqa: E402
from expertpm._index._layout import package_path  # noqa: E402
from expertpm._keys import Keyring, SigningKey  # noqa: E402


@dataclass
class BigIndex:
    dir: Path
    fingerprint: str
    home: Home
    publisher: SigningKey
    lines: int
    bytes: int


def _line(key: SigningKey, name: str, version: str) -> bytes:
    digest = hashlib.sha256(f"{name}@{version}".encode()).hexdigest()
    doc = {"name": name, "version": version, "kind": "expert", "sha256": digest, "size": 123456,
           "manifest_sha256": hashlib.sha256(digest.encode()).hexdigest(),
           "description": f"{name}: an expert for benchmarks", "license": "Apache-2.0",
           "base": {"name": "tiny", "version": "^1.0", "weights_sha256": "b" * 64, "tokenizer_sha256": "c" * 64,
                    "vocab_size": 256},
           "requires": {}, "incompatible_with": {},
           "routing": {"keywords": [name, "bench"], "exclude_keywords": [], "examples": [f"ask {name}"]},
           "published": "2026-01-01T00:00:00Z", "publisher": key.key_id}
    doc["signature"] = key.sign(canonical_json(doc)).signature
    return canonical_json(doc)


def package_name(i: int) -> str:
    return f"pkg-{i:06d}"


def build_index(directory: Path, packages: int, versions: int, *, expires_days: float = 30) -> BigIndex:
    home = Home(directory.parent / (directory.name + "-maintainer"))
    ring = Keyring(home)
    ring.generate("root")
    ring.generate("publisher")
    root, publisher = ring.load("root"), ring.load("publisher")
    fingerprint = init_index(directory, [root], name="bench", expires_days=expires_days)
    delegate(directory, PublisherKey(publisher.key_id, publisher.public_key, "publisher"), ["*"], [root])
    changes, total = {}, 0
    for i in range(packages):
        name = package_name(i)
        data = b"".join(_line(publisher, name, f"1.0.{v}") + b"\n" for v in range(versions))
        changes[package_path(name)] = data
        total += len(data)
    host = IndexHost(directory)
    with host.lock():
        host.commit_changes(changes, f"{packages} packages x {versions} versions")
    return BigIndex(directory, fingerprint, home, publisher, packages * versions, total)


def append_version(big: BigIndex, i: int, version: str) -> None:
    """Publish one more version line of package i (the index's own commit path)."""
    path = package_path(package_name(i))
    host = IndexHost(big.dir)
    with host.lock():
        old = host.read(path)
        host.commit_changes({path: old + _line(big.publisher, package_name(i), version) + b"\n"},
                            f"Publish {package_name(i)}@{version}")


def make_source(directory: Path, name: str, version: str, seed: int) -> Path:
    """A minimal real expert source (manifest + a small LoRA safetensors + PEFT config)."""
    import numpy as np
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    manifest = {"format_version": 1, "name": name, "version": version, "kind": "expert",
                "description": "bench expert", "license": "Apache-2.0", "authors": ["bench"],
                "base": {"name": "tiny", "version": "^1.0", "weights_sha256": "b" * 64,
                         "tokenizer_sha256": "c" * 64, "vocab_size": 256},
                "adapter": {"type": "lora", "rank": 2, "alpha": 4, "target_modules": ["q_proj"], "dtype": "float32"},
                "routing": {"keywords": [name]}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    rng = np.random.default_rng(seed)
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{prefix}.lora_A.weight": rng.standard_normal((2, 16), dtype=np.float32),
               f"{prefix}.lora_B.weight": rng.standard_normal((16, 2), dtype=np.float32)},
              str(directory / "adapter_model.safetensors"))
    (directory / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}))
    return directory

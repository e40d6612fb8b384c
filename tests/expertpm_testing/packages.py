"""Fixtures that build real packages: keys, small safetensors adapters, source dirs, `.expert` files,
and hand-crafted tar.zst archives for the bad-input tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import zstandard
from safetensors.numpy import save_file

from expertpm._home import Home
from expertpm._keys import Keyring, SigningKey

EXPERT_MANIFEST = {
    "format_version": 1, "name": "sql", "version": "1.0.0", "kind": "expert",
    "description": "text to SQL", "license": "Apache-2.0", "authors": ["tests"],
    "base": {"name": "tiny", "version": "^1.0", "weights_sha256": "b" * 64, "tokenizer_sha256": "c" * 64,
             "vocab_size": 256},
    "adapter": {"type": "lora", "rank": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"], "dtype": "float32"},
    "routing": {"keywords": ["sql", "select"], "priority": 0.5},
}


def lora_tensors(rank: int = 4, hidden: int = 64, layers: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    """Tensors named as PEFT's save_pretrained names a LoRA on q_proj/v_proj of a Qwen3 model."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for i in range(layers):
        for module, out in (("q_proj", hidden), ("v_proj", hidden // 2)):
            prefix = f"base_model.model.model.layers.{i}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = rng.standard_normal((rank, hidden), dtype=np.float32)
            tensors[f"{prefix}.lora_B.weight"] = rng.standard_normal((out, rank), dtype=np.float32)
    return tensors


def make_expert_source(directory: Path, *, seed: int = 0, **manifest_overrides) -> Path:
    """A source directory of a small LoRA expert: manifest (without files), adapter, PEFT config, README."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = dict(EXPERT_MANIFEST, **manifest_overrides)
    (directory / "manifest.json").write_text(json.dumps(doc, indent=2))
    save_file(lora_tensors(seed=seed), str(directory / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8,
              "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "tiny"}
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2))
    (directory / "README.md").write_text("# sql\n\nA test expert.\n")
    return directory


@pytest.fixture
def signing_key(home: Path) -> SigningKey:
    """The `default` key of the test home's keyring, unlocked."""
    ring = Keyring(Home(home))
    ring.generate("default")
    return ring.load("default")


@pytest.fixture
def other_key(home: Path) -> SigningKey:
    """A second key (`other`) in the same keyring."""
    ring = Keyring(Home(home))
    ring.generate("other")
    return ring.load("other")


@pytest.fixture
def expert_source(tmp_path: Path) -> Path:
    return make_expert_source(tmp_path / "src")


@pytest.fixture
def packed_expert(tmp_path: Path, expert_source: Path, signing_key: SigningKey) -> Path:
    """A real, signed `sql-1.0.0.expert` built from `expert_source` with the `default` key."""
    from expertpm._package import pack

    out = tmp_path / "dist"
    out.mkdir()
    return pack(expert_source, out, signing_key)


def tar_member(name: str, data: bytes = b"", *, type: bytes = tarfile.REGTYPE, linkname: str = "") -> tuple:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = type, linkname, len(data) if type == tarfile.REGTYPE else 0
    return info, data


def write_tar_zst(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], *, level: int = 3,
                  fmt: int = tarfile.PAX_FORMAT, zstd_params: zstandard.ZstdCompressionParameters | None = None) -> Path:
    """Write a tar.zst with exactly these members, through the standard `tarfile` and `zstandard`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    if zstd_params is None:
        path.write_bytes(zstandard.ZstdCompressor(level=level, write_checksum=True).compress(buf.getvalue()))
        return path
    with open(path, "wb") as f, zstandard.ZstdCompressor(compression_params=zstd_params).stream_writer(f) as z:
        z.write(buf.getvalue())  # streamed without a content size, so the frame keeps its full window
    return path


def package_members(package: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """The members of a real package, to rebuild it with changes."""
    raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(package.read_bytes())).read()
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]


__all__ = ["EXPERT_MANIFEST", "lora_tensors", "make_expert_source", "signing_key", "other_key", "expert_source",
           "packed_expert", "tar_member", "write_tar_zst", "package_members"]

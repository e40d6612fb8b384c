"""Fixtures for the content-addressed store: crafted safetensors files."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def write_raw_safetensors(path: Path, header: object, buffer: bytes) -> Path:
    """Write a safetensors file with exactly this header (a JSON-able object, or raw bytes) and buffer."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + buffer)
    return path


__all__ = ["write_raw_safetensors"]

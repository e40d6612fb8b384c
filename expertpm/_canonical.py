"""Canonical JSON and digests: the exact bytes that are hashed and signed.

Canonical JSON = sorted keys, no insignificant whitespace, UTF-8, no NaN/Infinity. We sign and
verify *bytes*; a parsed document is accepted as canonical only if re-encoding it yields the
same bytes (so two encodings of one document can never carry one signature).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, BinaryIO

from ._errors import FormatError

CHUNK = 1 << 20


def canonical_json(obj: Any) -> bytes:
    try:
        return json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FormatError(f"value cannot be written as canonical JSON: {exc}") from exc


def parse_json(data: bytes | str, *, where: str | None = None) -> Any:
    """Parse JSON, mapping decode errors to FormatError with line/column."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise FormatError("not UTF-8 text", where=where, hint="re-save the file as UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", where=where
        ) from exc


def parse_canonical(data: bytes, *, where: str | None = None) -> Any:
    """Parse bytes that must already be canonical JSON."""
    obj = parse_json(data, where=where)
    if canonical_json(obj) != data:
        raise FormatError("JSON is not in canonical form (sorted keys, no whitespace)", where=where)
    return obj


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_stream(stream: BinaryIO) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return h.hexdigest(), size


def sha256_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as f:
        return sha256_stream(f)

"""Strict validation of safetensors files (header only; the bytes are checked by their digest).

Layout of a safetensors file: 8 bytes little-endian header length N, N bytes of UTF-8 JSON (an
object, starting with ``{``, possibly padded with spaces), then the data buffer. Each header entry
names a tensor ``{"dtype", "shape", "data_offsets": [begin, end]}`` with offsets relative to the
buffer; the optional ``__metadata__`` entry maps strings to strings.

We refuse anything a loader could read ambiguously or out of bounds: a header over the size cap,
non-JSON or duplicate names, unknown dtypes, dtype × shape ≠ byte length, offsets that leave gaps,
overlap or run past the end, and trailing bytes after the buffer.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ._errors import PackageError

__all__ = ["MAX_HEADER_BYTES", "DTYPE_BITS", "TensorInfo", "SafetensorsInfo", "validate_file", "validate_header"]

MAX_HEADER_BYTES = 100_000_000
METADATA_KEY = "__metadata__"
DTYPE_BITS: Mapping[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64,
}
_FIX = "the file is not a valid safetensors file; re-export it with safetensors.save_file"


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int


@dataclass(frozen=True, slots=True)
class SafetensorsInfo:
    """What a valid header declares. `data_start` is the file offset of the data buffer."""

    tensors: tuple[TensorInfo, ...]
    metadata: Mapping[str, str]
    data_start: int
    data_size: int


class _Invalid(Exception):
    pass


def validate_file(path: Path | str, *, max_header_bytes: int = MAX_HEADER_BYTES) -> SafetensorsInfo:
    """Validate the header of the safetensors file at `path` against its size; raise PackageError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            prefix = f.read(8)
            if len(prefix) < 8:
                raise PackageError(f"safetensors file is {size} bytes, too short for a header",
                                   where=str(path), hint=_FIX)
            (n,) = struct.unpack("<Q", prefix)
            _check_header_length(n, size, max_header_bytes, where=str(path))
            header = f.read(n)
    except OSError as exc:
        raise PackageError(f"cannot read safetensors file: {exc.strerror}", where=str(path)) from exc
    return validate_header(header, size, where=str(path))


def _check_header_length(n: int, file_size: int, cap: int, *, where: str) -> None:
    if n > cap:
        raise PackageError(f"safetensors header length {n} exceeds the {cap}-byte cap", where=where, hint=_FIX)
    if n > file_size - 8:
        raise PackageError(f"safetensors header length {n} runs past the end of the {file_size}-byte file",
                           where=where, hint=_FIX)


def validate_header(header: bytes, file_size: int, *, where: str | None = None) -> SafetensorsInfo:
    """Validate header bytes (without the 8-byte length prefix) of a file of `file_size` bytes."""
    try:
        return _validate(header, file_size)
    except _Invalid as exc:
        raise PackageError(f"invalid safetensors header: {exc}", where=where, hint=_FIX) from None


def _validate(header: bytes, file_size: int) -> SafetensorsInfo:
    if not header.startswith(b"{"):
        raise _Invalid("it must be a JSON object starting with '{'")
    try:
        doc = json.loads(header.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise _Invalid("it is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise _Invalid(f"not JSON ({exc.msg} at byte {exc.pos})") from None
    except RecursionError:
        raise _Invalid("it is nested too deeply") from None
    if not isinstance(doc, dict):
        raise _Invalid("it must be a JSON object")
    metadata = doc.pop(METADATA_KEY, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _Invalid(f"{METADATA_KEY!r} must map strings to strings")
    tensors = sorted((_tensor(name, entry) for name, entry in doc.items()), key=lambda t: (t.begin, t.end))
    expected = 0
    for t in tensors:
        if t.begin != expected:
            kind = "overlaps the previous tensor" if t.begin < expected else f"leaves a gap of {t.begin - expected} bytes"
            raise _Invalid(f"tensor {t.name!r} at offset {t.begin} {kind} (expected offset {expected})")
        expected = t.end
    data_start = 8 + len(header)
    if data_start + expected != file_size:
        raise _Invalid(f"tensors cover {expected} bytes of data but the file holds {file_size - data_start} "
                       f"after the header (offsets past the end, or trailing bytes)")
    return SafetensorsInfo(tuple(tensors), metadata, data_start, expected)


def _tensor(name: str, entry: object) -> TensorInfo:
    if not name:
        raise _Invalid("a tensor has an empty name")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise _Invalid(f"tensor {name!r} must have exactly the fields dtype, shape and data_offsets")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in DTYPE_BITS:
        raise _Invalid(f"tensor {name!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise _Invalid(f"tensor {name!r} shape must be a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise _Invalid(f"tensor {name!r} data_offsets must be two non-negative integers")
    begin, end = offsets
    if end < begin:
        raise _Invalid(f"tensor {name!r} data_offsets end {end} is before begin {begin}")
    elements = 1
    for d in shape:
        elements *= d
    bits = elements * DTYPE_BITS[dtype]
    if bits % 8 or bits // 8 != end - begin:
        raise _Invalid(f"tensor {name!r} is {dtype} × {shape} = {bits / 8:g} bytes "
                       f"but its data_offsets span {end - begin} bytes")
    return TensorInfo(name, dtype, tuple(shape), begin, end)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"duplicate name {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> None:
    raise _Invalid(f"non-standard JSON constant {name}")

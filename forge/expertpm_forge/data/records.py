"""JSONL records on disk (one JSON object per line) and the data engine's error type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from expertpm._errors import UserError

__all__ = ["DataError", "read_jsonl", "write_jsonl", "iter_jsonl"]


class DataError(UserError):
    """The documents or generated data cannot be used: empty, all duplicates, unreadable, overlapping."""


def iter_jsonl(path: Path, *, where: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for every non-blank line; a bad line is a DataError."""
    label = where or path.as_posix()
    try:
        handle = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror}", where=label) from exc
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"line {number}: invalid JSON: {exc.msg} (column {exc.colno})",
                                    where=label, hint="each line must be one JSON object") from exc
                if not isinstance(obj, dict):
                    raise DataError(f"line {number}: expected a JSON object, got {type(obj).__name__}",
                                    where=label)
                yield number, obj
        except UnicodeDecodeError as exc:
            raise DataError("not UTF-8 text", where=label, hint="re-save the file as UTF-8") from exc


def read_jsonl(path: Path, *, where: str | None = None) -> list[dict[str, Any]]:
    return [obj for _, obj in iter_jsonl(path, where=where)]


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records deterministically (sorted keys, UTF-8, `\\n` endings); returns the count."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count

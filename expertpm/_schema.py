"""Validate documents against the JSON Schemas in `schemas/`, reporting exact field paths."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ._errors import FormatError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@lru_cache(maxsize=None)
def _validator(name: str):
    import jsonschema  # ~150 ms: only commands that validate a document pay for it

    path = SCHEMA_DIR / f"{name}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def field_path(parts) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + (str(part) if str(part).replace("_", "").isalnum() else json.dumps(part))
    return text or "(document)"


def schema_problems(doc: object, schema: str) -> list[tuple[str, str]]:
    problems = []
    for error in sorted(_validator(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = list(error.absolute_path)
        message = error.message
        if error.validator == "additionalProperties" and "unexpected" in message:
            message = "unknown field(s): " + message.split("(")[-1].split(" were")[0].split(" was")[0]
        elif error.validator == "required":
            missing = message.split("'")[1] if "'" in message else message
            path, message = path + [missing], "is required"
        elif error.validator == "pattern":
            message = f"{error.instance!r} has an invalid format"
        problems.append((field_path(path), message))
    return problems


def validate(doc: object, schema: str, *, where: str) -> None:
    """Raise FormatError listing every problem (`field.path: message`) in one line."""
    problems = schema_problems(doc, schema)
    if problems:
        detail = "; ".join(f"{p}: {m}" for p, m in problems[:8])
        more = f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""
        raise FormatError(f"{detail}{more}", where=where, problems=problems)

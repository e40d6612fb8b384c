"""A fast structural check of index lines, equivalent to (never looser than) the schema.

`schemas/index-entry.schema.json` is the definition; jsonschema needs about a millisecond per
line, which dominates reading a package with many versions. `line_ok` answers yes/no in a few
microseconds; only when it says no does the caller run the schema to name the exact problem.
tests/index/test_index_shape.py checks that this never accepts what the schema refuses.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,63}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX128 = re.compile(r"^[0-9a-f]{128}$")
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")

_ENTRY_REQUIRED = frozenset({"name", "version", "kind", "sha256", "size", "manifest_sha256", "description", "license",
                             "requires", "incompatible_with", "routing", "published", "publisher", "signature"})
_ENTRY_ALLOWED = _ENTRY_REQUIRED | {"base", "model", "eval", "embedding"}
_YANK_FIELDS = frozenset({"yank", "name", "version", "publisher", "after", "published", "signature"})
_BASE_FIELDS = frozenset({"name", "version", "weights_sha256", "tokenizer_sha256", "vocab_size"})
_MODEL_FIELDS = frozenset({"architecture", "weights_sha256", "tokenizer_sha256", "vocab_size", "context_length"})
_ROUTING_FIELDS = frozenset({"keywords", "exclude_keywords", "examples"})
_EVAL_FIELDS = frozenset({"metric", "expert_score", "base_score", "n"})


def _str(value, low: int, high: int) -> bool:
    return type(value) is str and low <= len(value) <= high


def _match(pattern: re.Pattern, value) -> bool:
    return type(value) is str and pattern.match(value) is not None


def _int(value, low: int) -> bool:
    return type(value) is int and value >= low


def _number(value) -> bool:
    return type(value) in (int, float)


def _deps(value) -> bool:
    return type(value) is dict and all(_match(_NAME, k) and _str(v, 1, 256) for k, v in value.items())


def _strings(value) -> bool:
    return type(value) is list and all(_str(s, 1, 512) for s in value)


def _common(doc: dict) -> bool:
    return (_match(_NAME, doc["name"]) and _str(doc["version"], 5, 128) and _match(_HEX64, doc["publisher"])
            and _match(_TIME, doc["published"]) and _match(_HEX128, doc["signature"]))


def line_ok(doc: object) -> bool:
    """True only if `doc` is a valid entry or yank record under index-entry.schema.json."""
    if type(doc) is not dict:
        return False
    keys = doc.keys()
    if "yank" in doc:
        return keys == _YANK_FIELDS and type(doc["yank"]) is bool and _common(doc) and _match(_HEX64, doc["after"])
    if not (_ENTRY_REQUIRED <= keys <= _ENTRY_ALLOWED) or not _common(doc):
        return False
    if not (_match(_HEX64, doc["sha256"]) and _match(_HEX64, doc["manifest_sha256"]) and _int(doc["size"], 1)
            and _str(doc["description"], 0, 2000) and _str(doc["license"], 1, 128)
            and _deps(doc["requires"]) and _deps(doc["incompatible_with"])):
        return False
    routing = doc["routing"]
    if type(routing) is not dict or routing.keys() != _ROUTING_FIELDS or not all(map(_strings, routing.values())):
        return False
    if doc["kind"] == "expert":
        base = doc.get("base")
        if "model" in doc or type(base) is not dict or base.keys() != _BASE_FIELDS:
            return False
        if not (_match(_NAME, base["name"]) and _str(base["version"], 1, 256) and _match(_HEX64, base["weights_sha256"])
                and _match(_HEX64, base["tokenizer_sha256"]) and _int(base["vocab_size"], 1)):
            return False
    elif doc["kind"] == "base":
        model = doc.get("model")
        if "base" in doc or type(model) is not dict or model.keys() != _MODEL_FIELDS:
            return False
        if not (model["architecture"] in ("qwen3", "llama") and _match(_HEX64, model["weights_sha256"])
                and _match(_HEX64, model["tokenizer_sha256"]) and _int(model["vocab_size"], 1)
                and _int(model["context_length"], 1)):
            return False
    else:
        return False
    if "eval" in doc:
        ev = doc["eval"]
        if (type(ev) is not dict or ev.keys() != _EVAL_FIELDS or not _str(ev["metric"], 1, 1 << 30)
                or not _number(ev["expert_score"]) or not _number(ev["base_score"]) or not _int(ev["n"], 0)):
            return False
    if "embedding" in doc:
        emb = doc["embedding"]
        if type(emb) is not list or not 1 <= len(emb) <= 4096 or not all(map(_number, emb)):
            return False
    return True


def check_line(doc: object, *, where: str) -> None:
    """Raise FormatError naming the problem if `doc` is not a valid index line."""
    if line_ok(doc):
        return
    from .._errors import FormatError
    from .._schema import validate

    validate(doc, "index-entry", where=where)
    raise FormatError("malformed index line (integers must be written without a fraction)", where=where)

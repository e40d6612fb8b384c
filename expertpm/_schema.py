"""Validate documents against the JSON Schemas in `schemas/`, reporting exact field paths.

jsonschema is the judge, but importing it and building a validator costs ~80 ms, which every
command reading experts.toml, experts.lock or a manifest would pay. So a document is first put
through `quick_check`, a small evaluator of the keywords our schemas use with jsonschema's
Draft 2020-12 semantics. It answers True (valid), False (invalid) or None (not sure: a keyword
or a value it does not handle); only True skips jsonschema. Anything else goes to jsonschema,
which names the problems (so messages never depend on the quick check) or finds none.
tests/core/test_cli_startup.py checks that the quick check never answers True or False where
jsonschema disagrees.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from ._errors import FormatError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@lru_cache(maxsize=None)
def _schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _validator(name: str):
    import jsonschema  # ~50 ms to import: paid only when a document fails the quick check

    return jsonschema.Draft202012Validator(_schema(name))


def field_path(parts) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + (str(part) if str(part).replace("_", "").isalnum() else json.dumps(part))
    return text or "(document)"


def schema_problems(doc: object, schema: str) -> list[tuple[str, str]]:
    if quick_check(doc, schema) is True:
        return []
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


# --- the quick check ------------------------------------------------------------------------
# Each keyword function answers for one keyword: True, False, or None (not sure). A schema is
# the conjunction of its keywords: any False is False, else any None is None, else True.

def quick_check(doc: object, schema: str) -> bool | None:
    """True/False when sure that `doc` is valid/invalid under `schemas/<schema>.schema.json`
    as jsonschema's Draft202012Validator judges it; None when not sure."""
    root = _schema(schema)
    return _check(root, doc, root)


_ANNOTATIONS = frozenset({"$schema", "$comment", "$defs", "title", "description", "default", "examples",
                          "then", "else"})  # then/else are read by `if`


def _check(schema, value, root) -> bool | None:
    if schema is True or schema is False:
        return schema
    if type(schema) is not dict:
        return None
    result: bool | None = True
    for key, arg in schema.items():
        keyword = _KEYWORDS.get(key)
        if keyword is None:
            if key in _ANNOTATIONS or (key == "$id" and schema is root):
                continue
            result = None  # a keyword we do not evaluate
            continue
        answer = keyword(arg, value, schema, root)
        if answer is False:
            return False
        if answer is None:
            result = None
    return result


def _all(answers) -> bool | None:
    result: bool | None = True
    for answer in answers:
        if answer is False:
            return False
        if answer is None:
            result = None
    return result


def _is_type(name: str, value) -> bool | None:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool):
        return False if name in ("integer", "number") else None
    if name == "integer":
        if isinstance(value, int):
            return True
        return value.is_integer() if isinstance(value, float) else _not_number(value)  # 1.0 is an integer
    if name == "number":
        return True if isinstance(value, (int, float)) else _not_number(value)
    return None


def _not_number(value) -> bool | None:
    """False for the JSON/TOML types that are not numbers; None for anything exotic."""
    return False if value is None or isinstance(value, (str, list, dict)) else None


def _number(value) -> bool | None:
    """Whether the numeric keywords apply to `value` (None: an exotic type)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    return _not_number(value)


def _type(arg, value, schema, root):
    names = [arg] if isinstance(arg, str) else arg
    answers = [_is_type(name, value) for name in names]
    if True in answers:
        return True
    return None if None in answers else False


@lru_cache(maxsize=None)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _pattern(arg, value, schema, root):
    return not isinstance(value, str) or _regex(arg).search(value) is not None


def _min_length(arg, value, schema, root):
    return not isinstance(value, str) or len(value) >= arg


def _max_length(arg, value, schema, root):
    return not isinstance(value, str) or len(value) <= arg


def _numeric(fails):
    """A bound keyword, failing exactly when jsonschema's does (so NaN passes every bound)."""
    def keyword(arg, value, schema, root):
        applies = _number(value)
        return applies if applies is None else (not applies or not fails(value, arg))
    return keyword


_JSON = (str, int, float, type(None), list, dict)


def _equal(a, b) -> bool | None:
    """jsonschema's `equal` for JSON values (True is not 1, 1 is 1.0); None for other types."""
    if a is b:
        return True
    if not isinstance(a, _JSON) or not isinstance(b, _JSON):
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and _all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and _all(_equal(v, b[k]) if k in b else False for k, v in a.items())
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return a == b


def _const(arg, value, schema, root):
    return _equal(value, arg)


def _enum(arg, value, schema, root):
    answers = [_equal(value, each) for each in arg]
    if True in answers:
        return True
    return None if None in answers else False


def _properties(arg, value, schema, root):
    if not isinstance(value, dict):
        return True
    return _all(_check(sub, value[key], root) for key, sub in arg.items() if key in value)


def _pattern_properties(arg, value, schema, root):
    if not isinstance(value, dict):
        return True
    return _all(_check(sub, item, root) for pattern, sub in arg.items()
                for key, item in value.items() if _regex(pattern).search(key))


def _additional_properties(arg, value, schema, root):
    if not isinstance(value, dict):
        return True
    known = schema.get("properties", {})
    patterns = [_regex(p) for p in schema.get("patternProperties", {})]
    extras = [item for key, item in value.items()
              if key not in known and not any(p.search(key) for p in patterns)]
    return _all(_check(arg, item, root) for item in extras)


def _property_names(arg, value, schema, root):
    return not isinstance(value, dict) or _all(_check(arg, key, root) for key in value)


def _required(arg, value, schema, root):
    return not isinstance(value, dict) or all(key in value for key in arg)


def _min_properties(arg, value, schema, root):
    return not isinstance(value, dict) or len(value) >= arg


def _max_properties(arg, value, schema, root):
    return not isinstance(value, dict) or len(value) <= arg


def _items(arg, value, schema, root):
    if not isinstance(value, list):
        return True
    if "prefixItems" in schema:
        return None
    return _all(_check(arg, item, root) for item in value)


def _min_items(arg, value, schema, root):
    return not isinstance(value, list) or len(value) >= arg


def _max_items(arg, value, schema, root):
    return not isinstance(value, list) or len(value) <= arg


def _unique_items(arg, value, schema, root):
    if not arg or not isinstance(value, list):
        return True
    if all(isinstance(item, str) for item in value):
        return len(set(value)) == len(value)
    return None


def _all_of(arg, value, schema, root):
    return _all(_check(sub, value, root) for sub in arg)


def _any_of(arg, value, schema, root):
    answers = [_check(sub, value, root) for sub in arg]
    if True in answers:
        return True
    return None if None in answers else False


def _one_of(arg, value, schema, root):
    answers = [_check(sub, value, root) for sub in arg]
    valid = answers.count(True)
    if valid > 1:
        return False
    return None if None in answers else valid == 1


def _not(arg, value, schema, root):
    answer = _check(arg, value, root)
    return None if answer is None else not answer


def _if(arg, value, schema, root):
    answer = _check(arg, value, root)
    if answer is None:
        return None
    branch = schema.get("then" if answer else "else", True)
    return _check(branch, value, root)


def _ref(arg, value, schema, root):
    if not isinstance(arg, str) or not arg.startswith("#/"):
        return None
    target = root
    for part in arg[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target or "%" in part:
            return None
        target = target[part]
    return _check(target, value, root)


_KEYWORDS = {
    "type": _type, "pattern": _pattern, "minLength": _min_length, "maxLength": _max_length,
    "minimum": _numeric(lambda v, a: v < a), "maximum": _numeric(lambda v, a: v > a),
    "exclusiveMinimum": _numeric(lambda v, a: v <= a), "exclusiveMaximum": _numeric(lambda v, a: v >= a),
    "const": _const, "enum": _enum, "properties": _properties, "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties, "propertyNames": _property_names, "required": _required,
    "minProperties": _min_properties, "maxProperties": _max_properties, "items": _items, "minItems": _min_items,
    "maxItems": _max_items, "uniqueItems": _unique_items, "allOf": _all_of, "anyOf": _any_of, "oneOf": _one_of,
    "not": _not, "if": _if, "$ref": _ref,
}

"""Text-level task metrics: label accuracy, exact match, entity-level F1, tool-call matching.

Each scorer takes the model's predictions and the gold completions (strings, as in the training
data) and returns a `Score`: the headline value in [0, 1], secondary rates in `parts`, and one
verdict per item (True/False, or an F1 for NER) for the report.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    parts: dict[str, float] = field(default_factory=dict)
    items: list[Any] = field(default_factory=list)


def _rate(flags: Sequence[bool]) -> float:
    return sum(map(bool, flags)) / len(flags) if flags else 0.0


def strip_fences(text: str) -> str:
    """The content of a ```lang ... ``` block if the text holds one, else the text itself."""
    match = re.search(r"```[a-zA-Z0-9_-]*\n?(.*?)```", text, re.S)
    return (match.group(1) if match else text).strip()


# ---- classification -------------------------------------------------------------------------

def normalize_label(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.strip().strip(string.punctuation + string.whitespace + "\"'`").lower()


def label_accuracy(predictions: Sequence[str], golds: Sequence[str], labels: Sequence[str] = ()) -> Score:
    known = {normalize_label(label) for label in labels}
    items = []
    for pred, gold in zip(predictions, golds):
        p = normalize_label(pred)
        items.append(p == normalize_label(gold) and (not known or p in known))
    valid = [normalize_label(p) in known for p in predictions] if known else []
    return Score(_rate(items), {"valid_label": _rate(valid)} if known else {}, items)


# ---- chat QA -----------------------------------------------------------------------------------

def normalize_answer(text: str) -> str:
    """SQuAD-style: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(predictions: Sequence[str], golds: Sequence[str]) -> Score:
    items = [normalize_answer(p) == normalize_answer(g) for p, g in zip(predictions, golds)]
    return Score(_rate(items), {}, items)


# ---- NER -----------------------------------------------------------------------------------

_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:(?P<t1>[A-Za-z_]+)\s*:\s*(?P<e1>.+?)|(?P<e2>.+?)\s*[(\[](?P<t2>[A-Za-z_]+)[)\]]"
                   r"|(?P<e3>.+?)\s*\|\s*(?P<t3>[A-Za-z_]+))\s*$")


def parse_entities(text: str) -> list[tuple[str, str]] | None:
    """(TYPE, normalised text) pairs from JSON (list of {text,type} / [text,type], {type: [texts]},
    {"entities": [...]}) or from lines like `PER: Anna`, `Anna (PER)`, `Anna | PER`.
    Returns None when nothing in the text can be read as entities."""
    raw = strip_fences(text)
    if raw.lower() in ("", "none", "[]", "{}", "no entities"):
        return []
    try:
        return _entities_from_json(json.loads(raw))
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    found = []
    for line in re.split(r"[\n;]", raw):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m:
            return None
        etype = m.group("t1") or m.group("t2") or m.group("t3")
        entity = m.group("e1") or m.group("e2") or m.group("e3")
        found.append(_entity(etype, entity))
    return found


def _entity(etype: str, entity: str) -> tuple[str, str]:
    return etype.strip().upper(), " ".join(str(entity).strip().strip("\"'").lower().split())


def _entities_from_json(doc: Any) -> list[tuple[str, str]]:
    if isinstance(doc, dict) and "entities" in doc:
        doc = doc["entities"]
    if isinstance(doc, dict):
        return [_entity(k, v) for k, values in doc.items() for v in ([values] if isinstance(values, str) else values)]
    out = []
    for item in doc:
        if isinstance(item, dict):
            entity = item.get("text", item.get("entity", item.get("span")))
            etype = item.get("type", item.get("label", item.get("entity_type")))
            if entity is None or etype is None:
                raise KeyError("entity needs text and type")
            out.append(_entity(etype, entity))
        else:
            entity, etype = item
            out.append(_entity(etype, entity))
    return out


def entity_f1(predictions: Sequence[str], golds: Sequence[str]) -> Score:
    """Micro-averaged entity-level F1: an entity counts when type and text both match."""
    tp = fp = fn = 0
    items, parsed = [], []
    for pred, gold in zip(predictions, golds):
        p_list = parse_entities(pred)
        parsed.append(p_list is not None)
        g, p = Counter(parse_entities(gold) or []), Counter(p_list or [])
        hit = sum((g & p).values())
        tp, fp, fn = tp + hit, fp + sum(p.values()) - hit, fn + sum(g.values()) - hit
        denom = sum(g.values()) + sum(p.values())
        items.append(round(2 * hit / denom, 4) if denom else 1.0)
    precision = tp / (tp + fp) if tp + fp else (1.0 if not fn else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(f1, {"precision": precision, "recall": recall, "parsable": _rate(parsed)}, items)


# ---- tool calling -------------------------------------------------------------------------

def tool_schemas(tools: Any) -> dict[str, dict]:
    """{tool name: JSON schema of its arguments} from OpenAI-style or plain tool lists/dicts."""
    if isinstance(tools, dict) and all(isinstance(v, dict) for v in tools.values()) and "name" not in tools:
        return {name: spec.get("parameters", spec) for name, spec in tools.items()}
    out = {}
    for tool in tools or []:
        spec = tool.get("function", tool)
        out[spec["name"]] = spec.get("parameters", {"type": "object"})
    return out


def parse_call(text: str) -> dict | None:
    try:
        doc = json.loads(strip_fences(text))
    except json.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    doc = doc.get("function", doc) if isinstance(doc.get("function"), dict) else doc
    args = doc.get("arguments", doc.get("parameters"))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return None
    return {"name": doc.get("name"), "arguments": args}


def tool_call(predictions: Sequence[str], golds: Sequence[str], tools: Any = None) -> Score:
    """Exact tool match (name and arguments equal as JSON values), plus JSON-validity and schema-
    compliance rates. Without tool schemas, compliance means a string name and object arguments."""
    import jsonschema

    schemas = tool_schemas(tools) if tools else {}
    valid, compliant, names, exact = [], [], [], []
    for pred, gold in zip(predictions, golds):
        call, want = parse_call(pred), parse_call(gold)
        valid.append(call is not None)
        ok = call is not None and isinstance(call["name"], str) and isinstance(call["arguments"], dict)
        if ok and schemas:
            schema = schemas.get(call["name"])
            ok = schema is not None and jsonschema.Draft202012Validator(schema).is_valid(call["arguments"])
        compliant.append(ok)
        names.append(call is not None and want is not None and call["name"] == want["name"])
        exact.append(call is not None and want is not None and call == want)
    return Score(_rate(exact), {"json_valid": _rate(valid), "schema_valid": _rate(compliant),
                                "tool_name": _rate(names)}, exact)

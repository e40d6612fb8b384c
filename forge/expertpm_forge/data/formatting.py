"""Task formatting: teacher examples → training records, one definition per task kind.

A teacher example is a JSON object whose fields depend on the kind (`EXAMPLE_FIELDS`), e.g.
``{"question": ..., "sql": ...}``; an optional ``"rejected"`` holds a worse output of the same
shape (for DPO). A training record is ``{"id", "prompt", "completion", "task", "source",
"input", "target"}`` plus ``"chosen"``/``"rejected"`` for DPO. `completion_text` and
`parse_completion` are the one place that says how each kind's output is written as text.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any, Callable

__all__ = ["EXAMPLE_FIELDS", "completion_text", "parse_completion", "load_tools", "SqlChecker",
           "ExampleChecker", "canonical_output"]

EXAMPLE_FIELDS = {  # kind -> (input field, output field)
    "chat": ("question", "answer"),
    "sql": ("question", "sql"),
    "cypher": ("question", "cypher"),
    "tool-call": ("request", "call"),
    "classification": ("text", "label"),
    "ner": ("text", "entities"),
}
_CYPHER_START = re.compile(r"^\s*(MATCH|OPTIONAL\s+MATCH|CREATE|MERGE|WITH|CALL|RETURN|UNWIND)\b", re.I)


def completion_text(kind: str, output: Any) -> str:
    """How the model writes `output` (already canonical, see `canonical_output`)."""
    if kind == "tool-call":
        return json.dumps(output, ensure_ascii=False)
    if kind == "ner":
        return json.dumps([list(pair) for pair in output], ensure_ascii=False)
    return str(output)


def parse_completion(kind: str, text: str) -> Any:
    """The inverse of `completion_text` for a model's answer; raises ValueError when malformed."""
    text = text.strip()
    if kind == "tool-call":
        call = json.loads(text)
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not isinstance(
                call.get("arguments", {}), dict):
            raise ValueError('a tool call is {"name": ..., "arguments": {...}}')
        return {"name": call["name"], "arguments": call.get("arguments", {})}
    if kind == "ner":
        items = json.loads(text)
        if not isinstance(items, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in items):
            raise ValueError('entities are [["text", "TYPE"], ...]')
        return [tuple(p) for p in items]
    return text


def load_tools(text: str) -> dict[str, dict]:
    """Tool definitions from JSON: a list (or {"tools": [...]}) of {"name", "description",
    "parameters"} objects, OpenAI's {"type": "function", "function": {...}} form included."""
    doc = json.loads(text)
    items = doc.get("tools", []) if isinstance(doc, dict) else doc
    tools = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("function"), dict):
            item = item["function"]
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            params = item.get("parameters") or {"type": "object", "properties": {}}
            tools[item["name"]] = {**item, "parameters": params}
    return tools


class SqlChecker:
    """Compiles queries (EXPLAIN, never executes) against a schema: a .sql DDL file or a SQLite db."""

    def __init__(self, schema: Path) -> None:
        if schema.suffix.lower() == ".sql":
            self.conn = sqlite3.connect(":memory:")
            self.conn.executescript(schema.read_text(encoding="utf-8"))
        else:
            self.conn = sqlite3.connect(f"file:{schema.absolute()}?mode=ro", uri=True)

    def problem(self, query: str) -> str | None:
        try:
            self.conn.execute("EXPLAIN " + query.strip().rstrip(";"))
        except (sqlite3.Error, sqlite3.Warning) as exc:
            return f"query does not compile against the schema: {exc}"
        return None


def canonical_output(kind: str, output: Any, labels: tuple[str, ...] = ()) -> Any:
    """The normalised output, or raise ValueError saying what is wrong with it."""
    if kind == "tool-call":
        if isinstance(output, str):
            output = json.loads(output)
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            raise ValueError("call must be an object with a string name")
        args = output.get("arguments", {})
        if isinstance(args, str):
            args = json.loads(args)
        if not isinstance(args, dict):
            raise ValueError("call.arguments must be an object")
        return {"name": output["name"], "arguments": dict(sorted(args.items()))}
    if kind == "ner":
        if not isinstance(output, list):
            raise ValueError("entities must be a list")
        pairs = []
        for item in output:
            if isinstance(item, dict):
                item = [item.get("text"), item.get("type")]
            if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) and x for x in item)):
                raise ValueError("each entity is {\"text\", \"type\"} or [text, type]")
            if item[1] not in labels:
                raise ValueError(f"unknown entity type {item[1]!r}")
            pairs.append([item[0], item[1]])
        return pairs
    if not isinstance(output, str) or not output.strip():
        raise ValueError("output must be a non-empty string")
    output = output.strip()
    if kind == "classification":
        by_fold = {label.casefold(): label for label in labels}
        if output.casefold() not in by_fold:
            raise ValueError(f"unknown label {output!r}")
        return by_fold[output.casefold()]
    return output


class ExampleChecker:
    """Validates teacher examples of one kind; `check` returns (input, output, rejected) or raises
    ValueError with the reason."""

    def __init__(self, kind: str, *, labels: tuple[str, ...] = (), schema: Path | None = None) -> None:
        self.kind, self.labels = kind, labels
        self.sql = SqlChecker(schema) if kind == "sql" and schema is not None else None
        self.tools = load_tools(schema.read_text(encoding="utf-8")) if kind == "tool-call" and schema else None
        self._validators: dict[str, Callable] = {}

    def _check_output(self, source: str, output: Any) -> Any:
        output = canonical_output(self.kind, output, self.labels)
        if self.kind == "sql" and self.sql is not None and (problem := self.sql.problem(output)):
            raise ValueError(problem)
        if self.kind == "cypher":
            if not _CYPHER_START.match(output) or not _balanced(output):
                raise ValueError("not a Cypher query (must start with MATCH/CREATE/... with balanced brackets)")
        if self.kind == "ner":
            missing = [text for text, _ in output if text not in source]
            if missing:
                raise ValueError(f"entity {missing[0]!r} does not occur in the text")
        if self.kind == "tool-call" and self.tools is not None:
            self._check_call(output)
        return output

    def _check_call(self, call: dict) -> None:
        tool = self.tools.get(call["name"])
        if tool is None:
            raise ValueError(f"unknown tool {call['name']!r}")
        if tool["name"] not in self._validators:
            from jsonschema import Draft202012Validator

            self._validators[tool["name"]] = Draft202012Validator(tool["parameters"])
        error = next(iter(self._validators[tool["name"]].iter_errors(call["arguments"])), None)
        if error is not None:
            raise ValueError(f"arguments do not match {tool['name']}'s parameters: {error.message}")

    def check(self, example: Any) -> tuple[str, Any, Any]:
        if not isinstance(example, dict):
            raise ValueError("an example must be a JSON object")
        in_field, out_field = EXAMPLE_FIELDS[self.kind]
        source = example.get(in_field)
        if not isinstance(source, str) or not source.strip():
            raise ValueError(f"missing {in_field!r}")
        if out_field not in example:
            raise ValueError(f"missing {out_field!r}")
        try:
            output = self._check_output(source, example[out_field])
            rejected = example.get("rejected")
            if rejected is not None:
                try:
                    rejected = canonical_output(self.kind, rejected, self.labels)
                except (ValueError, TypeError):
                    rejected = rejected if isinstance(rejected, str) else None  # bad on purpose is fine
                if rejected == output:
                    rejected = None
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid JSON in {out_field!r}: {exc.msg}") from exc
        return source.strip(), output, rejected


def _balanced(text: str) -> bool:
    stack, quote = [], None
    pairs = {")": "(", "]": "[", "}": "{"}
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack and quote is None

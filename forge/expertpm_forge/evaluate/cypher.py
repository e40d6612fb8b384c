"""Cypher match: exact match after normalising what does not change a query's meaning.

Normalised: keyword case, function-name case, quote style, whitespace, a trailing semicolon,
`ASC` (the default order), and variable names (renamed v0, v1, ... in order of first binding), so
`MATCH (p:Person) RETURN p.name` equals `match (x:Person) return x.name;`.
"""

from __future__ import annotations

import re
from typing import Sequence

from .metrics import Score, strip_fences

KEYWORDS = {
    "match", "optional", "where", "return", "with", "as", "and", "or", "not", "xor", "order", "by",
    "limit", "skip", "desc", "descending", "asc", "ascending", "distinct", "create", "merge", "set",
    "delete", "detach", "remove", "unwind", "in", "is", "null", "contains", "starts", "ends", "case",
    "when", "then", "else", "end", "true", "false", "on", "union", "all", "exists", "call", "yield",
}
_TOKEN = re.compile(r"""
    (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<name>`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|<=|>=|=~|->|<-|\.\.|[-+*/%=<>(){}\[\]:,.|$^])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.X)


def tokenize(query: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in _TOKEN.finditer(query) if m.lastgroup != "space"]


def normalize_cypher(query: str) -> str:
    tokens = tokenize(strip_fences(query).strip().rstrip(";"))
    variables: dict[str, str] = {}
    for i, (kind, text) in enumerate(tokens):
        if kind != "name" or text.lower() in KEYWORDS:
            continue
        prev = tokens[i - 1][1] if i else ""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        binds = (prev in ("(", "[") and nxt in (":", ")", "]", "{", "*")) or (prev.lower() == "as")
        if binds and text not in variables:
            variables[text] = f"v{len(variables)}"
    out = []
    for i, (kind, text) in enumerate(tokens):
        prev = tokens[i - 1][1] if i else ""
        nxt = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "string":
            body = text[1:-1].replace("\\'", "'").replace('\\"', '"')
            out.append("'" + body.replace("'", "\\'") + "'")
        elif kind == "name" and text.lower() in KEYWORDS and prev not in (".", ":"):
            word = {"descending": "desc", "ascending": "asc"}.get(text.lower(), text.lower())
            if word != "asc":
                out.append(word.upper())
        elif kind == "name" and nxt == "(" and prev not in (".", ":"):
            out.append(text.lower())  # function names are case-insensitive
        elif kind == "name" and text in variables and prev not in (".", ":"):
            out.append(variables[text])
        else:
            out.append(text)
    text = " ".join(out)
    return re.sub(r"\s*([(){}\[\]:,.\-<>=|])\s*", r"\1", text)


def cypher_match(predictions: Sequence[str], golds: Sequence[str]) -> Score:
    items = [normalize_cypher(p) == normalize_cypher(g) for p, g in zip(predictions, golds)]
    return Score(sum(items) / len(items) if items else 0.0, {}, items)

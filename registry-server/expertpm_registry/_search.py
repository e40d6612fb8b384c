"""Search over a catalog: words of the query against names, routing keywords and descriptions.

Deliberately lexical and dependency-free, so the server answers in microseconds without loading a
model. Every word of the query must match somewhere (a prefix of a word counts); hits are ranked
by where they matched (exact name, part of the name, routing keyword, description or example
utterance), then by name. An empty query lists every package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._catalog import Catalog, Package

MAX_QUERY_CHARS = 200
_WORD = re.compile(r"[a-z0-9]+")

NAME, NAME_PART, KEYWORD, TEXT = 8.0, 4.0, 3.0, 1.0


@dataclass(frozen=True, slots=True)
class Hit:
    package: Package
    score: float


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _score(package: Package, terms: list[str]) -> float:
    entry = package.latest
    name_parts = words(package.name)
    keywords = {w for k in entry.routing.get("keywords", ()) for w in words(k)}
    text = set(words(entry.description))
    for example in entry.routing.get("examples", ()):
        text.update(words(example))
    total = 0.0
    for term in terms:
        if term == package.name.replace("-", ""):
            best = NAME
        elif any(part.startswith(term) for part in name_parts):
            best = NAME_PART
        elif any(k.startswith(term) for k in keywords):
            best = KEYWORD
        elif any(w.startswith(term) for w in text):
            best = TEXT
        else:
            return 0.0
        total += best
    return total


def search(catalog: Catalog, query: str, *, limit: int = 50, kind: str | None = None) -> list[Hit]:
    terms = words(query[:MAX_QUERY_CHARS])
    hits = []
    for package in catalog.packages.values():
        if kind is not None and package.kind != kind:
            continue
        score = _score(package, terms) if terms else 1.0
        if score > 0:
            hits.append(Hit(package, score))
    hits.sort(key=lambda h: (-h.score, h.package.name))
    return hits[:limit]

"""Cleaning: Unicode NFKC, control characters, whitespace, and boilerplate lines that repeat
across many documents (page headers, footers, cookie banners, copyright lines)."""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from typing import Iterable

from .ingest import Document

__all__ = ["normalize_text", "boilerplate_lines", "strip_lines", "clean_documents", "CleanStats"]

# invisible characters that only get in the way (zero-width joiner U+200D is kept: emoji need it)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u2060\ufeff"), None)
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def normalize_text(text: str) -> str:
    """NFKC; `\\n` line endings; no control or invisible characters; single spaces; at most one
    blank line in a row; no leading/trailing whitespace."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = text.translate(_INVISIBLE)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def boilerplate_lines(texts: Iterable[str], *, min_docs: int = 3, fraction: float = 0.5) -> set[str]:
    """Lines found in at least max(min_docs, fraction × #documents) documents."""
    counts: Counter[str] = Counter()
    n = 0
    for text in texts:
        n += 1
        counts.update({line for line in text.split("\n") if line.strip()})
    threshold = max(min_docs, math.ceil(fraction * n))
    return {line for line, count in counts.items() if count >= threshold}


def strip_lines(text: str, drop: set[str]) -> tuple[str, int]:
    kept, removed = [], 0
    for line in text.split("\n"):
        if line in drop:
            removed += 1
        else:
            kept.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip(), removed


@dataclass(frozen=True, slots=True)
class CleanStats:
    documents_in: int
    documents_out: int
    blank_documents: int  # no text even before boilerplate removal
    empty_dropped: int
    boilerplate_patterns: int
    boilerplate_lines_removed: int
    chars_in: int
    chars_out: int


def clean_documents(docs: list[Document], *, boilerplate: bool = True, min_docs: int = 3,
                    fraction: float = 0.5) -> tuple[list[Document], CleanStats]:
    """Normalise every document, drop boilerplate lines, then drop documents left empty."""
    normalized = [replace(doc, text=normalize_text(doc.text)) for doc in docs]
    drop = boilerplate_lines((d.text for d in normalized), min_docs=min_docs, fraction=fraction) if boilerplate else set()
    out, removed = [], 0
    for doc in normalized:
        text, n = strip_lines(doc.text, drop) if drop else (doc.text, 0)
        removed += n
        if text:
            out.append(replace(doc, text=text))
    stats = CleanStats(
        documents_in=len(docs), documents_out=len(out), blank_documents=sum(not d.text for d in normalized),
        empty_dropped=len(normalized) - len(out),
        boilerplate_patterns=len(drop), boilerplate_lines_removed=removed,
        chars_in=sum(len(d.text) for d in docs), chars_out=sum(len(d.text) for d in out),
    )
    return out, stats

"""Reading the corpus: text, Markdown, HTML, JSONL (one text field per line) and PDF (with pypdf)."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .html import html_to_text
from .records import DataError, iter_jsonl

__all__ = ["Document", "SUFFIXES", "expand_sources", "read_document", "load_documents"]

SUFFIXES = {".txt": "text", ".text": "text", ".md": "markdown", ".markdown": "markdown",
            ".html": "html", ".htm": "html", ".jsonl": "jsonl", ".pdf": "pdf"}
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*\n", re.S)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)


@dataclass(frozen=True, slots=True)
class Document:
    id: str  # the source path, plus ":<line>" for a JSONL record
    source: str  # path relative to the recipe directory
    kind: str
    text: str


def expand_sources(patterns: Iterable[str], root: Path, *, where: str = "data.sources") -> list[Path]:
    """The files matching each glob (relative to `root`, `**` allowed), sorted, each once."""
    seen: dict[Path, None] = {}
    for i, pattern in enumerate(patterns):
        # root_dir keeps glob characters in the checkout's own path literal
        matches = sorted(root / p for p in glob.glob(pattern, root_dir=root, recursive=True)
                         if (root / p).is_file())
        if not matches:
            raise DataError(f"data.sources[{i}]: {pattern!r} matches no files", where=where,
                            hint=f"patterns are relative to {root.name}/")
        for path in matches:
            seen.setdefault(path, None)
    return list(seen)


def _decode(data: bytes, label: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                        where=label, hint="re-save the file as UTF-8") from exc


def _field(obj: dict, dotted: str):
    value = obj
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _pdf_text(path: Path, label: str) -> str:
    try:
        import pypdf
    except ImportError as exc:
        raise DataError("reading PDF files needs the pypdf package", where=label,
                        hint="pip install pypdf, or convert the file to text") from exc
    try:
        reader = pypdf.PdfReader(str(path))
        return "\n\n".join((page.extract_text() or "") for page in reader.pages)
    except Exception as exc:  # pypdf raises a wide range of errors on broken files
        raise DataError(f"cannot read PDF: {exc}", where=label) from exc


def read_document(path: Path, label: str, *, text_field: str = "text") -> list[Document]:
    """The documents in one file (a JSONL file holds one per line)."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unsupported file type {path.suffix or '(none)'!r}", where=label,
                        hint=f"supported: {', '.join(sorted(SUFFIXES))}")
    if kind == "jsonl":
        docs = []
        for number, obj in iter_jsonl(path, where=label):
            value = _field(obj, text_field)
            if not isinstance(value, str):
                problem = "has no" if value is None else "has a non-string"
                raise DataError(f"line {number} {problem} {text_field!r} field", where=label,
                                hint="set data.text_field to the field that holds the text")
            docs.append(Document(f"{label}:{number}", label, kind, value))
        return docs
    if kind == "pdf":
        return [Document(label, label, kind, _pdf_text(path, label))]
    text = _decode(path.read_bytes(), label)
    if kind == "html":
        text = html_to_text(text)
    elif kind == "markdown":
        text = _HTML_COMMENT.sub("", _FRONT_MATTER.sub("", text))
    return [Document(label, label, kind, text)]


def load_documents(paths: Iterable[Path], root: Path, *, text_field: str = "text") -> list[Document]:
    docs: list[Document] = []
    for path in paths:
        label = Path(os.path.relpath(path, root)).as_posix()
        docs.extend(read_document(path, label, text_field=text_field))
    return docs

"""Prompt templates for the teacher: plain text files, hashed into the provenance.

A template is the text of the chat messages sent for one chunk. Lines ``--- system``,
``--- user`` and ``--- assistant`` start messages (a file without them is one user message);
``{{name}}`` is replaced by a value (`PLACEHOLDERS`); anything else, JSON braces included, is
sent as written. The stand-in teacher reads the tags ``<task>``, ``<count>``, ``<labels>``,
``<schema>``, ``<document>`` and ``<pairs>`` from the last user message (see docs/forge.md), so
templates meant for it keep those tags around the placeholders; a real teacher reads the prose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from expertpm._canonical import sha256_bytes
from expertpm._errors import UserError

__all__ = ["Template", "TemplateError", "load_template", "PLACEHOLDERS"]

PLACEHOLDERS = {
    "chunk": "the document chunk",
    "n": "examples wanted per request (teacher.n_per_chunk)",
    "task": "task.kind",
    "labels": "task.labels, comma-separated",
    "schema": "the text of task.schema (empty when unset)",
    "expert": "expert.name",
    "description": "expert.description",
    "round": "0 .. teacher.requests_per_chunk-1, so repeated requests differ",
    "pairs": "'yes' when train.method = 'dpo' (ask for a rejected output too), else 'no'",
}
_SECTION = re.compile(r"^---[ \t]*(system|user|assistant)[ \t]*$", re.M)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(UserError):
    """A teacher prompt template is malformed or uses an unknown placeholder."""


@dataclass(frozen=True, slots=True)
class Template:
    label: str
    text: str
    sha256: str
    messages: tuple[tuple[str, str], ...]  # (role, text with placeholders)

    def render(self, values: Mapping[str, str]) -> list[dict[str, str]]:
        def fill(match: re.Match) -> str:
            return str(values[match.group(1)])

        return [{"role": role, "content": _PLACEHOLDER.sub(fill, text)} for role, text in self.messages]


def parse_template(text: str, label: str) -> Template:
    parts = _SECTION.split(text)
    messages: list[tuple[str, str]] = []
    if parts[0].strip():
        if len(parts) > 1:
            raise TemplateError("text before the first '--- <role>' line", where=label,
                                hint="start the file with '--- system' or '--- user'")
        messages.append(("user", parts[0].strip()))
    for i in range(1, len(parts), 2):
        body = parts[i + 1].strip()
        if not body:
            raise TemplateError(f"the '--- {parts[i]}' message is empty", where=label)
        messages.append((parts[i], body))
    if not messages or messages[-1][0] != "user":
        raise TemplateError("the last message must be a user message", where=label,
                            hint="end the file with a '--- user' section")
    for _, body in messages:
        for match in _PLACEHOLDER.finditer(body):
            if match.group(1) not in PLACEHOLDERS:
                raise TemplateError(f"unknown placeholder {{{{{match.group(1)}}}}}", where=label,
                                    hint=f"known: {', '.join(PLACEHOLDERS)}")
    return Template(label, text, sha256_bytes(text.encode("utf-8")), tuple(messages))


def load_template(path: Path, label: str | None = None) -> Template:
    label = label or path.as_posix()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TemplateError("not UTF-8 text", where=label) from exc
    except OSError as exc:
        raise TemplateError(f"cannot read: {exc.strerror}", where=label) from exc
    return parse_template(text, label)

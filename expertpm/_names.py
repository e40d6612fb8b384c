"""Expert names: one spelling per name, and no two names that look alike.

A valid name is lowercase ASCII letters, digits and single inner hyphens, at most 64 characters
(`sql`, `tool-call`, `qwen3-0-6b`). User input is normalised first (case, `_`, `.`, spaces), so
`SQL_Expert` finds `sql-expert`. `skeleton()` maps a name to a confusable-insensitive form: the
index refuses a new name whose skeleton equals an existing different name's skeleton.
"""

from __future__ import annotations

import re
import unicodedata

from ._errors import NameError_

MAX_NAME_LENGTH = 64
_VALID = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")
_CONFUSABLE_SEQUENCES = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_CONFUSABLE_CHARS = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s", "-": None})


def normalize_name(text: str) -> str:
    """Normalise user input to the canonical spelling (does not validate)."""
    return re.sub(r"[-_.\s]+", "-", text.strip().lower())


def validate_name(name: str, *, where: str | None = None) -> str:
    """Return `name` if it is a valid canonical expert name; raise NameError_ otherwise."""
    if not isinstance(name, str) or not name:
        raise NameError_("expert name is empty", where=where, hint="use lowercase letters, digits and hyphens")
    for ch in name:
        if ord(ch) > 127:
            base = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
            raise NameError_(
                f"expert name {name!r} contains the non-ASCII character U+{ord(ch):04X} "
                f"(confusable with {base!r})",
                where=where,
                hint="use only a-z, 0-9 and '-'",
            )
    if len(name) > MAX_NAME_LENGTH:
        raise NameError_(
            f"expert name {name!r} is {len(name)} characters long (max {MAX_NAME_LENGTH})", where=where
        )
    if not _VALID.match(name):
        suggestion = normalize_name(name).strip("-")
        hint = f"did you mean {suggestion!r}?" if suggestion and _VALID.match(suggestion) else (
            "use lowercase a-z, 0-9 and single inner hyphens"
        )
        raise NameError_(f"invalid expert name {name!r}", where=where, hint=hint)
    return name


def skeleton(name: str) -> str:
    """A form under which look-alike names collide (`sql-expert`, `sqlexpert`, `sq1-expert`)."""
    text = name.lower()
    for seq, repl in _CONFUSABLE_SEQUENCES:
        text = text.replace(seq, repl)
    return text.translate(_CONFUSABLE_CHARS)

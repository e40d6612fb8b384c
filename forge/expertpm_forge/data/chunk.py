"""Token-aware chunking with overlap.

`chunk_text` packs paragraphs (then sentences, then words) into chunks of at most `max_tokens`
tokens as counted by any `count_tokens(text) -> int` callable, repeating the trailing units of
a chunk (up to `overlap` tokens) at the start of the next. The counter is the base model's
`tokenizers` tokenizer when the recipe's base has one, else whitespace-separated words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .records import DataError

__all__ = ["TokenCounter", "whitespace_counter", "tokenizer_counter", "chunk_text", "base_tokenizer_file",
           "base_model_dir"]

CountTokens = Callable[[str], int]
_SENTENCE = re.compile(r"((?<=[.!?;:])[ \t]+|[ \t]*\n\s*)")


@dataclass(frozen=True, slots=True)
class TokenCounter:
    name: str
    count: CountTokens


def whitespace_counter() -> TokenCounter:
    return TokenCounter("whitespace", lambda text: len(text.split()))


def tokenizer_counter(path: Path) -> TokenCounter:
    """Count with a Hugging Face `tokenizers` tokenizer file (tokenizer.json)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a plain Exception on a bad file
        raise DataError(f"cannot load tokenizer: {exc}", where=path.as_posix(),
                        hint="rebuild the base model's tokenizer.json") from exc
    return TokenCounter(f"tokenizers:{path.parent.name}/{path.name}",
                        lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids))


def base_model_dir(recipe, home=None) -> Path | None:
    """The recipe's base model directory: `base.path`, or the newest installed version of
    `base.package` inside its range (None when it is not installed)."""
    if recipe.base.path is not None:
        return recipe.base.path
    if recipe.base.package is None:
        return None
    from expertpm._errors import UserError
    from expertpm._home import Home
    from expertpm._store import Store
    from expertpm._versions import Version, VersionRange

    try:
        wanted = VersionRange.parse(recipe.base.version_range or "*")
        found = [p for p in Store(Home.resolve(home)).list()
                 if p.name == recipe.base.package and wanted.contains(Version.parse(p.version))]
    except (UserError, OSError):
        return None
    return Path(found[-1].path) if found else None


def base_tokenizer_file(recipe) -> Path | None:
    if recipe.base.tokenizer is not None:
        return recipe.base.tokenizer
    model_dir = base_model_dir(recipe)
    candidate = model_dir / "tokenizer.json" if model_dir is not None else None
    return candidate if candidate is not None and candidate.is_file() else None


def _split_long(text: str, max_tokens: int, count: CountTokens) -> list[tuple[str, str]]:
    """Units (text, separator-before) no longer than max_tokens: sentences, else word runs."""
    units: list[tuple[str, str]] = []
    parts = _SENTENCE.split(text)  # sentence, separator, sentence, ...
    for k in range(0, len(parts), 2):
        sentence = parts[k].strip()
        if not sentence:
            continue
        sep = "\n" if k and "\n" in parts[k - 1] else " "
        if count(sentence) <= max_tokens:
            units.append((sentence, sep))
            continue
        run: list[str] = []
        for word in sentence.split():
            while count(word) > max_tokens:  # one "word" longer than a chunk: cut it
                lo, hi = 1, len(word) - 1  # the longest prefix that fits
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    lo, hi = (mid, hi) if count(word[:mid]) <= max_tokens else (lo, mid - 1)
                cut = lo
                if run:
                    units.append((" ".join(run), " "))
                    run = []
                units.append((word[:cut], ""))
                word = word[cut:]
            if run and count(" ".join(run + [word])) > max_tokens:
                units.append((" ".join(run), " "))
                run = []
            run.append(word)
        if run:
            units.append((" ".join(run), " "))
    return units


def _units(text: str, max_tokens: int, overlap: int, count: CountTokens) -> list[tuple[str, str]]:
    units: list[tuple[str, str]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if count(paragraph) <= max_tokens:
            units.append((paragraph, "\n\n"))
        else:
            parts = _split_long(paragraph, max_tokens - overlap, count)
            units.append((parts[0][0], "\n\n"))
            units.extend(parts[1:])
    return units


def _join(units: list[tuple]) -> str:
    return "".join((unit[1] if i else "") + unit[0] for i, unit in enumerate(units))


def _tail(text: str, budget: int, count: CountTokens) -> str:
    """The longest run of trailing words of `text` (as written) that counts at most `budget` tokens."""
    starts = [m.start() for m in re.finditer(r"\S+", text)]
    lo, hi = 0, len(starts)  # binary search on the number of trailing words
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(text[starts[-mid]:]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[starts[-lo]:] if lo else ""


def chunk_text(text: str, *, max_tokens: int, overlap: int = 0, count_tokens: CountTokens) -> list[str]:
    """Split `text` into chunks of at most `max_tokens` tokens; each chunk starts with up to
    `overlap` tokens from the end of the previous one (whole units, else trailing words)."""
    if max_tokens < 1 or not 0 <= overlap < max_tokens:
        raise ValueError("need max_tokens >= 1 and 0 <= overlap < max_tokens")
    # oversized paragraphs are cut into runs that leave room for the overlap in front of them
    units = [(t, sep, count_tokens(t)) for t, sep in _units(text, max_tokens, overlap, count_tokens)]
    chunks: list[str] = []
    carry: list[tuple[str, str, int]] = []  # the overlap opening the next chunk
    i = 0
    while i < len(units):
        current = list(carry)
        total = sum(u[2] for u in current)
        while current and total + units[i][2] > max_tokens:  # the overlap must leave room
            total -= current.pop(0)[2]
        n_carried = len(current)
        while i < len(units) and (len(current) == n_carried or total + units[i][2] <= max_tokens):
            current.append(units[i])
            total += units[i][2]
            i += 1
        # joining may merge tokens differently than the sum of parts: give back fresh units, then
        # drop the overlap, until the chunk fits (one unit alone always fits)
        while len(current) > 1 and count_tokens(_join(current)) > max_tokens:
            if len(current) > n_carried + 1:
                current.pop()
                i -= 1
            else:
                current.pop(0)
                n_carried -= 1
        chunks.append(_join(current))
        carry, carried = [], 0
        if i >= len(units) or overlap == 0:
            continue
        for unit in reversed(current[n_carried:]):
            if carried + unit[2] > overlap:
                break
            carry.insert(0, unit)
            carried += unit[2]
        if not carry:
            tail = _tail(current[-1][0], overlap, count_tokens)
            carry = [(tail, current[-1][1], count_tokens(tail))] if tail else []
        elif len(carry) == len(current) - n_carried:  # never repeat a whole chunk's new text
            carry = carry[1:]
    return chunks

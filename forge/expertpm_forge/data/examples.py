"""Teacher examples → training records (validated, de-duplicated, fitted to the context)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .dedupe import normalize_for_hash
from .formatting import ExampleChecker, completion_text
from .records import DataError

__all__ = ["FormatStats", "format_examples", "text_records", "pinned_records"]


@dataclass(slots=True)
class FormatStats:
    examples: int = 0
    records: int = 0
    invalid: int = 0
    duplicates: int = 0
    too_long: int = 0
    missing_rejected: int = 0
    reasons: Counter = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("examples", "records", "invalid", "duplicates", "too_long",
                                             "missing_rejected")}
        out["invalid_reasons"] = dict(self.reasons.most_common(5))
        return out


def _rejected_text(kind: str, rejected: Any) -> str:
    if isinstance(rejected, str) and kind in ("tool-call", "ner"):
        return rejected  # a deliberately malformed output, kept verbatim
    return completion_text(kind, rejected)


def format_examples(examples: Iterable[dict], *, checker: ExampleChecker, render: Callable[[str], str],
                    count_tokens: Callable[[str], int], max_len: int, dpo: bool = False
                    ) -> tuple[list[dict], FormatStats]:
    """Records {"id", "prompt", "completion", "task", "source", "input", "target"} (+ chosen/rejected).

    `examples` are synthesize records {"id", "chunk", "example"}. Invalid examples, repeated
    inputs and examples longer than `max_len` tokens (prompt + completion) are dropped and counted.
    """
    kind = checker.kind
    stats = FormatStats()
    seen: set[str] = set()
    records = []
    for item in examples:
        stats.examples += 1
        try:
            source, target, rejected = checker.check(item.get("example"))
        except (ValueError, TypeError) as exc:
            stats.invalid += 1
            stats.reasons[str(exc)[:80]] += 1
            continue
        key = normalize_for_hash(source)
        if key in seen:
            stats.duplicates += 1
            continue
        seen.add(key)
        prompt, completion = render(source), completion_text(kind, target)
        if count_tokens(prompt) + count_tokens(completion) > max_len:
            stats.too_long += 1
            continue
        record = {"id": f"ex-{len(records):06d}", "prompt": prompt, "completion": completion, "task": kind,
                  "source": item.get("chunk"), "input": source, "target": target}
        if dpo:
            if rejected is None:
                stats.missing_rejected += 1
                continue
            record["chosen"] = completion
            record["rejected"] = _rejected_text(kind, rejected)
        records.append(record)
    stats.records = len(records)
    return records, stats


def text_records(chunks: Iterable[dict], *, count_tokens: Callable[[str], int], max_len: int
                 ) -> tuple[list[dict], FormatStats]:
    """Continued pre-training records {"id", "text", "source"}: the de-duplicated chunks as they are."""
    stats = FormatStats()
    records = []
    for chunk in chunks:
        stats.examples += 1
        if count_tokens(chunk["text"]) > max_len:
            stats.too_long += 1
            continue
        records.append({"id": f"ex-{len(records):06d}", "text": chunk["text"], "source": chunk["id"]})
    stats.records = len(records)
    return records, stats



def pinned_records(items: list[tuple[int, dict]], *, checker: ExampleChecker, render: Callable[[str], str],
                   label: str) -> list[dict]:
    """Records from a hand-written eval file: (line, item) pairs, either already records (with
    "prompt" and "completion") or teacher-shaped examples, formatted like the training data."""
    out = []
    for line, item in items:
        if "prompt" in item and "completion" in item:
            out.append({"id": f"eval-{len(out):06d}", **item})
            continue
        try:
            source, target, _ = checker.check(item)
        except (ValueError, TypeError) as exc:
            raise DataError(f"line {line}: {exc}", where=label,
                            hint="an eval item is a record (prompt, completion) or an example like the teacher's") from exc
        out.append({"id": f"eval-{len(out):06d}", "prompt": render(source),
                    "completion": completion_text(checker.kind, target), "task": checker.kind, "source": label,
                    "input": source, "target": target})
    return out

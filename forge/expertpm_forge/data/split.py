"""Train/eval split with decontamination.

The split is a seeded shuffle. Every eval record whose input repeats or near-duplicates
(MinHash + exact Jaccard ≥ threshold) a training record's input is dropped from the eval set, so
the held-out score measures generalisation, not memory. A pinned eval file is never altered: if
it overlaps the training data the split is refused.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .dedupe import find_overlaps
from .records import DataError

__all__ = ["SplitStats", "split_records", "check_pinned_eval", "drop_overlapping", "record_text"]


def record_text(record: dict) -> str:
    """The text compared for contamination: the user's input (a CPT record's text)."""
    return str(record.get("input") or record.get("text") or record.get("prompt") or "")


@dataclass(frozen=True, slots=True)
class SplitStats:
    records: int
    train: int
    eval: int
    eval_contaminated: int


def eval_count(n: int, *, size: int | None, fraction: float) -> int:
    if size is not None:
        return min(size, n - 1)
    return min(max(1, round(n * fraction)), n - 1) if fraction > 0 else 0


def split_records(records: list[dict], *, seed: int, size: int | None = None, fraction: float = 0.1,
                  threshold: float = 0.8, shingle_size: int = 5, num_perm: int = 128,
                  where: str | None = None) -> tuple[list[dict], list[dict], SplitStats]:
    """(train, eval, stats): both lists keep the input order."""
    if len(records) < 2:
        raise DataError(f"only {len(records)} training record(s): too few to split into train and eval",
                        where=where, hint="add documents to data.sources or raise teacher.n_per_chunk")
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    n_eval = eval_count(len(records), size=size, fraction=fraction)
    eval_idx, train_idx = sorted(order[:n_eval]), sorted(order[n_eval:])
    train = [records[i] for i in train_idx]
    candidates = [records[i] for i in eval_idx]
    overlaps = find_overlaps([record_text(r) for r in candidates], [record_text(r) for r in train],
                             threshold=threshold, shingle_size=shingle_size, num_perm=num_perm)
    evaluation = [r for i, r in enumerate(candidates) if i not in overlaps]
    if candidates and not evaluation:
        raise DataError(f"all {len(candidates)} eval records near-duplicate training records",
                        where=where, hint="the data is too repetitive to measure anything: add varied "
                        "documents, or raise eval.near_threshold")
    return train, evaluation, SplitStats(len(records), len(train), len(evaluation), len(overlaps))


def check_pinned_eval(evaluation: list[dict], train: list[dict], *, label: str, threshold: float = 0.8,
                      shingle_size: int = 5, num_perm: int = 128, where: str | None = None) -> None:
    """Refuse a pinned eval set that repeats or near-duplicates training data."""
    overlaps = find_overlaps([record_text(r) for r in evaluation], [record_text(r) for r in train],
                             threshold=threshold, shingle_size=shingle_size, num_perm=num_perm)
    if overlaps:
        first = min(overlaps)
        j, score = overlaps[first]
        raise DataError(
            f"eval.file: {len(overlaps)} of {len(evaluation)} items in {label} overlap the training data "
            f"(item {first + 1} {'repeats' if score >= 1.0 else 'near-duplicates'} training record "
            f"{train[j].get('id', j)}, Jaccard {score:.2f})",
            where=where, hint="remove those items from the eval file, or the documents they come from")


def drop_overlapping(train: list[dict], evaluation: list[dict], *, threshold: float = 0.8, shingle_size: int = 5,
                     num_perm: int = 128) -> tuple[list[dict], int]:
    """Training records minus those that repeat or near-duplicate an eval record (for a pinned
    eval set that must stay as it is); returns (kept, dropped count)."""
    overlaps = find_overlaps([record_text(r) for r in train], [record_text(r) for r in evaluation],
                             threshold=threshold, shingle_size=shingle_size, num_perm=num_perm)
    return [r for i, r in enumerate(train) if i not in overlaps], len(overlaps)

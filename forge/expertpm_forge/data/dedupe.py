"""Exact and near-duplicate detection.

Exact: sha256 of the normalised text (NFKC, case-folded, whitespace collapsed).
Near: MinHash over word k-gram shingles (k = 5 by default) with LSH banding to find candidate
pairs, each confirmed by the exact Jaccard similarity of the two shingle sets, so LSH only
decides which pairs get compared. Everything is numpy and seeded: the same texts always give
the same result. Shingling and signatures are computed for all texts at once (vectorised);
only the LSH lookups loop in Python.
"""

from __future__ import annotations

import hashlib
import string
import unicodedata
import zlib
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = ["normalize_for_hash", "exact_key", "words_of", "Shingles", "shingle_texts", "minhash_signatures",
           "lsh_params", "NearDuplicateIndex", "DedupeResult", "dedupe_texts", "find_overlaps", "jaccard"]

_PUNCTUATION = str.maketrans(dict.fromkeys(
    string.punctuation.replace("_", "") + "\u2014\u2013\u2018\u2019\u201c\u201d\u00ab\u00bb\u2026\u00b7\u2022\u00bf\u00a1", " "))
_SHIFT = np.uint64(32)
_MASK32 = np.uint64(0xFFFFFFFF)
_EMPTY = np.uint32(0xFFFFFFFF)


def normalize_for_hash(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def exact_key(text: str) -> str:
    return hashlib.sha256(normalize_for_hash(text).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Shingles:
    """The shingle hashes of many texts, concatenated; text i owns hashes[offsets[i]:offsets[i+1]]."""

    hashes: np.ndarray  # uint64 values below 2**32
    offsets: np.ndarray  # int64, len(texts) + 1
    _sets: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def of(self, i: int) -> np.ndarray:
        """The set of shingle hashes of text i (sorted, unique)."""
        found = self._sets.get(i)
        if found is None:
            found = self._sets[i] = np.unique(self.hashes[self.offsets[i]:self.offsets[i + 1]])
        return found


def words_of(text: str) -> list[str]:
    """Case-folded words: the text split on whitespace and punctuation (str methods, not a regex:
    this is the hot loop of deduplication)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.casefold().translate(_PUNCTUATION).split()


def shingle_texts(texts: list[str], k: int = 5) -> Shingles:
    """Word k-gram shingles (a text shorter than k words is one shingle of all its words)."""
    tokens: list[str] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        words = words_of(text)
        lengths[i] = len(words)
        tokens.extend(words)
    vocab = {word: zlib.crc32(word.encode("utf-8")) for word in dict.fromkeys(tokens)}
    flat = np.fromiter(map(vocab.__getitem__, tokens), dtype=np.uint64, count=len(tokens))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    n_shingles = np.where(lengths >= k, lengths - k + 1, (lengths > 0).astype(np.int64))
    offsets = np.concatenate([[0], np.cumsum(n_shingles)]).astype(np.int64)
    out = np.zeros(int(offsets[-1]), dtype=np.uint64)
    # rolling polynomial hash of every window of k words, then keep windows inside one text
    if len(flat) >= k:
        h = np.zeros(len(flat) - k + 1, dtype=np.uint64)
        for j in range(k):
            h = (h * np.uint64(1000003) + flat[j:len(flat) - k + 1 + j]) & _MASK32
        owner = np.repeat(np.arange(len(texts)), n_shingles)  # the text of every output slot
        slot = np.arange(len(out))
        long = lengths[owner] >= k
        out[slot[long]] = h[slot[long] - offsets[owner[long]] + starts[owner[long]]]
    for i in np.nonzero((lengths > 0) & (lengths < k))[0]:  # short texts: one shingle
        h = np.uint64(0)
        for w in flat[starts[i]:starts[i + 1]]:
            h = (h * np.uint64(1000003) + w) & _MASK32
        out[offsets[i]] = h
    return Shingles(out, offsets)


def minhash_signatures(shingles: Shingles, num_perm: int = 128, seed: int = 0) -> np.ndarray:
    """(n, num_perm) uint32 MinHash signatures; a text without shingles gets all-0xFFFFFFFF."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 64, size=num_perm, dtype=np.uint64, endpoint=False) | np.uint64(1)
    b = rng.integers(0, 1 << 64, size=num_perm, dtype=np.uint64, endpoint=False)
    n = len(shingles)
    sigs = np.full((n, num_perm), _EMPTY, dtype=np.uint32)
    counts = np.diff(shingles.offsets)
    nonempty = np.nonzero(counts > 0)[0]
    block = 1024  # shingles per block: the temporaries stay in cache
    buffer = np.empty((max(block, int(counts.max(initial=0))), num_perm), dtype=np.uint64)
    i = 0
    while i < len(nonempty):
        j, total = i, 0
        while j < len(nonempty) and (total == 0 or total + counts[nonempty[j]] <= block):
            total += int(counts[nonempty[j]])
            j += 1
        docs = nonempty[i:j]
        lo = shingles.offsets[docs[0]]
        values = shingles.hashes[lo:lo + total]
        # multiply-shift hashing: the high 32 bits of (a*h + b) mod 2^64 (odd a) permute the shingles
        permuted = buffer[:total]
        np.multiply(values[:, None], a[None, :], out=permuted)
        permuted += b
        permuted >>= _SHIFT
        sigs[docs] = np.minimum.reduceat(permuted, shingles.offsets[docs] - lo, axis=0)
        i = j
    return sigs


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int, fn_weight: float = 0.95) -> tuple[int, int]:
    """(bands, rows) minimising weighted false-positive/false-negative areas (as datasketch does),
    leaning to recall since every candidate pair is verified exactly."""
    best, best_err = (1, num_perm), float("inf")
    low = np.linspace(0.0, threshold, 200)
    high = np.linspace(threshold, 1.0, 200)
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            fp = np.trapezoid(1 - (1 - low ** rows) ** bands, low)
            fn = np.trapezoid((1 - high ** rows) ** bands, high)
            err = (1 - fn_weight) * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (bands, rows), err
    return best


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class NearDuplicateIndex:
    """LSH buckets of MinHash band keys, one dict per band."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        self.threshold = threshold
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.buckets: list[dict[int, list[int]]] = [{} for _ in range(self.bands)]

    def band_keys(self, sigs: np.ndarray) -> np.ndarray:
        """(n, bands) uint64 keys: a polynomial hash of each band's rows (wrapping is fine)."""
        keys = np.zeros((len(sigs), self.bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for r in range(self.rows):
                column = sigs[:, r: self.bands * self.rows: self.rows].astype(np.uint64)
                keys = keys * np.uint64(0x100000001B3) + column
        return keys

    def add(self, item: int, keys: np.ndarray) -> None:
        for band, key in enumerate(keys.tolist()):
            self.buckets[band].setdefault(key, []).append(item)

    def candidates(self, keys: np.ndarray) -> list[int]:
        found: set[int] = set()
        for band, key in enumerate(keys.tolist()):
            found.update(self.buckets[band].get(key, ()))
        return sorted(found)


@dataclass(frozen=True, slots=True)
class DedupeResult:
    kept: list[int]  # indices of the texts kept, in input order
    exact: dict[int, int]  # dropped index -> the kept index it repeats
    near: dict[int, tuple[int, float]]  # dropped index -> (kept index, Jaccard)


def dedupe_texts(texts: list[str], *, exact: bool = True, near: bool = True, threshold: float = 0.8,
                 shingle_size: int = 5, num_perm: int = 128, seed: int = 0) -> DedupeResult:
    """Keep the first of every group of exact duplicates, then drop every text whose Jaccard
    similarity to an earlier kept text is at least `threshold`."""
    first: dict[str, int] = {}
    exact_dups: dict[int, int] = {}
    survivors = []
    for i, text in enumerate(texts):
        key = exact_key(text) if exact else str(i)
        if key in first:
            exact_dups[i] = first[key]
        else:
            first[key] = i
            survivors.append(i)
    near_dups: dict[int, tuple[int, float]] = {}
    if near and len(survivors) > 1:
        shingles = shingle_texts([texts[i] for i in survivors], shingle_size)
        keys = NearDuplicateIndex(threshold, num_perm)
        all_keys = keys.band_keys(minhash_signatures(shingles, num_perm, seed))
        kept_local = []
        shared = _shares_a_bucket(all_keys)
        for local, i in enumerate(survivors):
            if not shared[local]:  # no other text shares any of its buckets: nothing to compare
                kept_local.append(local)
                continue
            match = _best_match(shingles.of(local), keys.candidates(all_keys[local]), shingles, threshold)
            if match is None:
                keys.add(local, all_keys[local])
                kept_local.append(local)
            else:
                near_dups[i] = (survivors[match[0]], match[1])
        survivors = [survivors[j] for j in kept_local]
    return DedupeResult(survivors, exact_dups, near_dups)


def _shares_a_bucket(keys: np.ndarray) -> np.ndarray:
    """For each row: does another row have the same key in some band?"""
    shared = np.zeros(len(keys), dtype=bool)
    for band in range(keys.shape[1]):
        _, inverse, counts = np.unique(keys[:, band], return_inverse=True, return_counts=True)
        shared |= counts[inverse] > 1
    return shared


def _best_match(own: np.ndarray, candidates: list[int], pool: Shingles,
                threshold: float) -> tuple[int, float] | None:
    for c in candidates:  # sorted: the earliest similar text wins
        score = jaccard(own, pool.of(c))
        if score >= threshold:
            return c, score
    return None


def find_overlaps(queries: list[str], corpus: list[str], *, threshold: float = 0.8, shingle_size: int = 5,
                  num_perm: int = 128, seed: int = 0) -> dict[int, tuple[int, float]]:
    """For each query text that repeats or near-duplicates a corpus text: (corpus index, Jaccard)."""
    found: dict[int, tuple[int, float]] = {}
    exact = {}
    for j, text in enumerate(corpus):
        exact.setdefault(exact_key(text), j)
    for i, text in enumerate(queries):
        if (j := exact.get(exact_key(text))) is not None:
            found[i] = (j, 1.0)
    if not corpus or not queries:
        return found
    pool, asked = shingle_texts(corpus, shingle_size), shingle_texts(queries, shingle_size)
    index = NearDuplicateIndex(threshold, num_perm)
    for j, keys in enumerate(index.band_keys(minhash_signatures(pool, num_perm, seed))):
        index.add(j, keys)
    for i, keys in enumerate(index.band_keys(minhash_signatures(asked, num_perm, seed))):
        if i not in found:
            match = _best_match(asked.of(i), index.candidates(keys), pool, threshold)
            if match is not None:
                found[i] = match
    return found

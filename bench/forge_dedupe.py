"""Benchmark: forge's MinHash + LSH near-duplicate removal on generated chunks.

Generates N chunks (default 100k) of ~60 words from a Zipf-distributed vocabulary, with 5%
exact copies (re-cased, re-spaced) and 10% near copies (1–3 words changed) of earlier chunks.
Times, in the same run:
  baseline  exact dedupe only (sha256 of the normalised text)
  minhash   exact + near dedupe (5-gram shingles, 128 permutations, LSH, exact Jaccard check)
and prints chunks/s for both, their ratio, and the recall of the injected near copies.

    .venv/bin/python bench/forge_dedupe.py [--n 100000] [--words 60] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from expertpm_forge.data.dedupe import dedupe_texts, jaccard, shingle_texts


def generate(n: int, words: int, seed: int = 0) -> tuple[list[str], dict[int, int], dict[int, int]]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    weights /= weights.sum()
    fresh = rng.choice(len(vocab), size=(n, words), p=weights)
    texts: list[str] = []
    exact: dict[int, int] = {}
    near: dict[int, int] = {}
    originals: list[int] = []
    for i in range(n):
        roll = rng.random()
        if originals and roll < 0.05:
            j = originals[rng.integers(len(originals))]
            texts.append("  ".join(texts[j].upper().split()))
            exact[i] = j
        elif originals and roll < 0.15:
            j = originals[rng.integers(len(originals))]
            tokens = texts[j].split()
            for k in rng.choice(len(tokens), size=rng.integers(1, 4), replace=False):
                tokens[k] = "edited"
            texts.append(" ".join(tokens))
            near[i] = j
        else:
            texts.append(" ".join(vocab[fresh[i]]))
            originals.append(i)
    return texts, exact, near


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()

    texts, exact, near = generate(args.n, args.words)
    print(f"{len(texts)} chunks of {args.words} words: {len(exact)} exact copies, {len(near)} near copies injected")

    start, cpu = time.perf_counter(), time.process_time()
    baseline = dedupe_texts(texts, near=False)
    exact_s, exact_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    result = dedupe_texts(texts, threshold=args.threshold)
    minhash_s, minhash_cpu = time.perf_counter() - start, time.process_time() - cpu

    # the injected near copies that really are near duplicates (exact Jaccard >= threshold)
    pairs = list(near.items())
    shingles = shingle_texts([texts[i] for i, _ in pairs] + [texts[j] for _, j in pairs])
    above = [i for k, (i, _) in enumerate(pairs)
             if jaccard(shingles.of(k), shingles.of(len(pairs) + k)) >= args.threshold]
    caught = sum(1 for i in above if i in result.near or i in result.exact)
    # CPU seconds too: on a shared machine wall-clock time depends on the neighbours
    print(f"baseline (exact sha256 only):  {exact_s:6.2f} s wall {exact_cpu:6.2f} s cpu  "
          f"{len(texts) / exact_s:8.0f} chunks/s  removed {len(baseline.exact)}")
    print(f"minhash  (exact + near, LSH):  {minhash_s:6.2f} s wall {minhash_cpu:6.2f} s cpu  "
          f"{len(texts) / minhash_s:8.0f} chunks/s  removed {len(result.exact)} exact + {len(result.near)} near")
    print(f"recall: {caught}/{len(above)} ({caught / max(1, len(above)):.1%}) of the injected near copies with "
          f"Jaccard >= {args.threshold}; {sum(1 for i in exact if i in result.exact)}/{len(exact)} exact copies")
    print(f"ratio minhash/baseline throughput: {exact_s / minhash_s:.3f}x wall, {exact_cpu / minhash_cpu:.3f}x cpu")


if __name__ == "__main__":
    main()

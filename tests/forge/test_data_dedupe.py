"""Exact and near-duplicate removal (MinHash + LSH + exact Jaccard), and the corpus-level errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from expertpm_forge.data.dedupe import (dedupe_texts, exact_key, find_overlaps, jaccard, lsh_params,
                                        minhash_signatures, shingle_texts)
from expertpm_forge.data.records import DataError
from expertpm_forge.pipeline import run_pipeline
from expertpm_forge.recipe import load_recipe

VOCAB = [f"w{i}" for i in range(3000)]


def random_text(rng: random.Random, n: int = 60) -> str:
    return " ".join(rng.choices(VOCAB, k=n))


def edit(text: str, rng: random.Random, changes: int) -> str:
    words = text.split()
    for _ in range(changes):
        words[rng.randrange(len(words))] = "changed"
    return " ".join(words)


def test_exact_key_normalises_case_and_whitespace() -> None:
    assert exact_key("Hello   World\n") == exact_key("hello world") != exact_key("hello, world")


def test_shingles_and_jaccard() -> None:
    shingles = shingle_texts(["a b c d e f", "a b c d e g", "short text", ""], k=5)
    assert [len(shingles.of(i)) for i in range(4)] == [2, 2, 1, 0]
    assert jaccard(shingles.of(0), shingles.of(1)) == pytest.approx(1 / 3)
    assert jaccard(shingles.of(3), shingles.of(0)) == 0.0
    sigs = minhash_signatures(shingles, num_perm=64, seed=0)
    assert sigs.shape == (4, 64) and sigs.dtype == np.uint32
    assert (sigs[3] == 0xFFFFFFFF).all()
    assert (minhash_signatures(shingles, num_perm=64, seed=0) == sigs).all()  # seeded: reproducible


def test_minhash_estimates_jaccard() -> None:
    rng = random.Random(1)
    base = random_text(rng, 200)
    variant = edit(base, rng, 10)
    shingles = shingle_texts([base, variant])
    true = jaccard(shingles.of(0), shingles.of(1))
    sigs = minhash_signatures(shingles, num_perm=256, seed=3)
    assert abs(float((sigs[0] == sigs[1]).mean()) - true) < 0.1


def test_lsh_params_fit_the_threshold() -> None:
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128
    assert 0.6 < (1 / bands) ** (1 / rows) < 0.85  # the S-curve's midpoint sits just below the threshold


def test_dedupe_removes_exact_and_near_duplicates_and_keeps_the_first() -> None:
    rng = random.Random(7)
    originals = [random_text(rng) for _ in range(200)]
    texts = list(originals)
    exact = {200 + k: i for k, i in enumerate(range(0, 20, 2))}
    near = {210 + k: i for k, i in enumerate(range(1, 30, 3))}
    texts += [originals[i].upper() for i in exact.values()]  # same text, other case
    texts += [edit(originals[i], rng, 1) for i in near.values()]  # one word in 60 changed
    texts.append(edit(originals[5], rng, 30))  # half the words changed: not a duplicate
    result = dedupe_texts(texts, threshold=0.8)
    assert result.exact == exact
    assert {i: j for i, (j, _) in result.near.items()} == near
    assert all(score >= 0.8 for _, score in result.near.values())
    assert result.kept == list(range(200)) + [len(texts) - 1]
    assert dedupe_texts(texts, threshold=0.8) == result  # deterministic
    assert dedupe_texts(texts, near=False).near == {}


def test_find_overlaps_between_two_sets() -> None:
    rng = random.Random(3)
    corpus = [random_text(rng, 30) for _ in range(50)]
    queries = [corpus[4], edit(corpus[9], rng, 1), random_text(rng, 30)]
    found = find_overlaps(queries, corpus, threshold=0.6)
    assert found[0] == (4, 1.0) and found[1][0] == 9 and 2 not in found


def test_dedupe_step_reports_counts(make_expert, sql_recipe) -> None:
    docs = {"docs/a.md": "One unique document about customers and their orders in the shop.",
            "docs/b.md": "One unique document about customers and their orders in the shop.",
            "docs/c.md": "A second, different text: the orders table lists products and amounts paid."}
    recipe = sql_recipe("http://127.0.0.1:1/v1", pipeline={"steps": ["clean", "chunk", "dedupe"]},
                        data={"sources": ["docs/*.md"]})
    root = make_expert(recipe, docs)
    outcome = run_pipeline(load_recipe(root))[-1]
    assert dict(outcome.summary) == {"input": 3, "exact_duplicates": 1, "near_duplicates": 0, "kept": 2}
    removed = [json.loads(line) for line in (root / ".forge" / "dedupe" / "removed.jsonl").read_text().splitlines()]
    assert removed == [{"id": "docs/b.md#0", "duplicate_of": "docs/a.md#0", "how": "exact", "jaccard": 1.0}]


def test_all_duplicate_corpus_is_refused(make_expert, sql_recipe, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = "The same page, copied into every file of the corpus by mistake. " * 3
    docs = {f"docs/{i}.md": text + (" " * i) for i in range(5)}
    # with boilerplate removal on, the repeated lines are boilerplate and nothing is left
    root = make_expert(sql_recipe("http://127.0.0.1:1/v1", data={"sources": ["docs/*.md"]}), docs)
    with pytest.raises(DataError) as info:
        run_pipeline(load_recipe(root))
    assert str(info.value) == ("experts/sql/forge.toml: all-duplicate corpus: every line of the 5 documents repeats "
                               "across them and was removed as boilerplate — data.sources must hold distinct "
                               "documents (or set data.boilerplate = false)")
    # without it, dedupe finds that every chunk is a copy of the first
    root = make_expert(sql_recipe("http://127.0.0.1:1/v1", data={"sources": ["docs/*.md"], "boilerplate": False}),
                       {**docs, "docs/5.md": text + "Indeed."})
    with pytest.raises(DataError) as info:
        run_pipeline(load_recipe(root))
    assert str(info.value) == ("experts/sql/forge.toml: all-duplicate corpus: all 6 chunks repeat one text "
                               "(4 exact and 1 near duplicates) — data.sources must hold distinct documents")


def test_empty_corpus_is_refused(make_expert, sql_recipe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    docs = {"docs/a.md": "\n\n  \n", "docs/b.html": "<html><script>only()</script><nav>menu</nav></html>"}
    root = make_expert(sql_recipe("http://127.0.0.1:1/v1"), docs)
    with pytest.raises(DataError) as info:
        run_pipeline(load_recipe(root))
    assert str(info.value) == ("experts/sql/forge.toml: empty corpus: data.sources matched 2 file(s) holding 2 "
                               "document(s), but no text is left after cleaning — point data.sources at files "
                               "that contain text")

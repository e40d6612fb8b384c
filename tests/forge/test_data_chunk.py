"""Token-aware chunking: bounds, overlap, coverage, and the base model's own tokenizer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from expertpm_forge.data.chunk import chunk_text, tokenizer_counter, whitespace_counter
from expertpm_forge.data.records import DataError
from expertpm_forge.pipeline import run_pipeline
from expertpm_forge.recipe import load_recipe

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()


def corpus(seed: int = 0, paragraphs: int = 12) -> str:
    rng = random.Random(seed)
    paras = []
    for _ in range(paragraphs):
        sentences = [" ".join(rng.choices(WORDS, k=rng.randint(3, 14))).capitalize() + "."
                     for _ in range(rng.randint(1, 6))]
        paras.append(" ".join(sentences))
    return "\n\n".join(paras)


def overlap_words(a: list[str], b: list[str]) -> int:
    return max((k for k in range(min(len(a), len(b)) + 1) if a[len(a) - k:] == b[:k]), default=0)


def reconstruct(chunks: list[str], overlap: int) -> list[str]:
    words = chunks[0].split()
    for prev, cur in zip(chunks, chunks[1:]):
        k = overlap_words(prev.split(), cur.split())
        assert k <= overlap
        words += cur.split()[k:]
    return words


@pytest.mark.parametrize(("max_tokens", "overlap"), [(16, 0), (16, 4), (40, 8), (7, 3)])
def test_chunks_are_bounded_overlap_and_cover_the_text(max_tokens: int, overlap: int) -> None:
    text = corpus()
    count = whitespace_counter().count
    chunks = chunk_text(text, max_tokens=max_tokens, overlap=overlap, count_tokens=count)
    assert all(1 <= count(c) <= max_tokens for c in chunks)
    assert reconstruct(chunks, overlap) == text.split()
    if overlap:
        shared = [overlap_words(a.split(), b.split()) for a, b in zip(chunks, chunks[1:])]
        assert sum(1 for s in shared if s > 0) >= len(shared) // 2


def test_paragraphs_and_lines_are_kept_inside_a_chunk() -> None:
    text = "First paragraph here.\n\nCREATE TABLE t (\n  id INTEGER\n);\n\nLast one."
    chunks = chunk_text(text, max_tokens=50, overlap=5, count_tokens=whitespace_counter().count)
    assert chunks == [text]


def test_a_word_longer_than_a_chunk_is_cut() -> None:
    chunks = chunk_text("x" * 95, max_tokens=10, overlap=0, count_tokens=len)
    assert "".join(chunks) == "x" * 95 and all(len(c) <= 10 for c in chunks)
    with pytest.raises(ValueError):
        chunk_text("a b", max_tokens=4, overlap=4, count_tokens=len)


@pytest.fixture(scope="module")
def bpe_tokenizer(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[UNK]"], show_progress=False)
    tokenizer.train_from_iterator([corpus(seed) for seed in range(20)], trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_chunking_with_a_tokenizers_tokenizer(bpe_tokenizer: Path) -> None:
    counter = tokenizer_counter(bpe_tokenizer)
    text = corpus(seed=3)
    assert counter.count(text) > len(text.split())  # sub-word tokens, not words
    chunks = chunk_text(text, max_tokens=24, overlap=6, count_tokens=counter.count)
    assert all(counter.count(c) <= 24 for c in chunks)
    assert reconstruct(chunks, 24) == text.split()


def test_bad_tokenizer_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"tokenizer.json: cannot load tokenizer: .* — rebuild the base model's"):
        tokenizer_counter(tmp_path / "tokenizer.json")


def test_chunk_step_uses_the_base_tokenizer(make_expert, bpe_tokenizer: Path) -> None:
    base = bpe_tokenizer.parent
    recipe = {
        "expert": {"name": "base-cpt", "version": "0.1.0"}, "base": {"path": str(base)},
        "data": {"sources": ["corpus/*.txt"], "chunk_tokens": 32, "chunk_overlap": 4},
        "task": {"kind": "text"}, "train": {"method": "cpt", "adapter": "full"},
        "pipeline": {"steps": ["clean", "chunk"]},
    }
    root = make_expert(recipe, {"corpus/a.txt": corpus(1), "corpus/b.txt": corpus(2)}, name="base-cpt", schema=None)
    outcome = run_pipeline(load_recipe(root))[-1]
    assert outcome.summary["tokenizer"] == f"tokenizers:{base.name}/tokenizer.json"
    counter = tokenizer_counter(bpe_tokenizer)
    import json

    rows = [json.loads(line) for line in (root / ".forge" / "chunk" / "chunks.jsonl").read_text().splitlines()]
    assert rows and all(r["tokens"] == counter.count(r["text"]) <= 32 for r in rows)
    # the tokenizer file is an input: changing it re-runs chunking
    manifest = json.loads((root / ".forge" / "chunk" / "_step.json").read_text())
    assert any(name.endswith("tokenizer.json") for name in manifest["inputs"]["files"])

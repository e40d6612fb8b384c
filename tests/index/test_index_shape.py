"""The fast line check never accepts what schemas/index-entry.schema.json refuses, and agrees with
it on valid lines and on every single-field mutation of them."""

import copy

import pytest

from expertpm import FormatError
from expertpm._index._shape import check_line, line_ok
from expertpm._schema import schema_problems

HEX = "a" * 64
ENTRY = {"name": "sql", "version": "1.0.0", "kind": "expert", "sha256": HEX, "size": 10, "manifest_sha256": HEX,
         "description": "d", "license": "MIT", "requires": {"other": "^1"}, "incompatible_with": {},
         "routing": {"keywords": ["k"], "exclude_keywords": [], "examples": ["e"]},
         "base": {"name": "tiny", "version": "^1", "weights_sha256": HEX, "tokenizer_sha256": HEX, "vocab_size": 3},
         "eval": {"metric": "m", "expert_score": 0.5, "base_score": 1, "n": 3}, "embedding": [0.1, 2],
         "published": "2026-01-01T00:00:00Z", "publisher": HEX, "signature": "b" * 128}
BASE = {k: v for k, v in ENTRY.items() if k not in ("base", "eval", "embedding")} | {
    "kind": "base", "model": {"architecture": "qwen3", "weights_sha256": HEX, "tokenizer_sha256": HEX,
                              "vocab_size": 3, "context_length": 8}}
YANK = {"yank": True, "name": "sql", "version": "1.0.0", "publisher": HEX, "after": HEX,
        "published": "2026-01-01T00:00:00Z", "signature": "b" * 128}

BAD_VALUES = [None, True, 0, -1, 1.5, "", "X", "a" * 3000, [], {}, ["x"], {"x": 1}, {"Bad Name": "^1"}]


def mutations(doc):
    """Every document obtained by removing one field or setting one (nested) field to a bad value."""
    for key in list(doc):
        yield {k: v for k, v in doc.items() if k != key}
        for bad in BAD_VALUES:
            yield doc | {key: bad}
        if isinstance(doc[key], dict):
            for inner in mutations(doc[key]):
                yield doc | {key: inner}
    yield doc | {"unexpected": 1}


@pytest.mark.parametrize("doc", [ENTRY, BASE, YANK], ids=["entry", "base", "yank"])
def test_valid_lines_pass_both(doc):
    assert schema_problems(doc, "index-entry") == []
    assert line_ok(doc)


@pytest.mark.parametrize("doc", [ENTRY, BASE, YANK], ids=["entry", "base", "yank"])
def test_the_fast_check_agrees_with_the_schema_on_every_mutation(doc):
    checked = 0
    for mutated in mutations(copy.deepcopy(doc)):
        assert line_ok(mutated) == (schema_problems(mutated, "index-entry") == []), mutated
        checked += 1
    assert checked > 90


def test_check_line_names_the_problem():
    with pytest.raises(FormatError, match=r"routing.keywords\[0\]: '' should be non-empty"):
        check_line(ENTRY | {"routing": {"keywords": [""], "exclude_keywords": [], "examples": []}}, where="x")
    with pytest.raises(FormatError, match="malformed index line"):
        check_line(ENTRY | {"size": 10.0}, where="x")

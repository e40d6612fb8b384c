"""Incremental detokenization with the tiny base's real byte-level BPE tokenizer."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from expertpm._errors import RuntimeUserError
from expertpm_runtime.text import TextAssembler, normalize_messages, special_stop_ids
from serving_fixtures import tiny_packages  # noqa: F401


@pytest.fixture(scope="module")
def tok(tiny_packages):
    return AutoTokenizer.from_pretrained(str(tiny_packages.base))


def feed(assembler: TextAssembler, ids: list[int]) -> list[str]:
    return [assembler.push([i]) for i in ids]


def test_multibyte_characters_are_never_split(tok):
    text = "café crème brûlée — 東京"
    ids = tok.encode(text)
    assert len(ids) > len(text.split())  # byte-level pieces: some characters span tokens
    a = TextAssembler(tok)
    deltas = feed(a, ids) + [a.flush()]
    assert "".join(deltas) == text
    assert not any("\ufffd" in d for d in deltas)


def test_stop_string_across_tokens_ends_the_text_before_it(tok):
    ids = tok.encode("The quick brown fox jumps over the lazy dog.")
    a = TextAssembler(tok, stop=["ck br", "zzz"])
    deltas = feed(a, ids)
    assert "".join(deltas) == "The qui" and a.stopped and a.text == "The qui"
    assert a.push(tok.encode(" more")) == "" and a.flush() == ""


def test_text_that_may_begin_a_stop_string_is_held_back(tok):
    a = TextAssembler(tok, stop=["fox!"])
    assert "".join(feed(a, tok.encode("The quick brown fox"))) == "The quick brown "
    assert a.push(tok.encode(" jumps")) + a.flush() == "fox jumps" and not a.stopped


def test_special_token_stops_become_token_ids(tok):
    ids, texts = special_stop_ids(tok, ["<|im_end|>", "###", ""])
    assert ids == (tok.convert_tokens_to_ids("<|im_end|>"),) and texts == ("###",)


def test_messages_are_normalised_or_refused():
    assert normalize_messages([{"role": "user", "content": [{"type": "text", "text": "a"}]}]) == \
        [{"role": "user", "content": "a"}]
    for bad, message in [([], "'messages' must be a non-empty list of {role, content} objects"),
                         ([{"role": "user", "content": 3}], "messages[0].content must be a string"),
                         ([{"role": "user", "content": [{"type": "image_url"}]}],
                          "messages[0].content has a part that is not text — this server reads text parts only")]:
        with pytest.raises(RuntimeUserError) as exc:
            normalize_messages(bad)
        assert str(exc.value) == message

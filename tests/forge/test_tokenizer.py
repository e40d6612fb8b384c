"""The base tokenizer: trained on the bundled corpus, loadable offline by transformers."""

from __future__ import annotations

import json

import pytest

from expertpm_forge.tokenizer import (
    DEFAULT_PROMPT_TEMPLATE, ENDOFTEXT, IM_END, IM_START, CorpusError, TokenizerConfig, load_tokenizer,
    stop_token_ids, train_tokenizer,
)


def test_tokenizer_loads_with_auto_tokenizer_offline(forge_tokenizer_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(forge_tokenizer_dir), local_files_only=True)
    assert sorted(p.name for p in forge_tokenizer_dir.iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    assert tok.eos_token == IM_END and tok.pad_token == ENDOFTEXT
    assert tok.convert_tokens_to_ids(IM_START) != tok.unk_token_id
    assert len(tok) <= 1024
    for text in ["SELECT name FROM users WHERE age >= 30;", '{"name": "get_weather", "arguments": {}}',
                 "MATCH (p:Person)-[:KNOWS]->(f) RETURN f.name", "Zoë naïve café 東京 🙂"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text  # byte-level: every string round-trips


def test_chat_tokens_are_single_tokens_and_template_matches(forge_tokenizer_dir):
    tok = load_tokenizer(forge_tokenizer_dir)
    prompt = DEFAULT_PROMPT_TEMPLATE.replace("{prompt}", "hi")
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False,
                                   add_generation_prompt=True) == prompt
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids(IM_START)
    assert stop_token_ids(tok) == [tok.convert_tokens_to_ids(IM_END), tok.convert_tokens_to_ids(ENDOFTEXT)]
    config = json.loads((forge_tokenizer_dir / "tokenizer_config.json").read_text())
    assert "chat_template" in config  # kept in the file the tokenizer digest covers


def test_training_is_deterministic(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"The cat number {i} sat on the mat near SELECT * FROM t{i % 7};"
                                  for i in range(300)))
    a = train_tokenizer([corpus], tmp_path / "a", TokenizerConfig(vocab_size=400))
    b = train_tokenizer([corpus], tmp_path / "b", TokenizerConfig(vocab_size=400))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_empty_or_missing_corpus_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="the corpus is empty"):
        train_tokenizer([tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(CorpusError, match="does not exist"):
        train_tokenizer([tmp_path / "nope"], tmp_path / "out")
    with pytest.raises(CorpusError, match="no tokenizer.json"):
        load_tokenizer(tmp_path / "empty")

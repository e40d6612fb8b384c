"""The tiny base: a Qwen3 built from a config, its manifest `model` section, pre-training."""

from __future__ import annotations

import json

import jsonschema
from safetensors.torch import load_file

from expertpm._schema import SCHEMA_DIR
from expertpm_forge.base import BaseModelConfig, build_base, init_base, model_info
from expertpm_forge.tokenizer import TokenizerConfig
from expertpm_forge.train import TrainConfig, load_base
from expertpm_testing.forge_train import BASE_CORPUS, MICRO


def test_default_shape_is_a_few_million_parameters(forge_tokenizer_dir, tmp_path):
    base = init_base(forge_tokenizer_dir, tmp_path / "base")
    info = model_info(base)
    assert 2_000_000 < info["parameters"] < 8_000_000
    config = json.loads((base / "config.json").read_text())
    assert config["model_type"] == "qwen3" and config["tie_word_embeddings"] is True
    assert config["head_dim"] == 64 and config["num_hidden_layers"] == 4 and config["vocab_size"] % 64 == 0
    assert sorted(p.name for p in base.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert "lm_head.weight" not in load_file(str(base / "model.safetensors"))  # tied, stored once


def test_model_info_is_the_manifest_model_section(micro_base):
    info = model_info(micro_base)
    schema = json.loads((SCHEMA_DIR / "manifest.schema.json").read_text())
    jsonschema.validate(info, {"$defs": schema["$defs"], **schema["properties"]["model"]})
    assert info["architecture"] == "qwen3" and info["context_length"] == MICRO["context_length"]


def test_init_is_deterministic_per_seed(forge_tokenizer_dir, tmp_path):
    small = BaseModelConfig(**MICRO)
    a = init_base(forge_tokenizer_dir, tmp_path / "a", small, seed=1)
    b = init_base(forge_tokenizer_dir, tmp_path / "b", small, seed=1)
    c = init_base(forge_tokenizer_dir, tmp_path / "c", small, seed=2)
    assert model_info(a)["weights_sha256"] == model_info(b)["weights_sha256"] != model_info(c)["weights_sha256"]


def test_build_base_pretrains_and_generates(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "chat.txt").write_text((BASE_CORPUS / "chat.txt").read_text()[:40_000])
    pretrain = TrainConfig(learning_rate=3e-3, max_steps=25, batch_size=8, max_length=64, warmup_steps=3,
                           checkpoint_every=0)
    built = build_base([corpus], tmp_path / "work", model=BaseModelConfig(**MICRO),
                       tokenizer=TokenizerConfig(vocab_size=512), pretrain=pretrain)
    assert built.model_dir == tmp_path / "work" / "cpt" / "model"
    log = json.loads(built.pretrain.curve["json"].read_text())
    assert len(log) == 25 and sum(e["loss"] for e in log[-5:]) < sum(e["loss"] for e in log[:5]) - 2.5
    model, tok = load_base(built.model_dir)
    out = model.generate(**tok("<|im_start|>user\n", return_tensors="pt"), max_new_tokens=5, do_sample=False)
    assert out.shape[1] > 3
    assert model_info(built.model_dir)["tokenizer_sha256"] == model_info(built.tokenizer_dir.parent / "init")["tokenizer_sha256"]

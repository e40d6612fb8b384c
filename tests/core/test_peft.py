"""PEFT interop with the real peft library on a tiny random Qwen3: pack --from-peft, export-peft, reload."""

import json

import pytest

from expertpm import PackageError
from expertpm._manifest import directory_digests
from expertpm._package import read_manifest
from expertpm._peft import export_peft, pack_peft, peft_source

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


def tiny_qwen3():
    config = transformers.Qwen3Config(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                      max_position_embeddings=64)
    torch.manual_seed(0)
    return transformers.Qwen3ForCausalLM(config).eval()


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-qwen3")
    tiny_qwen3().save_pretrained(path)
    return path


CONFIGS = {
    "lora": lambda: peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    "dora": lambda: peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "o_proj"], use_dora=True,
                                    task_type="CAUSAL_LM"),
    "ia3": lambda: peft.IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"],
                                  task_type="CAUSAL_LM"),
    "prompt": lambda: peft.PromptTuningConfig(num_virtual_tokens=5, task_type="CAUSAL_LM"),
}
EXPECTED_ADAPTER = {
    "lora": {"type": "lora", "rank": 4, "alpha": 8, "target_modules": ["q_proj", "v_proj"], "dtype": "float32"},
    "dora": {"type": "dora", "rank": 4, "alpha": 8, "target_modules": ["o_proj", "q_proj"], "dtype": "float32"},
    "ia3": {"type": "ia3", "target_modules": ["down_proj", "k_proj", "v_proj"], "feedforward_modules": ["down_proj"],
            "dtype": "float32"},
    "prompt": {"type": "prompt", "num_virtual_tokens": 5, "dtype": "float32"},
}


def trained_adapter(base_dir, kind, out):
    model = peft.get_peft_model(transformers.Qwen3ForCausalLM.from_pretrained(base_dir), CONFIGS[kind]())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad:  # only the adapter's own parameters
                param.copy_(torch.randn_like(param) * 0.1 + (1.0 if "ia3" in name else 0.0))
    model.save_pretrained(out)
    return model.eval()


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_peft_round_trip_gives_identical_tensors(tmp_path, base_dir, signing_key, kind):
    original = trained_adapter(base_dir, kind, tmp_path / "adapter")
    package = pack_peft(tmp_path / "adapter", tmp_path, signing_key, base_dir=base_dir, name=f"tiny-{kind}",
                        version="0.1.0", description="a test adapter")
    manifest = read_manifest(package)[0]
    assert manifest.get("adapter") == EXPECTED_ADAPTER[kind]
    weights, tokenizer = directory_digests(base_dir)
    assert manifest.get("base") == {"name": base_dir.name, "version": "*", "weights_sha256": weights,
                                    "tokenizer_sha256": tokenizer, "vocab_size": 128}
    out = export_peft(package, tmp_path / "exported", trusted_key_ids={signing_key.key_id})
    assert sorted(p.name for p in out.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (out / name).read_bytes() == (tmp_path / "adapter" / name).read_bytes()
    loaded = peft.PeftModel.from_pretrained(transformers.Qwen3ForCausalLM.from_pretrained(base_dir), out).eval()
    want = peft.get_peft_model_state_dict(original)
    got = peft.get_peft_model_state_dict(loaded)
    assert want.keys() == got.keys() and want
    assert all(torch.equal(want[k], got[k]) for k in want)
    ids = torch.tensor([[1, 5, 9, 2, 7]])
    with torch.no_grad():
        assert torch.equal(original(input_ids=ids).logits, loaded(input_ids=ids).logits)
        adapted = loaded(input_ids=ids).logits[:, -ids.shape[1]:]  # prompt tuning prepends virtual tokens
        assert not torch.allclose(adapted, tiny_qwen3()(input_ids=ids).logits)


def test_pickled_adapter_and_unsupported_types_are_refused(tmp_path, base_dir):
    peft_dir = tmp_path / "adapter"
    peft_dir.mkdir()
    (peft_dir / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8}))
    (peft_dir / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(PackageError) as info:
        peft_source(peft_dir, tmp_path / "src", name="x", version="1.0.0", base_dir=base_dir)
    assert info.value.message == "adapter_model.bin is a pickle file; pickle-based weights are refused"
    trained_adapter(base_dir, "lora", tmp_path / "real")
    config = json.loads((tmp_path / "real" / "adapter_config.json").read_text())
    (tmp_path / "real" / "adapter_config.json").write_text(json.dumps(dict(config, peft_type="LOHA")))
    with pytest.raises(PackageError) as info:
        peft_source(tmp_path / "real", tmp_path / "src", name="x", version="1.0.0", base_dir=base_dir)
    assert info.value.message == "PEFT type 'LOHA' is not supported"
    assert not (tmp_path / "src").exists()


def test_pattern_target_modules_are_read_from_tensor_names(tmp_path, base_dir):
    trained_adapter(base_dir, "lora", tmp_path / "real")
    config = json.loads((tmp_path / "real" / "adapter_config.json").read_text())
    (tmp_path / "real" / "adapter_config.json").write_text(json.dumps(dict(config, target_modules=r".*\.(q|v)_proj")))
    src = peft_source(tmp_path / "real", tmp_path / "src", name="x", version="1.0.0", base_dir=base_dir,
                      base_name="tiny", base_version="^1")
    manifest = json.loads((src / "manifest.json").read_text())
    assert manifest["adapter"]["target_modules"] == ["q_proj", "v_proj"]
    assert (manifest["base"]["name"], manifest["base"]["version"]) == ("tiny", "^1")


def test_export_refuses_a_non_empty_directory(tmp_path, packed_expert):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(PackageError, match="the export directory exists and is not empty"):
        export_peft(packed_expert, tmp_path / "busy")

"""`expertpm new`: scaffolds are valid, deterministic, pack as they are, and load in transformers/peft."""

import json

import pytest
from safetensors.numpy import load_file

from expertpm import NameError_, PackageError
from expertpm._manifest import directory_digests
from expertpm._package import pack, read_manifest, verify_package
from expertpm._peft import export_peft
from expertpm._scaffold import scaffold


def test_expert_scaffold_packs_as_is(tmp_path, signing_key):
    src = scaffold("sql", tmp_path / "sql")
    assert sorted(p.name for p in src.iterdir()) == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                                                     "manifest.json"]
    manifest = verify_package(pack(src, tmp_path, signing_key)).manifest
    assert manifest.kind == "expert" and manifest.get("base")["weights_sha256"] == "0" * 64
    tensors = load_file(str(src / "adapter_model.safetensors"))
    a = tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"]
    b = tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"]
    assert a.shape == (8, 64) and a.any() and b.shape == (32, 8) and not b.any()
    assert len(tensors) == 8
    assert "placeholders" in (src / "README.md").read_text()


def test_scaffolds_are_deterministic(tmp_path):
    for kind in ("expert", "base"):
        one, two = scaffold("x", tmp_path / f"{kind}1", kind=kind), scaffold("x", tmp_path / f"{kind}2", kind=kind)
        assert {p.name: p.read_bytes() for p in one.iterdir()} == {p.name: p.read_bytes() for p in two.iterdir()}


def test_refuses_bad_names_and_busy_directories(tmp_path):
    with pytest.raises(NameError_) as info:
        scaffold("SQL_Expert", tmp_path / "x")
    assert info.value.hint == "did you mean 'sql-expert'?"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "f").write_text("x")
    with pytest.raises(PackageError, match="the directory exists and is not empty"):
        scaffold("sql", tmp_path / "busy")
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def base_source(tmp_path_factory):
    return scaffold("tiny-qwen3", tmp_path_factory.mktemp("scaffolds") / "base", kind="base")


def test_base_scaffold_is_a_real_model(base_source, tmp_path, signing_key):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    model, info = transformers.AutoModelForCausalLM.from_pretrained(base_source, output_loading_info=True)
    assert not any(info.values()), info
    tokenizer = transformers.AutoTokenizer.from_pretrained(base_source)
    ids = tokenizer("SELECT name FROM users; -- naïve")["input_ids"]
    assert tokenizer.decode(ids) == "SELECT name FROM users; -- naïve"
    assert tokenizer.eos_token_id == 256 and len(tokenizer) == 259
    out = model.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False)
    assert out.shape == (1, len(ids) + 3)
    manifest = verify_package(pack(base_source, tmp_path, signing_key)).manifest
    weights, tokenizer_digest = directory_digests(base_source)
    assert manifest.get("model")["weights_sha256"] == weights
    assert manifest.get("model")["tokenizer_sha256"] == tokenizer_digest
    config = json.loads((base_source / "config.json").read_text())
    assert manifest.get("model")["vocab_size"] == config["vocab_size"] == 320


def test_base_pack_refuses_stale_model_digests(base_source, tmp_path, signing_key):
    src = tmp_path / "stale"
    src.mkdir()
    for p in base_source.iterdir():
        (src / p.name).write_bytes(p.read_bytes())
    doc = json.loads((src / "manifest.json").read_text())
    doc["model"]["weights_sha256"] = "1" * 64
    (src / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(PackageError) as info:
        pack(src, tmp_path, signing_key)
    assert info.value.message.startswith(f"model.weights_sha256 is {'1' * 64} but the source's files give ")


def test_expert_scaffold_binds_to_the_base_scaffold_and_loads_in_peft(base_source, tmp_path, signing_key):
    torch = pytest.importorskip("torch")
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    package = pack(scaffold("sql", tmp_path / "sql"), tmp_path, signing_key, base_dir=base_source)
    base = read_manifest(package)[0].get("base")
    assert (base["name"], base["version"], base["vocab_size"]) == ("tiny-qwen3", "^0.1", 320)
    assert (base["weights_sha256"], base["tokenizer_sha256"]) == directory_digests(base_source)
    adapter_dir = export_peft(package, tmp_path / "peft")
    model = peft.PeftModel.from_pretrained(transformers.AutoModelForCausalLM.from_pretrained(base_source), adapter_dir)
    plain = transformers.AutoModelForCausalLM.from_pretrained(base_source)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, plain(input_ids=ids).logits)  # B = 0: no effect yet

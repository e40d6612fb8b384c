"""Tiny real models and experts for the runtime tests (shared by engine, router and server tests).

`tiny_base` is a random Qwen3 (hidden 64, 2 layers) saved with `save_pretrained`, with a byte-level
tokenizer and a base `manifest.json`. `make_expert(kind, seed=…)` trains nothing: it wraps the
same base with real `peft`, randomises the adapter weights so they matter, saves it with
`save_pretrained` and adds an expert `manifest.json`, i.e. the directory the store installs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from expertpm._canonical import canonical_json, sha256_file
from expertpm._manifest import directory_digests

TINY = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            intermediate_size=128, vocab_size=320, max_position_embeddings=256, initializer_range=0.2,
            rms_norm_eps=1e-6, tie_word_embeddings=True, eos_token_id=257, bos_token_id=None, pad_token_id=256)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def write_byte_tokenizer(out: Path) -> None:
    """A byte-level BPE with no merges: ids 0..255 are bytes, then <|endoftext|>, <|im_start|>, <|im_end|>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    byte_chars = _bytes_to_unicode()
    vocab = {byte_chars[b]: b for b in range(256)}
    assert set(vocab) == set(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.add_special_tokens({"additional_special_tokens": ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]})
    fast.chat_template = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
                          "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
                          "{{ '<|im_start|>assistant\\n' }}{% endif %}")
    fast.save_pretrained(out)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-ins for the 256 byte values (the ByteLevel alphabet)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, n = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


def files_entry(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): {"sha256": sha256_file(p)[0], "size": p.stat().st_size}
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in ("manifest.json", "signature.json")}


def build_tiny_base(out: Path, *, seed: int = 0, arch: str = "qwen3", tokenizer: bool = True,
                    manifest: bool = True, **overrides) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    kw = {**TINY, **overrides}
    if arch == "qwen3":
        model = Qwen3ForCausalLM(Qwen3Config(**kw))
    else:
        model = LlamaForCausalLM(LlamaConfig(**kw))
    model.save_pretrained(out)
    if tokenizer:
        write_byte_tokenizer(out)
    if manifest:
        weights, tok = directory_digests(out)
        doc = {"format_version": 1, "name": "tiny-base", "version": "0.1.0", "kind": "base",
               "description": "tiny random test base", "license": "Apache-2.0", "authors": ["tests"],
               "files": files_entry(out),
               "model": {"architecture": arch, "weights_sha256": weights, "tokenizer_sha256": tok,
                         "vocab_size": kw["vocab_size"], "context_length": kw["max_position_embeddings"]}}
        (out / "manifest.json").write_bytes(canonical_json(doc))
    return out


def peft_config(kind: str, **kw):
    from peft import IA3Config, LoraConfig, PromptTuningConfig

    if kind in ("lora", "dora"):
        return LoraConfig(r=kw.get("r", 4), lora_alpha=kw.get("alpha", 8), use_dora=kind == "dora",
                          target_modules=kw.get("targets", ALL_LINEAR), lora_dropout=0.0)
    if kind == "ia3":
        return IA3Config(target_modules=kw.get("targets", ["k_proj", "v_proj", "down_proj"]),
                         feedforward_modules=kw.get("feedforward", ["down_proj"]))
    return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=kw.get("num_virtual_tokens", 4))


def build_expert(base_dir: Path, out: Path, kind: str, *, seed: int = 1, name: str | None = None,
                 base_digest: str | None = None, **kw):
    """Save a real PEFT adapter of `kind` on `base_dir`, with random non-zero weights, as a package dir."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from expertpm_runtime import ExpertSpec

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, peft_config(kind, **kw))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in peft_model.named_parameters():
            if "lora_" in pname or "ia3_" in pname or "prompt" in pname or "magnitude" in pname:
                noise = torch.randn(p.shape, generator=gen) * kw.get("scale", 0.3)
                p.copy_(p + noise if ("ia3_" in pname or "magnitude" in pname) else noise)
    peft_model.save_pretrained(out)
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    weights, tok = directory_digests(base_dir)
    adapter = {"type": kind, "dtype": "float32"}
    if kind in ("lora", "dora"):
        adapter.update(rank=adapter_cfg["r"], alpha=adapter_cfg["lora_alpha"],
                       target_modules=sorted(adapter_cfg["target_modules"]))
    elif kind == "ia3":
        adapter.update(target_modules=sorted(adapter_cfg["target_modules"]),
                       feedforward_modules=sorted(adapter_cfg["feedforward_modules"]))
    else:
        adapter.update(num_virtual_tokens=adapter_cfg["num_virtual_tokens"])
    doc = {"format_version": 1, "name": name or f"tiny-{kind}-{seed}", "version": "1.0.0", "kind": "expert",
           "description": f"random {kind} test expert", "license": "Apache-2.0", "authors": ["tests"],
           "files": files_entry(out),
           "base": {"name": "tiny-base", "version": "^0.1", "weights_sha256": base_digest or weights,
                    "tokenizer_sha256": tok, "vocab_size": TINY["vocab_size"]},
           "adapter": adapter}
    (out / "manifest.json").write_bytes(canonical_json(doc))
    digest = sha256_file(out / "manifest.json")[0]  # stands in for the archive digest in tests
    return ExpertSpec(digest=digest, path=out, weight=1.0)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3 base directory (with tokenizer and manifest), built once per session."""
    return build_tiny_base(tmp_path_factory.mktemp("tiny-base"))


@pytest.fixture(scope="session")
def make_expert(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory):
    """`make_expert("lora", seed=3, targets=[...])` -> ExpertSpec of an expert dir on `tiny_base` (cached)."""
    cache: dict[tuple, object] = {}

    def _make(kind: str, seed: int = 1, **kw):
        key = (kind, seed, tuple(sorted((k, str(v)) for k, v in kw.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"expert-{kind}-{seed}")
            cache[key] = build_expert(tiny_base, out, kind, seed=seed, **kw)
        return cache[key]

    return _make


@pytest.fixture(scope="session")
def tiny_engine_factory(tiny_base: Path):
    """`tiny_engine_factory(**config_overrides)` -> an Engine on `tiny_base` (float32, CPU)."""
    from expertpm_runtime import Engine, EngineConfig

    def _make(**kw) -> "Engine":
        kw.setdefault("kv_cache_bytes", 4 << 20)
        kw.setdefault("max_rank", 16)
        kw.setdefault("adapter_slots", 8)
        kw.setdefault("max_chain", 4)
        return Engine(EngineConfig(model=tiny_base, **kw))

    return _make

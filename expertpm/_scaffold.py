"""`expertpm new`: source directories that pack as they are.

An expert scaffold is a zero-effect LoRA (B = 0) for the tiny Qwen3 shape below, with a PEFT
`adapter_config.json`, placeholder base digests and a README saying what to replace. A base
scaffold is a tiny but complete Hugging Face Qwen3 model directory: config, seeded random weights
and a byte-level tokenizer, with placeholder model digests that `pack` fills in. Weights are written as safetensors by hand (no torch, no numpy).
"""

from __future__ import annotations

import json
import random
import struct
import sys
from array import array
from pathlib import Path

from ._canonical import canonical_json
from ._errors import PackageError
from ._manifest import MANIFEST_FILE
from ._names import validate_name
from ._pack import PLACEHOLDER_DIGEST

__all__ = ["TINY_QWEN3", "scaffold", "write_safetensors", "byte_level_tokenizer"]

TINY_QWEN3 = {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 320, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "tie_word_embeddings": True, "hidden_act": "silu", "attention_bias": False, "attention_dropout": 0.0,
    "initializer_range": 0.02, "use_cache": True, "bos_token_id": 256, "eos_token_id": 256, "pad_token_id": 256,
    "dtype": "float32",
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
DEFAULT_BASE = "tiny-qwen3"
LORA_RANK, LORA_ALPHA, LORA_TARGETS = 8, 16, ("q_proj", "v_proj")


def scaffold(name: str, dest: Path | str, *, kind: str = "expert", base: str = DEFAULT_BASE) -> Path:
    """Create the source directory `dest` for a new expert or base named `name`."""
    validate_name(name)
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise PackageError("the directory exists and is not empty", where=str(dest), hint="choose a new --dir")
    if kind not in ("expert", "base"):
        raise PackageError(f"unknown kind {kind!r}", hint="use --kind expert or --kind base")
    dest.mkdir(parents=True, exist_ok=True)
    doc = {"format_version": 1, "name": name, "version": "0.1.0", "kind": kind,
           "description": f"TODO: what {name} is good at", "license": "Apache-2.0",
           "authors": ["Your Name <you@example.com>"]}
    if kind == "expert":
        doc.update(_expert_files(dest, name, base))
    else:
        doc.update(_base_files(dest))
    (dest / MANIFEST_FILE).write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    (dest / "README.md").write_text((_EXPERT_README if kind == "expert" else _BASE_README).format(name=name, base=base))
    return dest


def _expert_files(dest: Path, name: str, base: str) -> dict:
    hidden, heads, kv, head_dim = (TINY_QWEN3[k] for k in ("hidden_size", "num_attention_heads",
                                                            "num_key_value_heads", "head_dim"))
    out_dims = {"q_proj": heads * head_dim, "v_proj": kv * head_dim}
    rng = random.Random(0)
    tensors = {}
    for layer in range(TINY_QWEN3["num_hidden_layers"]):
        for module in LORA_TARGETS:
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = ([LORA_RANK, hidden],
                                                  [rng.gauss(0.0, 0.02) for _ in range(LORA_RANK * hidden)])
            tensors[f"{prefix}.lora_B.weight"] = ([out_dims[module], LORA_RANK], [0.0] * (out_dims[module] * LORA_RANK))
    write_safetensors(dest / "adapter_model.safetensors", tensors)
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": base, "r": LORA_RANK,
              "lora_alpha": LORA_ALPHA, "lora_dropout": 0.0, "target_modules": list(LORA_TARGETS), "bias": "none",
              "fan_in_fan_out": False, "inference_mode": True, "use_dora": False, "modules_to_save": None}
    (dest / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return {
        "base": {"name": base, "version": "^0.1", "weights_sha256": PLACEHOLDER_DIGEST,
                 "tokenizer_sha256": PLACEHOLDER_DIGEST, "vocab_size": TINY_QWEN3["vocab_size"]},
        "adapter": {"type": "lora", "rank": LORA_RANK, "alpha": LORA_ALPHA, "target_modules": list(LORA_TARGETS),
                    "dtype": "float32"},
        "routing": {"keywords": [name], "exclude_keywords": [], "examples": [], "priority": 0.5},
    }


def _base_files(dest: Path) -> dict:
    c = TINY_QWEN3
    hidden, inter, vocab, head_dim = c["hidden_size"], c["intermediate_size"], c["vocab_size"], c["head_dim"]
    q_dim, kv_dim = c["num_attention_heads"] * head_dim, c["num_key_value_heads"] * head_dim
    rng = random.Random(0)

    def normal(*shape: int) -> tuple[list[int], list[float]]:
        count = 1
        for d in shape:
            count *= d
        return list(shape), [rng.gauss(0.0, c["initializer_range"]) for _ in range(count)]

    def ones(n: int) -> tuple[list[int], list[float]]:
        return [n], [1.0] * n

    tensors = {"model.embed_tokens.weight": normal(vocab, hidden), "model.norm.weight": ones(hidden)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        tensors.update({
            p + "input_layernorm.weight": ones(hidden), p + "post_attention_layernorm.weight": ones(hidden),
            p + "self_attn.q_proj.weight": normal(q_dim, hidden), p + "self_attn.k_proj.weight": normal(kv_dim, hidden),
            p + "self_attn.v_proj.weight": normal(kv_dim, hidden), p + "self_attn.o_proj.weight": normal(hidden, q_dim),
            p + "self_attn.q_norm.weight": ones(head_dim), p + "self_attn.k_norm.weight": ones(head_dim),
            p + "mlp.gate_proj.weight": normal(inter, hidden), p + "mlp.up_proj.weight": normal(inter, hidden),
            p + "mlp.down_proj.weight": normal(hidden, inter),
        })
    write_safetensors(dest / "model.safetensors", tensors)
    (dest / "config.json").write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")
    (dest / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 256, "eos_token_id": 256, "pad_token_id": 256}, indent=2) + "\n")
    (dest / "tokenizer.json").write_bytes(canonical_json(byte_level_tokenizer()))
    (dest / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "model_max_length": c["max_position_embeddings"]}, indent=2) + "\n")
    parameters = sum(len(values) for _, values in tensors.values())
    return {"model": {"architecture": "qwen3", "weights_sha256": PLACEHOLDER_DIGEST,
                      "tokenizer_sha256": PLACEHOLDER_DIGEST,
                      "vocab_size": vocab, "context_length": c["max_position_embeddings"], "parameters": parameters,
                      "dtype": "float32"}}


def write_safetensors(path: Path, tensors: dict[str, tuple[list[int], list[float]]]) -> Path:
    """Write float32 tensors {name: (shape, flat values)} as a safetensors file, names sorted."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        shape, values = tensors[name]
        data = array("f", values)
        if sys.byteorder == "big":
            data.byteswap()
        raw = data.tobytes()
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(chunks))
    return path


def byte_level_tokenizer() -> dict:
    """A Hugging Face `tokenizers` byte-level BPE with no merges: one token per byte + special tokens."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    codes, extra = {}, 0
    for b in range(256):
        if b in printable:
            codes[b] = chr(b)
        else:
            codes[b] = chr(256 + extra)
            extra += 1
    vocab = {codes[b]: b for b in range(256)}
    added = [{"id": 256 + i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, tok in enumerate(SPECIAL_TOKENS)]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": byte_level, "post_processor": None, "decoder": byte_level,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": []}}


_EXPERT_README = """# {name}

A new expert, scaffolded by `expertpm new`. It packs as it is (`expertpm pack .`), but it does
nothing yet: `adapter_model.safetensors` is a LoRA whose B matrices are zero.

What to replace before publishing:

- `adapter_model.safetensors` and `adapter_config.json`: your trained adapter, as PEFT's
  `save_pretrained` writes them (or train one with `forge`). Or start from a PEFT directory:
  `expertpm pack --from-peft ADAPTER_DIR --name {name} --version 0.1.0 --base BASE_DIR`.
- `manifest.json` → `base`: the base model this adapter was trained on (`{base}` here). The
  digests are placeholders (all zeros); `expertpm pack . --base BASE_DIR` fills them in from the
  real base (a Hugging Face model directory or an unpacked base package).
- `manifest.json` → `adapter`: must describe the adapter (type, rank, alpha, target modules, dtype).
- `description`, `license`, `authors`, and `routing` (keywords and example prompts that should
  select this expert).
"""

_BASE_README = """# {name}

A tiny Qwen3 base model (hidden size 64, 2 layers, byte-level tokenizer), scaffolded by
`expertpm new --kind base`. It packs as it is (`expertpm pack .`), but its weights are random.

What to replace before publishing:

- `model.safetensors`, `config.json`, `generation_config.json` and the tokenizer files: a real
  Hugging Face model directory (safetensors only).
- `manifest.json` → `model`: architecture, vocab size and context length of that model. Leave
  `weights_sha256` and `tokenizer_sha256` as placeholders (all zeros): `expertpm pack` fills them
  in from the files (and refuses values that do not match them).
- `description`, `license`, `authors`.
"""

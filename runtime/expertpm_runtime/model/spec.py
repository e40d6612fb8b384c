"""The shape of a base model, read from a Hugging Face `config.json`. No torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from expertpm._canonical import parse_json
from expertpm._errors import FormatError, RuntimeUserError

ARCHITECTURES = {"qwen3": "qwen3", "llama": "llama"}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    architecture: str  # qwen3 | llama
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    tie_word_embeddings: bool
    attention_bias: bool
    mlp_bias: bool
    eos_token_ids: tuple[int, ...]

    @property
    def qk_norm(self) -> bool:
        return self.architecture == "qwen3"

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of every adaptable linear module kind."""
        h, d, i = self.hidden_size, self.head_dim, self.intermediate_size
        return {"q_proj": (h, self.num_heads * d), "k_proj": (h, self.num_kv_heads * d),
                "v_proj": (h, self.num_kv_heads * d), "o_proj": (self.num_heads * d, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @classmethod
    def from_dir(cls, model_dir: Path) -> "ModelSpec":
        path = Path(model_dir) / "config.json"
        if not path.is_file():
            raise RuntimeUserError(f"{model_dir} is not a model directory (no config.json)",
                                   hint="point at a Hugging Face model directory or an installed base")
        cfg = parse_json(path.read_bytes(), where=str(path))
        gen_path = Path(model_dir) / "generation_config.json"
        if gen_path.is_file():  # generate() stops at these too
            gen_eos = parse_json(gen_path.read_bytes(), where=str(gen_path)).get("eos_token_id")
            if gen_eos is not None:
                eos = cfg.get("eos_token_id")
                ids = [*(eos if isinstance(eos, list) else [] if eos is None else [eos]),
                       *(gen_eos if isinstance(gen_eos, list) else [gen_eos])]
                cfg = {**cfg, "eos_token_id": sorted(set(ids))}
        return cls.from_config(cfg, where=str(path))

    @classmethod
    def from_config(cls, cfg: dict, *, where: str = "config.json") -> "ModelSpec":
        arch = ARCHITECTURES.get(str(cfg.get("model_type")))
        if arch is None:
            raise RuntimeUserError(f"model type {cfg.get('model_type')!r} is not supported",
                                   where=where, hint="use a qwen3 or llama base model")
        rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type != "default":
            raise RuntimeUserError(f"rope type {rope_type!r} is not supported", where=where,
                                   hint="use a base model with default rotary embeddings")
        if cfg.get("use_sliding_window"):
            raise RuntimeUserError("sliding-window attention is not supported", where=where)
        if cfg.get("hidden_act", "silu") != "silu":
            raise RuntimeUserError(f"activation {cfg.get('hidden_act')!r} is not supported", where=where)
        eos = cfg.get("eos_token_id")
        eos_ids = tuple(eos) if isinstance(eos, list) else (() if eos is None else (eos,))
        try:
            heads = int(cfg["num_attention_heads"])
            return cls(
                architecture=arch, vocab_size=int(cfg["vocab_size"]), hidden_size=int(cfg["hidden_size"]),
                intermediate_size=int(cfg["intermediate_size"]), num_layers=int(cfg["num_hidden_layers"]),
                num_heads=heads, num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
                head_dim=int(cfg.get("head_dim") or cfg["hidden_size"] // heads),
                rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
                rope_theta=float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))),
                max_position_embeddings=int(cfg.get("max_position_embeddings", 2048)),
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
                attention_bias=bool(cfg.get("attention_bias", False)),
                mlp_bias=bool(cfg.get("mlp_bias", False)), eos_token_ids=eos_ids)
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"model config is missing or has a bad {exc}", where=where) from exc

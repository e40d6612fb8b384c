"""Reading a PEFT adapter's safetensors (memory-mapped, zero copy) into named per-module parts.

Tensor names are exactly PEFT's `save_pretrained` names, e.g.
`base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`. Anything this runtime cannot
apply on the fly (embedding or lm_head adapters, modules_to_save, bias training, per-module
alpha patterns) is refused with a clear error instead of being silently dropped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
from safetensors import safe_open

from expertpm._errors import RuntimeUserError

from ..packages import ExpertPackage
from .spec import ModelSpec

_MODULE = re.compile(
    r"^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\."
    r"(lora_A\.weight|lora_B\.weight|lora_magnitude_vector|ia3_l)$")


@dataclass(slots=True)
class LoraWeights:
    A: torch.Tensor | None = None  # [r, in]
    B: torch.Tensor | None = None  # [out, r]
    magnitude: torch.Tensor | None = None  # DoRA m [out]
    scale: float = 1.0


@dataclass(slots=True)
class AdapterTensors:
    rank: int = 0
    dora: bool = False
    lora: dict[str, dict[int, LoraWeights]] = field(default_factory=dict)  # kind -> layer -> weights
    ia3: dict[tuple[str, str], dict[int, torch.Tensor]] = field(default_factory=dict)  # (kind, in|out)
    prompt: torch.Tensor | None = None  # [virtual tokens, hidden]


def _refuse(pkg: ExpertPackage, what: str, hint: str = "retrain the expert without it") -> RuntimeUserError:
    return RuntimeUserError(f"expert {pkg.label}: {what} is not supported by the runtime", hint=hint)


def read_adapter(pkg: ExpertPackage, spec: ModelSpec) -> AdapterTensors:
    cfg = pkg.peft_config
    if cfg.get("modules_to_save"):
        raise _refuse(pkg, "modules_to_save")
    if cfg.get("bias", "none") != "none" or cfg.get("lora_bias"):
        raise _refuse(pkg, "a trained bias")
    if cfg.get("alpha_pattern"):
        raise _refuse(pkg, "a per-module alpha_pattern")
    if cfg.get("fan_in_fan_out"):
        raise _refuse(pkg, "fan_in_fan_out")
    shapes = spec.linear_shapes()
    out = AdapterTensors(dora=pkg.adapter_type == "dora")
    with safe_open(pkg.weights_file, framework="pt", device="cpu") as f:
        for name in f.keys():
            t = f.get_tensor(name)  # a view of the mapped file
            if name == "prompt_embeddings" and pkg.adapter_type == "prompt":
                if t.ndim != 2 or t.shape[1] != spec.hidden_size:
                    raise RuntimeUserError(f"expert {pkg.label}: prompt_embeddings has shape "
                                           f"{tuple(t.shape)}, expected [n, {spec.hidden_size}]")
                out.prompt = t
                continue
            m = _MODULE.match(name)
            if m is None or int(m.group(1)) >= spec.num_layers or m.group(2) not in shapes:
                raise _refuse(pkg, f"tensor {name}", hint="only adapters on the attention and MLP "
                              "projections of the decoder layers can be applied")
            layer, kind, part = int(m.group(1)), m.group(2), m.group(3)
            fan_in, fan_out = shapes[kind]
            if part == "ia3_l":
                # PEFT stores a feed-forward (input) scale as [1, in], an output scale as [out, 1]
                side = {(1, fan_in): "in", (fan_out, 1): "out"}.get(tuple(t.shape))
                if side is None:
                    raise RuntimeUserError(f"expert {pkg.label}: {name} has shape {tuple(t.shape)}, "
                                           "which does not fit this base model")
                width = fan_in if side == "in" else fan_out
                out.ia3.setdefault((kind, side), {})[layer] = t.reshape(width)
                continue
            lw = out.lora.setdefault(kind, {}).setdefault(layer, LoraWeights())
            if part == "lora_A.weight":
                lw.A = t
            elif part == "lora_B.weight":
                lw.B = t
            else:
                lw.magnitude = t.reshape(-1)
    lora_alpha = float(cfg.get("lora_alpha", 8))
    for kind, layers in out.lora.items():
        fan_in, fan_out = shapes[kind]
        for layer, lw in layers.items():
            where = f"layer {layer} {kind}"
            if lw.A is None or lw.B is None or lw.A.shape[0] != lw.B.shape[1]:
                raise RuntimeUserError(f"expert {pkg.label}: {where} lacks a matching lora_A/lora_B pair")
            if tuple(lw.A.shape[1:]) != (fan_in,) or lw.B.shape[0] != fan_out:
                raise RuntimeUserError(f"expert {pkg.label}: {where} has shapes {tuple(lw.A.shape)}/"
                                       f"{tuple(lw.B.shape)}, which do not fit this base model")
            if out.dora != (lw.magnitude is not None):
                raise RuntimeUserError(f"expert {pkg.label}: {where} DoRA magnitude does not match its type")
            r = lw.A.shape[0]
            lw.scale = lora_alpha / math.sqrt(r) if cfg.get("use_rslora") else lora_alpha / r
            out.rank = max(out.rank, r)
    if pkg.adapter_type == "prompt" and out.prompt is None:
        raise RuntimeUserError(f"expert {pkg.label}: adapter_model.safetensors has no prompt_embeddings")
    if pkg.adapter_type == "prompt" and out.prompt.shape[0] != pkg.num_virtual_tokens:
        raise RuntimeUserError(f"expert {pkg.label}: {out.prompt.shape[0]} prompt embeddings but the "
                               f"manifest says {pkg.num_virtual_tokens} virtual tokens")
    if pkg.adapter_type in ("lora", "dora") and not out.lora or pkg.adapter_type == "ia3" and not out.ia3:
        raise RuntimeUserError(f"expert {pkg.label}: adapter_model.safetensors holds no {pkg.adapter_type} weights")
    return out

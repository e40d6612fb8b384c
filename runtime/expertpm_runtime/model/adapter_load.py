"""The layout of a PEFT adapter's safetensors file, read from its header alone.

Tensor names are exactly PEFT's `save_pretrained` names, e.g.
`base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight`. The header is parsed strictly
(offsets inside the file, sizes that match dtype × shape, no overlaps); nothing of the tensor data
is read here, so an expert can be checked at request time for free. Anything this runtime cannot
apply on the fly (embedding or lm_head adapters, modules_to_save, trained biases, per-module
alpha or rank patterns) is refused with a clear error instead of being silently dropped.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from expertpm._errors import RuntimeUserError

from ..packages import ExpertPackage
from .spec import ModelSpec

_MODULE = re.compile(
    r"^base_model\.model\.model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\."
    r"(lora_A\.weight|lora_B\.weight|lora_magnitude_vector|ia3_l)$")
ELEMENT_SIZE = {"F32": 4, "BF16": 2, "F16": 2}
MAX_HEADER = 16 << 20


@dataclass(frozen=True, slots=True)
class TensorRef:
    """Where one tensor's bytes sit in the file (absolute offsets)."""

    dtype: str  # safetensors dtype: F32 | BF16 | F16
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(slots=True)
class LoraRefs:
    A: TensorRef | None = None  # [r, in]
    B: TensorRef | None = None  # [out, r]
    magnitude: TensorRef | None = None  # DoRA m [out]
    scale: float = 1.0


@dataclass(slots=True)
class AdapterLayout:
    path: Path
    data_start: int  # the data section: [data_start, data_end)
    data_end: int
    dtype: str  # the one dtype of all tensors
    rank: int = 0
    ranks: dict[str, int] = field(default_factory=dict)  # kind -> LoRA rank
    dora: bool = False
    lora: dict[str, dict[int, LoraRefs]] = field(default_factory=dict)  # kind -> layer -> refs
    ia3: dict[tuple[str, str], dict[int, TensorRef]] = field(default_factory=dict)  # (kind, in|out) -> layer
    prompt: TensorRef | None = None  # [virtual tokens, hidden]
    tensors: list[TensorRef] = field(default_factory=list)

    @property
    def data_bytes(self) -> int:
        return self.data_end - self.data_start


def read_header(path: Path, label: str) -> tuple[int, dict[str, TensorRef]]:
    """(start of the data section, {name: TensorRef}) of a safetensors file, checked strictly."""
    def bad(why: str) -> RuntimeUserError:
        return RuntimeUserError(f"expert {label}: {path.name} is not a valid safetensors file ({why})",
                                hint="reinstall the expert")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            (n,) = struct.unpack("<Q", f.read(8))
            if n > min(MAX_HEADER, size - 8):
                raise bad("header size out of range")
            header = json.loads(f.read(n))
    except (OSError, struct.error, ValueError, UnicodeDecodeError) as exc:
        raise bad(str(exc) or type(exc).__name__) from exc
    if not isinstance(header, dict):
        raise bad("header is not an object")
    start, refs, spans = 8 + n, {}, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (a, b) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise bad(f"entry {name}") from exc
        if dtype not in ELEMENT_SIZE:
            raise bad(f"{name} has unsupported dtype {dtype}")
        if not 0 <= a <= b <= size - start or b - a != math.prod(shape) * ELEMENT_SIZE[dtype]:
            raise bad(f"{name} has inconsistent offsets")
        refs[name] = TensorRef(dtype, shape, start + a, start + b)
        spans.append((a, b))
    spans.sort()
    if any(b1 > a2 for (_, b1), (a2, _) in zip(spans, spans[1:])):
        raise bad("tensors overlap")
    return start, refs


def _refuse(pkg: ExpertPackage, what: str, hint: str = "retrain the expert without it") -> RuntimeUserError:
    return RuntimeUserError(f"expert {pkg.label}: {what} is not supported by the runtime", hint=hint)


def read_layout(pkg: ExpertPackage, spec: ModelSpec) -> AdapterLayout:
    cfg = pkg.peft_config
    for key, what in (("modules_to_save", "modules_to_save"), ("alpha_pattern", "a per-module alpha_pattern"),
                      ("rank_pattern", "a per-module rank_pattern"), ("fan_in_fan_out", "fan_in_fan_out"),
                      ("lora_bias", "a trained bias")):
        if cfg.get(key):
            raise _refuse(pkg, what)
    if cfg.get("bias", "none") != "none":
        raise _refuse(pkg, "a trained bias")
    data_start, refs = read_header(pkg.weights_file, pkg.label)
    dtypes = {r.dtype for r in refs.values()}
    if len(dtypes) > 1:
        raise RuntimeUserError(f"expert {pkg.label}: tensors mix dtypes {sorted(dtypes)}", hint="repackage it")
    out = AdapterLayout(path=pkg.weights_file, data_start=data_start,
                        data_end=max((r.end for r in refs.values()), default=data_start),
                        dtype=dtypes.pop() if dtypes else "F32", dora=pkg.adapter_type == "dora",
                        tensors=list(refs.values()))
    shapes = spec.linear_shapes()
    for name, t in refs.items():
        if name == "prompt_embeddings" and pkg.adapter_type == "prompt":
            if len(t.shape) != 2 or t.shape[1] != spec.hidden_size or t.shape[0] != pkg.num_virtual_tokens:
                raise RuntimeUserError(f"expert {pkg.label}: prompt_embeddings has shape {t.shape}, expected "
                                       f"({pkg.num_virtual_tokens}, {spec.hidden_size})")
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
            side = {(1, fan_in): "in", (fan_out, 1): "out"}.get(t.shape)
            if side is None:
                raise RuntimeUserError(f"expert {pkg.label}: {name} has shape {t.shape}, "
                                       "which does not fit this base model")
            out.ia3.setdefault((kind, side), {})[layer] = t
            continue
        refs_ = out.lora.setdefault(kind, {}).setdefault(layer, LoraRefs())
        if part == "lora_A.weight":
            refs_.A = t
        elif part == "lora_B.weight":
            refs_.B = t
        else:
            refs_.magnitude = t
    _check_lora(pkg, out, shapes, float(cfg.get("lora_alpha", 8)), bool(cfg.get("use_rslora")))
    if pkg.adapter_type == "prompt" and out.prompt is None:
        raise RuntimeUserError(f"expert {pkg.label}: adapter_model.safetensors has no prompt_embeddings")
    if pkg.adapter_type in ("lora", "dora") and not out.lora or pkg.adapter_type == "ia3" and not out.ia3:
        raise RuntimeUserError(f"expert {pkg.label}: adapter_model.safetensors holds no {pkg.adapter_type} weights")
    return out


def _check_lora(pkg: ExpertPackage, out: AdapterLayout, shapes: dict, alpha: float, rslora: bool) -> None:
    for kind, layers in out.lora.items():
        fan_in, fan_out = shapes[kind]
        for layer, lw in layers.items():
            where = f"layer {layer} {kind}"
            if lw.A is None or lw.B is None or lw.A.shape[0] != lw.B.shape[-1]:
                raise RuntimeUserError(f"expert {pkg.label}: {where} lacks a matching lora_A/lora_B pair")
            if lw.A.shape[1:] != (fan_in,) or lw.B.shape[0] != fan_out:
                raise RuntimeUserError(f"expert {pkg.label}: {where} has shapes {lw.A.shape}/{lw.B.shape}, "
                                       "which do not fit this base model")
            if out.dora != (lw.magnitude is not None) or lw.magnitude is not None and \
                    lw.magnitude.shape not in ((fan_out,), (1, fan_out)):
                raise RuntimeUserError(f"expert {pkg.label}: {where} DoRA magnitude does not match its type")
            r = lw.A.shape[0]
            if out.ranks.setdefault(kind, r) != r:
                raise _refuse(pkg, f"different LoRA ranks across layers of {kind}")
            lw.scale = alpha / math.sqrt(r) if rslora else alpha / r
            out.rank = max(out.rank, r)

"""Configs of forge's training: which adapter, and how to train it. Plain frozen dataclasses.

`AdapterSpec` mirrors the manifest's `adapter` section; `TrainConfig` holds the optimiser and
loop settings. Both validate on construction so a bad recipe fails before any model is loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from expertpm._errors import UserError

ADAPTER_TYPES = ("lora", "dora", "ia3", "prompt")
DTYPES = ("float32", "bfloat16", "float16")
# Defaults that train the tiny base well; soft prompts and IA3 scales need larger steps than LoRA.
DEFAULT_LR = {"lora": 5e-3, "dora": 5e-3, "ia3": 3e-2, "prompt": 3e-2, "full": 1e-3}


class TrainConfigError(UserError):
    """A training or adapter setting is invalid."""


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    type: str = "lora"
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    feedforward_modules: tuple[str, ...] = ("down_proj",)
    num_virtual_tokens: int = 16

    def __post_init__(self) -> None:
        if self.type not in ADAPTER_TYPES:
            raise TrainConfigError(f"unknown adapter type {self.type!r}", where="adapter.type",
                                   hint=f"use one of {', '.join(ADAPTER_TYPES)}")
        if self.type in ("lora", "dora") and (self.rank < 1 or self.alpha <= 0):
            raise TrainConfigError("rank must be >= 1 and alpha > 0", where="adapter.rank")
        if self.type == "prompt" and self.num_virtual_tokens < 1:
            raise TrainConfigError("num_virtual_tokens must be >= 1", where="adapter.num_virtual_tokens")
        if not 0.0 <= self.dropout < 1.0:
            raise TrainConfigError("dropout must be in [0, 1)", where="adapter.dropout")
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        object.__setattr__(self, "feedforward_modules", tuple(self.feedforward_modules))
        if self.type == "ia3":
            missing = set(self.feedforward_modules) - set(self.target_modules)
            if missing:
                # PEFT requires feed-forward modules to be a subset of the targets: add them.
                object.__setattr__(self, "target_modules", self.target_modules + tuple(sorted(missing)))

    def manifest(self, dtype: str = "float32") -> dict[str, Any]:
        """The manifest's `adapter` section for this spec."""
        out: dict[str, Any] = {"type": self.type, "dtype": dtype}
        if self.type in ("lora", "dora"):
            out.update(rank=self.rank, alpha=self.alpha, target_modules=list(self.target_modules))
        elif self.type == "ia3":
            out.update(target_modules=list(self.target_modules),
                       feedforward_modules=list(self.feedforward_modules))
        else:
            out.update(num_virtual_tokens=self.num_virtual_tokens)
        return out


@dataclass(frozen=True, slots=True)
class TrainConfig:
    learning_rate: float | None = None  # None: a default suited to the adapter type
    epochs: float = 3.0
    max_steps: int | None = None  # optimiser steps; overrides `epochs` when set
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 256  # prompt + completion tokens (virtual prompt tokens come on top)
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 50  # optimiser steps between resumable checkpoints; 0 = never
    dtype: str = "float32"
    dpo_beta: float = 0.1

    def __post_init__(self) -> None:
        checks = [
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate", "must be > 0"),
            (self.epochs > 0, "epochs", "must be > 0"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps", "must be >= 1"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.grad_accum >= 1, "grad_accum", "must be >= 1"),
            (self.max_length >= 8, "max_length", "must be >= 8"),
            (self.warmup_steps >= 0, "warmup_steps", "must be >= 0"),
            (self.checkpoint_every >= 0, "checkpoint_every", "must be >= 0"),
            (self.dtype in DTYPES, "dtype", f"must be one of {', '.join(DTYPES)}"),
            (self.dpo_beta > 0, "dpo_beta", "must be > 0"),
        ]
        for ok, name, problem in checks:
            if not ok:
                raise TrainConfigError(f"{name} {problem} (got {getattr(self, name)!r})",
                                       where=f"train.{name}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lr_for(self, method: str) -> float:
        """The learning rate to use for an adapter type (or "full" for full-parameter training)."""
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[method]

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "train") -> "TrainConfig":
        return _from_dict(cls, data, where)


def adapter_from_dict(data: dict[str, Any], *, where: str = "adapter") -> AdapterSpec:
    return _from_dict(AdapterSpec, data, where)


def _from_dict(cls, data: dict[str, Any], where: str):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TrainConfigError(f"unknown setting(s) {', '.join(unknown)}", where=where,
                               hint=f"known settings: {', '.join(sorted(known))}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise TrainConfigError(str(exc), where=where) from exc

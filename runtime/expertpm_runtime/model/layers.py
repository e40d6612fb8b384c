"""The building blocks of the decoder: step context, RMSNorm, rotary embedding, adapted linear."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .matmul import base_linear, prepack
from .step_adapters import StepAdapters


@dataclass(slots=True)
class StepContext:
    """Everything one forward pass needs besides the weights (passed down explicitly).

    Tokens are packed: T new tokens of B rows, row by row. Attention reads each row's whole
    context from the paged cache through `kv_index` (B rows of Lk cache slots, padded, masked by
    `attn_mask`).
    """

    input_ids: torch.Tensor  # [T]; negative = virtual (prompt-tuning) token
    positions: torch.Tensor  # [T]
    slot_mapping: torch.Tensor  # [T] cache slot written by each new token
    kv_index: torch.Tensor  # [kv_heads·B·Lk] rows of a layer's cache viewed as [kv_heads·slots, D]
    kv_shape: tuple[int, int]  # B, Lk
    attn_mask: torch.Tensor  # [B, 1, Lq, Lk], additive 0 / -inf (float32 when Lq = 1, else model dtype)
    q_index: torch.Tensor | None  # [T] place of each token in the padded [B·Lq] queries; None: Lq = 1
    q_len: int
    last_index: torch.Tensor  # [B] index of each row's last new token
    adapters: StepAdapters | None = None
    virtual_embeds: torch.Tensor | None = None  # [n virtual tokens among input_ids, hidden]
    rope: tuple[torch.Tensor, torch.Tensor] | None = None  # cos, sin [T, 1, D]: set once per forward


class RMSNorm(nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class Rotary(nn.Module):
    """Default (unscaled) rotary embedding with the rotate-half layout of transformers."""

    def __init__(self, head_dim: int, theta: float, max_positions: int, device: torch.device) -> None:
        super().__init__()
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim))
        freqs = torch.outer(torch.arange(max_positions, device=device).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def tables(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin [T, 1, D] for the step's positions (computed once, used by every layer)."""
        return (self.cos.index_select(0, positions).unsqueeze(1).to(dtype),
                self.sin.index_select(0, positions).unsqueeze(1).to(dtype))

    @staticmethod
    def apply(q: torch.Tensor, k: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        cos, sin = rope
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class AdaptedLinear(nn.Module):
    """A base linear layer plus whatever experts the step applies to this module kind."""

    def __init__(self, kind: str, layer: int, weight: torch.Tensor, bias: torch.Tensor | None,
                 pack: bool = True) -> None:
        super().__init__()
        self.kind, self.layer = kind, layer
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.bias = nn.Parameter(bias, requires_grad=False) if bias is not None else None
        self.packed = prepack(weight) if pack else None

    def forward(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        step = ctx.adapters.kinds.get(self.kind) if ctx.adapters is not None else None
        if step is None:
            return base_linear(x, self.weight, self.bias, self.packed)
        if step.lora_only:
            return step.add_lora(self.layer, x, base_linear(x, self.weight, self.bias, self.packed))
        return step.apply(self.layer, x, self.weight, self.bias)


class FusedLinear(nn.Module):
    """Linear layers that read the same input (q/k/v, gate/up) as one matmul over their
    concatenated weights: fewer, larger matmuls per layer. Each part stays an `AdaptedLinear`
    whose weight is a view of the concatenation (what the adapter pool reads for DoRA norms).

    LoRA deltas are added to the fused output in place (see `step_adapters.GroupStep`); a step
    with DoRA or IA³ on any part runs the parts one by one (their scales act on the base output
    or input).
    """

    def __init__(self, kinds: tuple[str, ...], layer: int, weights: list[torch.Tensor],
                 biases: list[torch.Tensor | None]) -> None:
        super().__init__()
        fused = torch.cat(weights)
        self.packed = prepack(fused)
        # with a prepacked copy the parts keep their own (memory-mapped) weights; otherwise they
        # are views of the concatenation
        self.weight = nn.Parameter(fused, requires_grad=False) if self.packed is None else None
        self.bias = None
        if any(b is not None for b in biases):
            self.bias = nn.Parameter(torch.cat([b if b is not None else w.new_zeros(w.shape[0])
                                                for w, b in zip(weights, biases)]), requires_grad=False)
        self.kinds, self.layer, self.sizes = kinds, layer, [w.shape[0] for w in weights]
        self.parts = nn.ModuleList()
        start = 0
        for kind, w, size in zip(kinds, weights, self.sizes):
            bias = self.bias[start:start + size] if self.bias is not None else None
            weight = w if self.weight is None else self.weight[start:start + size]
            self.parts.append(AdaptedLinear(kind, layer, weight, bias, pack=False))
            start += size

    def forward(self, x: torch.Tensor, ctx: StepContext) -> list[torch.Tensor]:
        plan = ctx.adapters.fused(self.kinds, self.sizes) if ctx.adapters is not None else None
        if plan is not None and plan.separate:
            return [p(x, ctx) for p in self.parts]
        y = base_linear(x, self.weight, self.bias, self.packed)
        outs = list(y.split(self.sizes, dim=-1))
        if plan is not None and not (plan.group is not None and plan.group.add(self.layer, x, y)):
            for step, part, out in zip(plan.steps, self.parts, outs):
                if step is not None:
                    step.add_lora(self.layer, x, out)  # in place, on the part's columns of y
        return outs

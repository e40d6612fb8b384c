"""Applying a different expert set to every row of one batch, in one pass per module.

For one step, the experts active anywhere in the batch are gathered from the pool and each row
gets a weight αᵢ per active expert (0 when the row does not use it). For a linear module with
base weight W, bias b and input x of a token in row r:

    y = out_scale[r] ⊙ (base_scale[r] ⊙ W (in_scale[r] ⊙ x) + b) + Σᵢ α[r,i] (sᵢ gᵢ ⊙ Bᵢ) Aᵢ x

    base_scale = 1 + Σᵢ α[r,i] (gᵢ − 1)         DoRA (gᵢ = mᵢ / ‖W + sᵢBᵢAᵢ‖, precomputed at load)
    out_scale  = Πᵢ (1 + α[r,i] (lᵢ − 1))       IA³ on outputs (PEFT multiplies active IA³ scales)
    in_scale   = Πᵢ (1 + α[r,i] (lᵢ − 1))       IA³ on feed-forward inputs

The LoRA sum is two dense matmuls: x · [A₁;…;A_K]ᵀ → h, h ⊙ (α per rank column), h · [B₁ᵀ;…;B_Kᵀ].
With one expert at α = 1 every term reduces to PEFT's own formula for that adapter type; nothing
is ever merged into W. The gathered [A;…] and [Bᵀ;…] are cached while the active set is stable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .adapter_pool import AdapterPool

_MAX_GATHERED = 512


class KindStep:
    """One module kind's adapters for one step; `apply` runs the formula above."""

    def __init__(self, pool: AdapterPool, kind: str, active: list[int], weights: torch.Tensor,
                 token_row: torch.Tensor | None) -> None:
        kp = pool.kinds[kind]
        self.pool, self.kind, self.kp, self.token_row = pool, kind, kp, token_row
        dev = weights.device

        def cols(flags) -> tuple[torch.Tensor | None, torch.Tensor | None]:
            ks = [k for k, s in enumerate(active) if flags[s]]
            if not ks:
                return None, None
            return (torch.tensor([active[k] for k in ks], device=dev),
                    weights[:, torch.tensor(ks, device=dev)])

        lora = [(k, s, kp.lora_rank[s]) for k, s in enumerate(active) if kp.lora_rank[s]]
        self.lora_key = tuple((s, r) for _, s, r in lora)
        if lora:
            R = pool.max_rank
            self.lora_idx = torch.cat([torch.arange(s * R, s * R + r) for _, s, r in lora]).to(dev)
            col_k = torch.cat([torch.full((r,), k) for k, _, r in lora]).to(dev)
            self.lora_w = self._per_token(weights[:, col_k])  # [T, Σ ranks]
        self.dora_slots, self.dora_w = cols(kp.has_dora)
        self.out_slots, self.out_w = cols(kp.has_out)
        self.in_slots, self.in_w = cols(kp.has_in)

    def _per_token(self, rows: torch.Tensor) -> torch.Tensor:
        return rows if self.token_row is None else rows.index_select(0, self.token_row)

    def _gathered(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        pool = self.pool
        key = (self.kind, layer, self.lora_key, pool.generation)
        hit = pool.gathered.get(key)
        if hit is None:
            kp = self.kp
            a = kp.A[layer].view(-1, kp.in_features).index_select(0, self.lora_idx)
            bt = kp.Bt[layer].view(-1, kp.out_features).index_select(0, self.lora_idx)
            if len(pool.gathered) >= _MAX_GATHERED:
                pool.gathered.clear()
            hit = pool.gathered[key] = (a, bt)
        return hit

    @staticmethod
    def _product(w: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        # w [rows, K], deltas [K, width] -> Πₖ (1 + w[:, k] · deltas[k])  [rows, width]
        return (1 + w.unsqueeze(-1) * deltas.unsqueeze(0)).prod(dim=1)

    def apply(self, layer: int, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        kp = self.kp
        x_base = x
        if self.in_slots is not None:
            x_base = x * self._per_token(self._product(self.in_w, kp.in_delta[layer, self.in_slots]))
        y = F.linear(x_base, weight)
        if self.dora_slots is not None:
            y = y * self._per_token(1 + self.dora_w @ kp.base_delta[layer, self.dora_slots])
        if bias is not None:
            y = y + bias
        if self.out_slots is not None:
            y = y * self._per_token(self._product(self.out_w, kp.out_delta[layer, self.out_slots]))
        if self.lora_key:
            a, bt = self._gathered(layer)
            y = torch.addmm(y, F.linear(x, a) * self.lora_w, bt)
        return y


class StepAdapters:
    """All module kinds' adapters for one step (built once, used by every layer)."""

    def __init__(self, pool: AdapterPool, rows: list[list[tuple[int, float]]],
                 token_row: torch.Tensor | None) -> None:
        active = sorted({slot for row in rows for slot, _ in row})
        col = {s: k for k, s in enumerate(active)}
        w = torch.zeros(len(rows), len(active))
        for r, row in enumerate(rows):
            for slot, alpha in row:
                w[r, col[slot]] += alpha
        weights = w.to(device=pool.device, dtype=pool.dtype)
        self.kinds: dict[str, KindStep] = {}
        for kind, kp in pool.kinds.items():
            if any(kp.lora_rank[s] or kp.has_dora[s] or kp.has_out[s] or kp.has_in[s] for s in active):
                self.kinds[kind] = KindStep(pool, kind, active, weights, token_row)

    @classmethod
    def build(cls, pool: AdapterPool, rows: list[list[tuple[int, float]]],
              token_row: torch.Tensor | None) -> "StepAdapters | None":
        if not any(rows):
            return None
        step = cls(pool, rows, token_row)
        return step if step.kinds else None

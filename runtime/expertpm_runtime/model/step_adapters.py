"""Applying a different expert set to every row of one batch, in one pass per module.

For one step, the experts active anywhere in the batch are gathered from the pool and each row
gets a weight αᵢ per active expert (0 when the row does not use it). For a linear module with
base weight W, bias b and input x of a token in row r:

    y = out_scale[r] ⊙ (base_scale[r] ⊙ W (in_scale[r] ⊙ x) + b) + Σᵢ α[r,i] sᵢ (gᵢ ⊙ Bᵢ) Aᵢ x

    base_scale = 1 + Σᵢ α[r,i] (gᵢ − 1)         DoRA (gᵢ = mᵢ / ‖W + sᵢBᵢAᵢ‖, computed at load)
    out_scale  = Πᵢ (1 + α[r,i] (lᵢ − 1))       IA³ on outputs (PEFT multiplies active IA³ scales)
    in_scale   = Πᵢ (1 + α[r,i] (lᵢ − 1))       IA³ on feed-forward inputs

The LoRA sum is two dense matmuls over the concatenated experts: h = x · [A₁;…;A_K]ᵀ, then
h ⊙ (α·s per rank column) · [B₁ … B_K]ᵀ. With one expert at α = 1 every term reduces to PEFT's
formula for that adapter type; nothing is ever merged into W. With a single active expert the
slot's own tensors are used (no copy); otherwise the concatenation is cached while the batch's
expert set stays the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .adapter_pool import AdapterPool
from .matmul import base_linear, prepack

_MAX_COMBINATIONS = 8  # memory: each holds a copy of its experts' weights


class KindStep:
    """One module kind's adapters for one step; `apply` runs the formula above."""

    def __init__(self, pool: AdapterPool, kind: str, active: list[int], weights: torch.Tensor,
                 token_row: torch.Tensor | None) -> None:
        self.pool, self.kind, self.token_row = pool, kind, token_row
        slots = pool.slots
        dev = weights.device
        lora = [(k, s) for k, s in enumerate(active) if kind in slots[s].ranks]
        self.lora_slots = tuple(s for _, s in lora)
        if lora:
            col_k = torch.cat([torch.full((slots[s].ranks[kind],), k) for k, s in lora]).to(dev)
            col_s = torch.cat([torch.full((slots[s].ranks[kind],), slots[s].scales[kind]) for _, s in lora])
            self.lora_w = self._per_token(weights[:, col_k] * col_s.to(dev, weights.dtype))  # [T, Σ ranks]

        def select(pred) -> tuple[tuple[int, ...], torch.Tensor | None]:
            ks = [k for k, s in enumerate(active) if pred(slots[s])]
            return tuple(active[k] for k in ks), (weights[:, torch.tensor(ks, device=dev)] if ks else None)

        self.dora_slots, self.dora_w = select(lambda s: s.dora and kind in s.ranks)
        self.out_slots, self.out_w = select(lambda s: (kind, "out") in s.ia3_sides)
        self.in_slots, self.in_w = select(lambda s: (kind, "in") in s.ia3_sides)
        self.mats: dict[int, tuple | bool] = {}  # layer -> this step's LoRA matmuls (looked up once)
        self.lora_only = not (self.dora_slots or self.out_slots or self.in_slots)

    def _per_token(self, rows: torch.Tensor) -> torch.Tensor:
        return rows if self.token_row is None else rows.index_select(0, self.token_row)

    def _cached(self, what: str, layer: int, slots: tuple[int, ...], build):
        """Gathered tensors of one expert combination, kept for the few most recent combinations."""
        gathered = self.pool.gathered
        combo = gathered.pop(slots, None)
        if combo is None:
            combo = {}
            while len(gathered) >= _MAX_COMBINATIONS:
                gathered.pop(next(iter(gathered)))
        gathered[slots] = combo  # most recent last
        key = (what, self.kind, layer)
        hit = combo.get(key)
        if hit is None:
            hit = combo[key] = build()
        return hit

    def _lora(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        slots = self.pool.slots
        if len(self.lora_slots) == 1:
            part = slots[self.lora_slots[0]].lora(self.kind, layer)
            return None if part is None else (part.A, part.B)

        def build():
            parts = [self._part(s, layer) for s in self.lora_slots]
            return torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts], dim=1)
        return self._cached("lora", layer, self.lora_slots, build)

    def _part(self, slot: int, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.pool.slots[slot]
        part = s.lora(self.kind, layer)
        if part is not None:
            return part.A, part.B
        r, (fan_in, fan_out) = s.ranks[self.kind], self.pool.spec.linear_shapes()[self.kind]
        return self.pool.zeros(r, fan_in), self.pool.zeros(fan_out, r)  # layer not adapted

    def _vectors(self, what: str, layer: int, slots: tuple[int, ...], width: int) -> torch.Tensor:
        def build():
            rows = []
            for slot in slots:
                s = self.pool.slots[slot]
                if what == "dora":
                    part = s.lora(self.kind, layer)
                    v = part.base_delta if part is not None else None
                else:
                    v = s.ia3(self.kind, what, layer)
                    v = v - 1 if v is not None else None
                rows.append(v if v is not None else self.pool.zeros(width))
            return torch.stack(rows)  # [K, width]: g − 1 or l − 1
        return self._cached(what, layer, slots, build)

    def _product(self, w: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        # w [rows, K], deltas [K, width] -> Πₖ (1 + w[:, k] · deltas[k])  [tokens, width]
        if w.shape[1] == 1:
            return self._per_token(1 + w * deltas)
        return self._per_token((1 + w.unsqueeze(-1) * deltas.unsqueeze(0)).prod(dim=1))

    def apply(self, layer: int, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        fan_out, fan_in = weight.shape
        x_base = x
        if self.in_slots:
            x_base = x * self._product(self.in_w, self._vectors("in", layer, self.in_slots, fan_in))
        y = F.linear(x_base, weight)
        if self.dora_slots:
            y = y * self._per_token(1 + self.dora_w @ self._vectors("dora", layer, self.dora_slots, fan_out))
        if bias is not None:
            y = y + bias
        if self.out_slots:
            y = y * self._product(self.out_w, self._vectors("out", layer, self.out_slots, fan_out))
        return self.add_lora(layer, x, y)

    def add_lora(self, layer: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """y + Σᵢ α sᵢ Bᵢ Aᵢ x (y itself when no active expert adapts this layer)."""
        if not self.lora_slots:
            return y
        mats = self.mats.get(layer)
        if mats is None:
            mats = self.mats[layer] = self._cached("lora-mats", layer, self.lora_slots,
                                                   lambda: _matmuls(self._lora(layer)))
        if not mats:
            return y
        a, b = mats
        return _add_b(y, _mul_a(x, a) * self.lora_w, b)


def _matmuls(ab: tuple[torch.Tensor, torch.Tensor] | None) -> tuple | bool:
    """(A, its prepacked copy or None), (B, same) of one combination's LoRA (False: none)."""
    return False if ab is None else ((ab[0], prepack(ab[0])), (ab[1], prepack(ab[1])))


def _mul_a(x: torch.Tensor, a: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    return base_linear(x, a[0], None, a[1])


def _add_b(y: torch.Tensor, h: torch.Tensor, b: tuple[torch.Tensor, torch.Tensor | None]) -> torch.Tensor:
    if b[1] is None:
        return torch.addmm(y, h, b[0].t())
    return y + base_linear(h, b[0], None, b[1])


def _group_matmuls(steps: list[KindStep], layer: int) -> tuple | bool:
    """[A_q; A_k; …] and each part's B (as `_matmuls`), and the parts' ranks (False: none)."""
    parts = [s._lora(layer) for s in steps]
    if any(p is None for p in parts):
        return False
    a = torch.cat([a for a, _ in parts])
    return (a, prepack(a)), [(b, prepack(b)) for _, b in parts], [p[0].shape[0] for p in parts]


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
        self.group_w: dict[tuple[str, ...], torch.Tensor] = {}
        self.group_mats: dict[tuple, tuple | bool] = {}
        for kind in pool.spec.linear_shapes():
            if any(kind in pool.slots[s].ranks or (kind, "in") in pool.slots[s].ia3_sides
                   or (kind, "out") in pool.slots[s].ia3_sides for s in active):
                self.kinds[kind] = KindStep(pool, kind, active, weights, token_row)

    def add_group_lora(self, kinds: tuple[str, ...], layer: int, x: torch.Tensor,
                       ys: list[torch.Tensor]) -> list[torch.Tensor] | None:
        """Each part's output ys[k] plus its LoRA delta, with one x·Aᵀ matmul for all parts.

        None when that does not apply: a part without LoRA, with DoRA/IA³, or with other experts.
        """
        mats = self.group_mats.get((kinds, layer))
        if mats is None:
            steps = [self.kinds.get(k) for k in kinds]
            first = steps[0]
            mats = False
            if first is not None and all(s is not None and s.lora_only and s.lora_slots == first.lora_slots
                                         for s in steps):
                mats = first._cached("group", layer, first.lora_slots, lambda: _group_matmuls(steps, layer))
                if mats and kinds not in self.group_w:
                    self.group_w[kinds] = torch.cat([s.lora_w for s in steps], dim=1)
            self.group_mats[kinds, layer] = mats
        if not mats:
            return None
        w = self.group_w[kinds]
        a, bs, ranks = mats
        hs = (_mul_a(x, a) * w).split(ranks, dim=-1)
        return [_add_b(y, h, b) for y, h, b in zip(ys, hs, bs)]

    @classmethod
    def build(cls, pool: AdapterPool, rows: list[list[tuple[int, float]]],
              token_row: torch.Tensor | None) -> "StepAdapters | None":
        if not any(rows):
            return None
        step = cls(pool, rows, token_row)
        return step if step.kinds else None

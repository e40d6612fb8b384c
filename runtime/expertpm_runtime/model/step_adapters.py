"""Applying a different expert set to every row of one batch, in one pass per module.

For one step, the experts active anywhere in the batch are gathered from the pool and each row
gets a weight αᵢ per active expert (0 when the row does not use it). For a linear module with
base weight W, bias b and input x of a token in row r:

    y = out_scale[r] ⊙ (base_scale[r] ⊙ W (in_scale[r] ⊙ x) + b) + Σᵢ α[r,i] sᵢ (gᵢ ⊙ Bᵢ) Aᵢ x

    base_scale = 1 + Σᵢ α[r,i] (gᵢ − 1)         DoRA (gᵢ = mᵢ / ‖W + sᵢBᵢAᵢ‖, computed at load)
    out_scale  = Πᵢ (1 + α[r,i] (lᵢ − 1))       IA³ on outputs (PEFT multiplies active IA³ scales)
    in_scale   = Πᵢ (1 + α[r,i] (lᵢ − 1))       IA³ on feed-forward inputs

The LoRA sum runs per expert on that expert's tokens only (segmented, not masked): the tokens
are gathered into one segment per expert (padded to the longest segment with weight 0), two
batched matmuls over the experts' stacked weights give every segment its delta,
h = (x_seg · Aᵢᵀ) α sᵢ and d = h · Bᵢᵀ, and one `index_add_` adds the deltas to the tokens'
outputs. Each expert's weights are read once per step, and a row never pays for the ranks of
another row's experts (a masked matmul over the concatenated experts computes all of them for
every row: with 4 experts, 4x the LoRA FLOPs, which decode-sized CPU matmuls feel). The parts
of a fused module (q/k/v, gate/up) share one x·Aᵀ and one B batched matmul when they use the
same experts. With one expert at α = 1 every term reduces to PEFT's formula for that adapter
type; nothing is ever merged into W. Stacked copies of the experts' weights are cached while
the batch's expert set stays the same (one expert on one module uses the slot's own tensors).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .adapter_pool import AdapterPool

_MAX_COMBINATIONS = 8  # memory: each holds a copy of its experts' weights


def _zeros(pool: AdapterPool, *shape: int) -> torch.Tensor:
    return torch.zeros(shape, device=pool.device, dtype=pool.dtype)


class Segments:
    """The tokens each expert applies to: `index` [E·m] into the step's tokens (padding repeats
    token 0) and `weight` α·s [E, m, 1] (0 on padding). `scalar`: the one weight of every entry
    when there is no padding and all weights are equal (the usual case: each request names one
    expert at α = 1), applied as the `alpha` of the final add instead of a multiplication.
    `blocked`: the segments are the tokens themselves, in order (expert e has tokens
    e·m … e·m + m − 1: one expert for the whole batch, or the model runner's rows grouped by
    expert with as many rows each), so gathering and scattering are views."""

    def __init__(self, w_tok: torch.Tensor, device: torch.device, dtype: torch.dtype) -> None:
        # w_tok [T, E] float64 on the CPU: α·s of each expert on each token (0: not applied)
        T, E = w_tok.shape
        picks = [w_tok[:, e].nonzero().flatten() for e in range(E)]
        m = max(1, *(len(p) for p in picks))
        index = torch.zeros(E, m, dtype=torch.long)
        weight = torch.zeros(E, m, 1, dtype=torch.float64)
        for e, p in enumerate(picks):
            index[e, :len(p)] = p
            weight[e, :len(p), 0] = w_tok[p, e]
        self.E, self.m = E, m
        self.blocked = E * m == T and torch.equal(index.flatten(), torch.arange(T))
        values = weight.unique()
        self.scalar = float(values[0]) if len(values) == 1 and values[0] != 0 else None
        self.index = index.flatten().to(device)
        self.weight = weight.to(device=device, dtype=dtype)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """x [T, in] -> [E, m, in]."""
        if self.blocked:
            return x.view(self.E, self.m, x.shape[-1])
        return x.index_select(0, self.index).view(self.E, self.m, x.shape[-1])


class KindStep:
    """One module kind's adapters for one step; `apply` runs the formula above."""

    def __init__(self, pool: AdapterPool, kind: str, active: list[int], weights: torch.Tensor,
                 w_tok: torch.Tensor, token_row: torch.Tensor | None) -> None:
        self.pool, self.kind, self.token_row = pool, kind, token_row
        slots = pool.slots
        dev = weights.device
        lora = [(k, s) for k, s in enumerate(active) if kind in slots[s].ranks]
        self.lora_slots = tuple(s for _, s in lora)
        self.segments: Segments | None = None
        if lora:
            scales = torch.tensor([slots[s].scales[kind] for _, s in lora], dtype=torch.float64)
            self.segments = Segments(w_tok[:, [k for k, _ in lora]] * scales, dev, pool.dtype)

        def select(pred) -> tuple[tuple[int, ...], torch.Tensor | None]:
            ks = [k for k, s in enumerate(active) if pred(slots[s])]
            return tuple(active[k] for k in ks), (weights[:, torch.tensor(ks, device=dev)] if ks else None)

        self.dora_slots, self.dora_w = select(lambda s: s.dora and kind in s.ranks)
        self.out_slots, self.out_w = select(lambda s: (kind, "out") in s.ia3_sides)
        self.in_slots, self.in_w = select(lambda s: (kind, "in") in s.ia3_sides)
        self.mats: dict[int, tuple | bool] = {}  # layer -> this step's stacked LoRA weights (looked up once)
        self.lora_only = not (self.dora_slots or self.out_slots or self.in_slots)

    def _per_token(self, rows: torch.Tensor) -> torch.Tensor:
        return rows if self.token_row is None else rows.index_select(0, self.token_row)

    def _cached(self, what, layer: int, slots: tuple[int, ...], build):
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

    def parts(self, layer: int) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """(A [r, in], B [out, r]) of each LoRA expert at `layer` (None: that layer not adapted)."""
        out = []
        for slot in self.lora_slots:
            part = self.pool.slots[slot].lora(self.kind, layer)
            out.append(None if part is None else (part.A, part.B))
        return out

    def _stacked(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | bool:
        """Aᵀ [E, in, R] and Bᵀ [E, R, out] of the experts (ranks zero-padded to R); False: none."""
        parts = self.parts(layer)
        if all(p is None for p in parts):
            return False
        if len(parts) == 1:  # the slot's own tensors, transposed views: no copy
            a, b = parts[0]
            return a.t().unsqueeze(0), b.t().unsqueeze(0)
        fan_in, fan_out = self.pool.spec.linear_shapes()[self.kind]
        rank = max(p[0].shape[0] for p in parts if p is not None)
        at = _zeros(self.pool, len(parts), fan_in, rank)
        bt = _zeros(self.pool, len(parts), rank, fan_out)
        for e, p in enumerate(parts):
            if p is not None:
                at[e, :, :p[0].shape[0]] = p[0].t()
                bt[e, :p[1].shape[1]] = p[1].t()
        return at, bt

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
        """y += Σᵢ α sᵢ Bᵢ Aᵢ x, in place (y itself when no active expert adapts this layer)."""
        if not self.lora_slots:
            return y
        mats = self.mats.get(layer)
        if mats is None:
            mats = self.mats[layer] = self._cached("lora", layer, self.lora_slots, lambda: self._stacked(layer))
        if not mats:
            return y
        at, bt = mats
        seg = self.segments
        h = torch.bmm(seg.gather(x), at)  # [E, m, R]
        alpha = seg.scalar
        if alpha is None:
            h, alpha = h * seg.weight, 1.0
        if seg.blocked:
            y.view(seg.E, seg.m, -1).baddbmm_(h, bt, alpha=alpha)
        else:
            y.index_add_(0, seg.index, torch.bmm(h, bt).view(-1, bt.shape[-1]), alpha=alpha)
        return y


class GroupStep:
    """The LoRA of the parts of a fused module (q/k/v, gate/up) that use the same experts.

    Aᵀ of all parts side by side [E, in, P·R]: one x·Aᵀ. The parts' outputs are cut into chunks
    of one width c (the gcd of the parts' widths), so every Bᵀ chunk is [R, c] and one batched
    matmul over (expert, chunk) computes the delta of the whole fused output, in its column order.
    """

    def __init__(self, steps: list[KindStep], sizes: list[int]) -> None:
        self.steps = steps
        self.segments = steps[0].segments
        self.chunk = math.gcd(*sizes)
        chunk_part = [p for p, size in enumerate(sizes) for _ in range(size // self.chunk)]
        dev = steps[0].pool.device
        self.chunk_part = torch.tensor(chunk_part, device=dev)
        self.num_chunks = len(chunk_part)
        self.weight = torch.stack([s.segments.weight for s in steps], dim=2)  # [E, m, P, 1]
        scalars = {s.segments.scalar for s in steps}
        self.scalar = scalars.pop() if len(scalars) == 1 else None
        self.mats: dict[int, tuple | bool] = {}

    def _stacked(self, layer: int) -> tuple[torch.Tensor, torch.Tensor] | bool:
        parts = [s.parts(layer) for s in self.steps]  # [part][expert]
        if any(all(p is None for p in per_part) for per_part in parts):
            return False  # some part has no LoRA at this layer: parts one by one
        E, P, c = len(parts[0]), len(parts), self.chunk
        pool = self.steps[0].pool
        rank = max(p[0].shape[0] for per_part in parts for p in per_part if p is not None)
        fan_in = next(p for p in parts[0] if p is not None)[0].shape[1]
        C = self.num_chunks
        at = _zeros(pool, E, fan_in, P * rank)
        bt = _zeros(pool, E, C, rank, c)
        chunk_part = self.chunk_part.tolist()
        for k, per_part in enumerate(parts):
            first = chunk_part.index(k)
            for e, p in enumerate(per_part):
                if p is None:
                    continue
                a, b = p
                r = a.shape[0]
                at[e, :, k * rank:k * rank + r] = a.t()
                n = b.shape[0] // c
                bt[e, first:first + n, :r] = b.view(n, c, r).transpose(1, 2)
        return at, bt.view(E * C, rank, c)

    def add(self, layer: int, x: torch.Tensor, y: torch.Tensor) -> bool:
        """y (the fused output [T, Σ widths]) += every part's LoRA delta, in place; False when
        this layer cannot take the fused form (a part without LoRA there)."""
        mats = self.mats.get(layer)
        if mats is None:
            first = self.steps[0]
            mats = self.mats[layer] = first._cached(("group", len(self.steps)), layer, first.lora_slots,
                                                    lambda: self._stacked(layer))
        if not mats:
            return False
        at, bt = mats
        seg, rank, c = self.segments, bt.shape[1], self.chunk
        E, m, C = seg.E, seg.m, self.num_chunks
        h = torch.bmm(seg.gather(x), at).view(E, m, -1, rank)  # [E, m, P, R]
        alpha = self.scalar
        if alpha is None:
            h, alpha = h * self.weight, 1.0
        # [E, C, m, R]: each chunk's rows of h (one copy, chunk selection included)
        h = h.transpose(1, 2).index_select(1, self.chunk_part)
        d = torch.bmm(h.view(E * C, m, rank), bt).view(E, C, m, c).transpose(1, 2)  # [E, m, C, c]
        if seg.blocked:
            y.view(E, m, C, c).add_(d, alpha=alpha)
        else:
            y.index_add_(0, seg.index, d.reshape(E * m, C * c), alpha=alpha)
        return True


@dataclass(slots=True)
class FusedPlan:
    """A fused module's parts for one step: `separate` (DoRA/IA³ on a part: each part runs alone
    with its own base matmul), else one base matmul plus `group`'s LoRA or each part's."""

    separate: bool
    group: GroupStep | None
    steps: list[KindStep | None]


class StepAdapters:
    """All module kinds' adapters for one step (built once, used by every layer)."""

    def __init__(self, pool: AdapterPool, rows: list[list[tuple[int, float]]],
                 token_row: torch.Tensor | None) -> None:
        """token_row: [T] (CPU) the row of each token when rows have several tokens; None: one each."""
        active = list(dict.fromkeys(slot for row in rows for slot, _ in row))  # in row order: blocks
        col = {s: k for k, s in enumerate(active)}
        w = torch.zeros(len(rows), len(active), dtype=torch.float64)
        for r, row in enumerate(rows):
            for slot, alpha in row:
                w[r, col[slot]] += alpha
        weights = w.to(device=pool.device, dtype=pool.dtype)
        w_tok = w if token_row is None else w.index_select(0, token_row)
        token_row = None if token_row is None else token_row.to(pool.device)
        self.kinds: dict[str, KindStep] = {}
        self.plans: dict[tuple[str, ...], FusedPlan | None] = {}
        for kind in pool.spec.linear_shapes():
            if any(kind in pool.slots[s].ranks or (kind, "in") in pool.slots[s].ia3_sides
                   or (kind, "out") in pool.slots[s].ia3_sides for s in active):
                self.kinds[kind] = KindStep(pool, kind, active, weights, w_tok, token_row)

    def fused(self, kinds: tuple[str, ...], sizes: list[int]) -> "FusedPlan | None":
        """How the parts of a fused module take this step's adapters (None: no adapter on any)."""
        plan = self.plans.get(kinds, False)
        if plan is False:
            steps = [self.kinds.get(k) for k in kinds]
            plan = None
            if any(s is not None for s in steps):
                separate = not all(s is None or s.lora_only for s in steps)
                first = steps[0]
                group = None
                # one x·Aᵀ and one B matmul for all parts when they share their experts and tokens
                if not separate and all(s is not None and s.lora_slots and s.lora_slots == first.lora_slots
                                        and s.segments.m == first.segments.m
                                        and torch.equal(s.segments.index, first.segments.index) for s in steps):
                    group = GroupStep(steps, sizes)
                plan = FusedPlan(separate, group, steps)
            self.plans[kinds] = plan
        return plan

    @classmethod
    def build(cls, pool: AdapterPool, rows: list[list[tuple[int, float]]],
              token_row: torch.Tensor | None) -> "StepAdapters | None":
        if not any(rows):
            return None
        step = cls(pool, rows, token_row)
        return step if step.kinds else None

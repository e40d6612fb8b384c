"""The adapter slot pool: fixed-shape device tensors holding every resident expert.

Per adaptable module kind (q_proj, …, down_proj) and across all layers:

    A   [layers, slots, max_rank, in]    LoRA A rows                       (rank rows used)
    Bt  [layers, slots, max_rank, out]   (s·g ⊙ B)ᵀ: B pre-scaled by the LoRA scale s and the
                                         DoRA factor g = m / ‖W + sBA‖ (g = 1 for plain LoRA)
    base_delta [layers, slots, out]      g − 1   (DoRA rescales the base output)
    out_delta  [layers, slots, out]      l − 1   (IA³ on a module's output)
    in_delta   [layers, slots, in]       l − 1   (IA³ on a feed-forward module's input)

Each tensor is allocated the first time an expert needs it. A slot is identified by the
package digest; slots referenced by running sequences are pinned, the others are evicted
least-recently-used. Per step, `prepare()` turns each row's expert list into a weight matrix
over the slots active in the batch (see `step_adapters.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from ..packages import ExpertPackage
from .adapter_load import AdapterTensors, read_adapter
from .spec import ModelSpec
from .staging import Stager


@dataclass(slots=True)
class Slot:
    digest: str = ""
    rank: int = 0  # largest LoRA rank of the expert (rows used in every A/Bt slot)
    pins: int = 0
    last_used: int = 0
    prompt: torch.Tensor | None = None  # [virtual tokens, hidden]


@dataclass(slots=True)
class KindPool:
    in_features: int
    out_features: int
    A: torch.Tensor | None = None
    Bt: torch.Tensor | None = None
    base_delta: torch.Tensor | None = None
    out_delta: torch.Tensor | None = None
    in_delta: torch.Tensor | None = None
    lora_rank: list[int] = field(default_factory=list)  # per slot, 0 = no LoRA on this kind
    has_dora: list[bool] = field(default_factory=list)
    has_out: list[bool] = field(default_factory=list)
    has_in: list[bool] = field(default_factory=list)


class AdapterPool:
    def __init__(self, spec: ModelSpec, *, num_slots: int, max_rank: int, device: torch.device,
                 dtype: torch.dtype, base_weight) -> None:
        self.spec, self.num_slots, self.max_rank = spec, num_slots, max_rank
        self.device, self.dtype = device, dtype
        self.base_weight = base_weight  # (kind, layer) -> the base module's weight [out, in]
        self.slots = [Slot() for _ in range(num_slots)]
        self.by_digest: dict[str, int] = {}
        self.kinds = {k: KindPool(i, o, lora_rank=[0] * num_slots, has_dora=[False] * num_slots,
                                  has_out=[False] * num_slots, has_in=[False] * num_slots)
                      for k, (i, o) in spec.linear_shapes().items()}
        self.stager = Stager(device)
        self.generation = 0  # bumped on every load/evict: invalidates gathered copies
        self.gathered: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._clock = 0
        self.load_seconds = 0.0
        self.loads = 0
        self.hits = 0
        self.evictions = 0

    # -- residency -----------------------------------------------------------------------------

    def acquire(self, pkg: ExpertPackage) -> int:
        """The slot holding `pkg`, loading it (evicting the LRU unpinned slot) if needed; pins it."""
        self._clock += 1
        slot = self.by_digest.get(pkg.digest)
        if slot is None:
            slot = self._free_slot()
            t0 = time.perf_counter()
            self._write(slot, pkg, read_adapter(pkg, self.spec))
            self.stager.wait()
            self.load_seconds += time.perf_counter() - t0
            self.loads += 1
        else:
            self.hits += 1
        s = self.slots[slot]
        s.pins += 1
        s.last_used = self._clock
        return slot

    def release(self, digest: str) -> None:
        slot = self.by_digest.get(digest)
        if slot is not None and self.slots[slot].pins > 0:
            self.slots[slot].pins -= 1

    def slot_of(self, digest: str) -> int:
        return self.by_digest[digest]

    def _free_slot(self) -> int:
        empty = [i for i, s in enumerate(self.slots) if not s.digest]
        if empty:
            return empty[0]
        candidates = [i for i, s in enumerate(self.slots) if s.pins == 0]
        if not candidates:
            raise RuntimeError("all adapter slots are pinned")  # the scheduler prevents this
        victim = min(candidates, key=lambda i: self.slots[i].last_used)
        self._evict(victim)
        return victim

    def _evict(self, slot: int) -> None:
        del self.by_digest[self.slots[slot].digest]
        self.slots[slot] = Slot()
        for kp in self.kinds.values():
            kp.lora_rank[slot], kp.has_dora[slot], kp.has_out[slot], kp.has_in[slot] = 0, False, False, False
        self.generation += 1
        self.gathered.clear()
        self.evictions += 1

    # -- writing one expert into a slot ---------------------------------------------------------

    def _alloc(self, kp: KindPool, name: str, *shape: int) -> torch.Tensor:
        t = getattr(kp, name)
        if t is None:
            t = torch.zeros(self.spec.num_layers, self.num_slots, *shape, device=self.device, dtype=self.dtype)
            setattr(kp, name, t)
        return t

    def _write(self, slot: int, pkg: ExpertPackage, tensors: AdapterTensors) -> None:
        if tensors.rank > self.max_rank:
            from expertpm._errors import RuntimeUserError
            raise RuntimeUserError(f"expert {pkg.label} has rank {tensors.rank} but adapter slots hold at "
                                   f"most rank {self.max_rank}", hint="raise max_rank")
        R, dev = tensors.rank, self.stager.to_device
        for kind, layers in tensors.lora.items():
            kp = self.kinds[kind]
            A, Bt = self._alloc(kp, "A", self.max_rank, kp.in_features), self._alloc(kp, "Bt", self.max_rank, kp.out_features)
            for layer in range(self.spec.num_layers):
                if layer not in layers:
                    A[layer, slot, :R].zero_()
                    Bt[layer, slot, :R].zero_()
                    continue
                lw = layers[layer]
                a, b = dev(lw.A).to(self.dtype), dev(lw.B)
                r = a.shape[0]
                col = torch.full((kp.out_features,), lw.scale, device=self.device, dtype=torch.float32)
                if lw.magnitude is not None:
                    g = self._dora_factor(kind, layer, a, b, lw.scale, dev(lw.magnitude))
                    self._alloc(kp, "base_delta", kp.out_features)[layer, slot] = g - 1
                    col = col * g
                A[layer, slot, :r] = a
                Bt[layer, slot, :r] = (b.float() * col[:, None]).t().to(self.dtype)
                A[layer, slot, r:R].zero_()
                Bt[layer, slot, r:R].zero_()
            kp.lora_rank[slot] = R
            kp.has_dora[slot] = tensors.dora
        for (kind, side), layers in tensors.ia3.items():
            kp = self.kinds[kind]
            width = kp.in_features if side == "in" else kp.out_features
            delta = self._alloc(kp, f"{side}_delta", width)
            for layer in range(self.spec.num_layers):
                delta[layer, slot] = (dev(layers[layer]).to(self.dtype) - 1) if layer in layers else 0
            (kp.has_in if side == "in" else kp.has_out)[slot] = True
        prompt = dev(tensors.prompt).to(self.dtype) if tensors.prompt is not None else None
        if prompt is not None and prompt.data_ptr() == tensors.prompt.data_ptr():
            prompt = prompt.clone()  # own it: the mapping closes with the file
        self.slots[slot] = Slot(digest=pkg.digest, rank=R, prompt=prompt)
        self.by_digest[pkg.digest] = slot
        self.generation += 1
        self.gathered.clear()

    def _dora_factor(self, kind: str, layer: int, a: torch.Tensor, b: torch.Tensor, scale: float,
                     magnitude: torch.Tensor) -> torch.Tensor:
        """g = m / ‖W + s·BA‖ per output row, as PEFT's DoRA computes it (in the model dtype)."""
        w = self.base_weight(kind, layer)
        norm = torch.linalg.norm(w + scale * (b.to(w.dtype) @ a.to(w.dtype)), dim=1)
        return magnitude.float() / norm.float()

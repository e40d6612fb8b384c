"""The adapter slot pool: one fixed-shape device buffer with a row of bytes per slot.

Loading an expert is one copy: the data section of its mmapped `adapter_model.safetensors` goes
verbatim into its slot row (on CUDA: into pinned staging, then one asynchronous host-to-device
copy), and every tensor becomes a view of that row at its file offset. Only when the file's
dtype differs from the model's is each tensor converted on the way. A slot row is sized for
`max_rank` on every adaptable module of every layer, so any accepted expert fits any slot.

LoRA scales sᵢ are applied per step (see `step_adapters.py`), never baked into the weights;
DoRA needs g = m / ‖W + sBA‖ per output row, computed once at load from the base weight.

The cache key of a slot is the package digest. Slots used by running sequences are pinned;
the others are evicted least-recently-used.
"""

from __future__ import annotations

import mmap
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..packages import ExpertPackage
from .adapter_load import AdapterLayout, TensorRef, read_layout
from .spec import ModelSpec
from .staging import Stager

_MAX_MAPPED = 256
SAFETENSORS_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


@dataclass(slots=True)
class LoraPart:
    A: torch.Tensor  # [r, in]
    B: torch.Tensor  # [out, r]; for DoRA already multiplied by g per output row
    base_delta: torch.Tensor | None = None  # DoRA: g − 1 [out]


@dataclass(slots=True)
class Slot:
    """One resident expert. Tensor views over the slot row are made on first use and kept."""

    digest: str = ""
    pins: int = 0
    last_used: int = 0
    dora: bool = False
    layout: AdapterLayout | None = None
    view: Callable[[TensorRef], torch.Tensor] | None = None
    ranks: dict[str, int] = field(default_factory=dict)  # kind -> LoRA rank
    scales: dict[str, float] = field(default_factory=dict)  # kind -> LoRA scale s
    ia3_sides: set[tuple[str, str]] = field(default_factory=set)
    prompt: torch.Tensor | None = None  # [virtual tokens, hidden]
    _lora: dict[tuple[str, int], LoraPart | None] = field(default_factory=dict)
    _ia3: dict[tuple[str, str, int], torch.Tensor | None] = field(default_factory=dict)

    def lora(self, kind: str, layer: int) -> LoraPart | None:
        key = (kind, layer)
        if key not in self._lora:
            refs = self.layout.lora.get(kind, {}).get(layer)
            self._lora[key] = None if refs is None else LoraPart(self.view(refs.A), self.view(refs.B))
        return self._lora[key]

    def ia3(self, kind: str, side: str, layer: int) -> torch.Tensor | None:
        key = (kind, side, layer)
        if key not in self._ia3:
            ref = self.layout.ia3.get((kind, side), {}).get(layer)
            self._ia3[key] = None if ref is None else self.view(ref).reshape(-1)
        return self._ia3[key]


class AdapterPool:
    def __init__(self, spec: ModelSpec, *, num_slots: int, max_rank: int, device: torch.device,
                 dtype: torch.dtype, base_weight) -> None:
        self.spec, self.num_slots, self.max_rank = spec, num_slots, max_rank
        self.device, self.dtype = device, dtype
        self.base_weight = base_weight  # (kind, layer) -> the base module's weight [out, in]
        elem = torch.empty((), dtype=dtype).element_size()
        per_layer = sum(max_rank * (i + o) + i + 2 * o for i, o in spec.linear_shapes().values())
        self.slot_bytes = (spec.num_layers * per_layer * elem + 4096 + 255) // 256 * 256
        # CPU: pages are only touched when a slot is first written
        self.raw = torch.empty(num_slots, self.slot_bytes, dtype=torch.uint8, device=device)
        self.slots = [Slot() for _ in range(num_slots)]
        self.by_digest: dict[str, int] = {}
        self.stager = Stager(device)
        self.generation = 0  # bumped on every load/evict: invalidates gathered copies
        self.gathered: dict[tuple, dict] = {}  # slot combination -> its stacked tensors
        self._zeros: dict[tuple, torch.Tensor] = {}
        self._mapped: OrderedDict[str, torch.Tensor] = OrderedDict()  # digest -> mapped file bytes
        self._clock = 0
        self.load_seconds = 0.0
        self.loads = self.hits = self.evictions = 0

    # -- residency -----------------------------------------------------------------------------

    def acquire(self, pkg: ExpertPackage, layout: AdapterLayout | None = None) -> int:
        """The slot holding `pkg`, loading it (evicting the LRU unpinned slot) if needed; pins it.

        `layout` is the header already parsed when the request was validated (parsed here if None).
        """
        self._clock += 1
        slot = self.by_digest.get(pkg.digest)
        if slot is None:
            t0 = time.perf_counter()
            layout = layout or read_layout(pkg, self.spec)
            slot = self._free_slot()
            self._write(slot, pkg, layout)
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
        for i, s in enumerate(self.slots):
            if not s.digest:
                return i
        candidates = [i for i, s in enumerate(self.slots) if s.pins == 0]
        if not candidates:
            raise RuntimeError("all adapter slots are pinned")  # the scheduler prevents this
        victim = min(candidates, key=lambda i: self.slots[i].last_used)
        self.evict(victim)
        return victim

    def evict(self, slot: int) -> None:
        del self.by_digest[self.slots[slot].digest]
        self.slots[slot] = Slot()
        self._changed()
        self.evictions += 1

    def forget(self, digest: str) -> None:
        """Drop an unpinned expert entirely: its slot and its file mapping."""
        slot = self.by_digest.get(digest)
        if slot is not None and self.slots[slot].pins == 0:
            self.evict(slot)
        self._mapped.pop(digest, None)

    def _changed(self) -> None:
        self.generation += 1
        self.gathered.clear()

    def zeros(self, *shape: int) -> torch.Tensor:
        z = self._zeros.get(shape)
        if z is None:
            z = self._zeros[shape] = torch.zeros(shape, device=self.device, dtype=self.dtype)
        return z

    # -- writing one expert into a slot ---------------------------------------------------------

    def _write(self, slot: int, pkg: ExpertPackage, layout: AdapterLayout) -> None:
        view = self._copy_in(slot, pkg.digest, layout)
        s = Slot(digest=pkg.digest, dora=layout.dora, layout=layout, view=view, ranks=dict(layout.ranks),
                 ia3_sides=set(layout.ia3))
        for kind, layers in layout.lora.items():
            s.scales[kind] = next(iter(layers.values())).scale
            if layout.dora:  # g needs the base weight: computed now, once
                for layer, refs in layers.items():
                    part = s.lora(kind, layer)
                    g = self._dora_factor(kind, layer, part.A, part.B, refs.scale, view(refs.magnitude).reshape(-1))
                    part.B = (part.B.float() * g[:, None]).to(self.dtype)
                    part.base_delta = (g - 1).to(self.dtype)
        if layout.prompt is not None:
            s.prompt = view(layout.prompt).clone()  # small; owned so the slot row can be reused
        self.stager.wait()
        self.slots[slot] = s
        self.by_digest[pkg.digest] = slot
        self._changed()

    def _mapping(self, digest: str, layout: AdapterLayout) -> torch.Tensor:
        """The file's bytes, memory-mapped once per expert (store files never change)."""
        data = self._mapped.pop(digest, None)
        if data is None:
            with open(layout.path, "rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # private: never written back
            data = torch.frombuffer(mapped, dtype=torch.uint8)
            if len(self._mapped) >= _MAX_MAPPED:
                self._mapped.popitem(last=False)
        self._mapped[digest] = data
        return data

    def _copy_in(self, slot: int, digest: str, layout: AdapterLayout):
        """Copy the file's data section into the slot row; returns TensorRef -> device view."""
        row = self.raw[slot]
        blob = self._mapping(digest, layout)[layout.data_start:layout.data_end]
        file_dtype = SAFETENSORS_DTYPES[layout.dtype]
        elem = torch.empty((), dtype=self.dtype).element_size()
        aligned = all((t.start - layout.data_start) % elem == 0 for t in layout.tensors)
        if file_dtype == self.dtype and layout.data_bytes <= self.slot_bytes and aligned:
            self.stager.copy_into(row[:layout.data_bytes], blob)  # the one copy

            def view(ref: TensorRef) -> torch.Tensor:
                a = ref.start - layout.data_start
                return row[a:ref.end - layout.data_start].view(self.dtype).view(ref.shape)
            return view

        cursor, placed = 0, {}

        def view(ref: TensorRef) -> torch.Tensor:  # convert each tensor into the row
            nonlocal cursor
            if ref not in placed:
                src = blob[ref.start - layout.data_start:ref.end - layout.data_start].view(file_dtype).view(ref.shape)
                n = src.numel() * elem
                dst = row[cursor:cursor + n].view(self.dtype).view(ref.shape)
                dst.copy_(self.stager.to_device(src))
                cursor = (cursor + n + 63) // 64 * 64
                placed[ref] = dst
            return placed[ref]
        return view

    def _dora_factor(self, kind: str, layer: int, a: torch.Tensor, b: torch.Tensor, scale: float,
                     magnitude: torch.Tensor) -> torch.Tensor:
        """g = m / ‖W + s·BA‖ per output row, as PEFT's DoRA computes it."""
        w = self.base_weight(kind, layer)
        norm = torch.linalg.norm(w + scale * (b.to(w.dtype) @ a.to(w.dtype)), dim=1)
        return magnitude.float() / norm.float()

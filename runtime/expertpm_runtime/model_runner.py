"""The model runner: owns every torch object (weights, KV cache, adapter pool, sampling state).

The engine hands it the sequences of one step; it builds the packed inputs and the per-row
expert weights, runs one forward pass and samples one token per sequence.
"""

from __future__ import annotations

import random

import torch

from expertpm._errors import RuntimeUserError

from .config import EngineConfig
from .model.adapter_load import AdapterLayout, read_layout
from .model.adapter_pool import AdapterPool
from .model.layers import StepContext
from .model.loader import TORCH_DTYPES, load_model
from .model.sampler import sample
from .model.spec import ModelSpec
from .model.step_adapters import StepAdapters
from .packages import ExpertPackage
from .sequence import Sequence


class ModelRunner:
    def __init__(self, cfg: EngineConfig, spec: ModelSpec) -> None:
        if cfg.dtype not in TORCH_DTYPES:
            raise RuntimeUserError(f"dtype {cfg.dtype!r} is not supported", hint="use float32, bfloat16 or float16")
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeUserError("device cuda was asked for but CUDA is not available", hint="use --device cpu")
        self.dtype = TORCH_DTYPES[cfg.dtype]
        self.spec, self.block_size = spec, cfg.block_size
        self.model = load_model(cfg.model, spec, self.device, self.dtype)
        elem = torch.empty((), dtype=self.dtype).element_size()
        self.block_bytes = 2 * spec.num_layers * cfg.block_size * spec.num_kv_heads * spec.head_dim * elem
        self.num_blocks = cfg.kv_cache_bytes // self.block_bytes
        if self.num_blocks < 1:
            raise RuntimeUserError(
                f"kv_cache_bytes={cfg.kv_cache_bytes} holds no KV block (one block takes {self.block_bytes} bytes)",
                hint="raise kv_cache_bytes or lower block_size")
        self.kv_cache = torch.empty(spec.num_layers, 2, spec.num_kv_heads, self.num_blocks * cfg.block_size,
                                    spec.head_dim, device=self.device, dtype=self.dtype)
        self.pool = AdapterPool(spec, num_slots=cfg.adapter_slots, max_rank=cfg.max_rank, device=self.device,
                                dtype=self.dtype, base_weight=lambda kind, layer: self.model.linear(kind, layer).weight)
        self.generators: dict[int, torch.Generator] = {}
        self.layouts: dict[str, AdapterLayout] = {}  # digest -> header checked at request time
        self._last_decode_adapters: tuple = (None, None)

    # -- experts -------------------------------------------------------------------------------

    def check_expert(self, pkg: ExpertPackage) -> None:
        """Refuse an adapter this runtime cannot apply, before any tensor data is read."""
        layout = read_layout(pkg, self.spec)
        self.layouts[pkg.digest] = layout
        if layout.rank > self.pool.max_rank:
            raise RuntimeUserError(f"expert {pkg.label} has rank {layout.rank} but adapter slots hold at "
                                   f"most rank {self.pool.max_rank}", hint="raise max_rank")

    def pin_experts(self, packages: list[ExpertPackage]) -> None:
        done: list[str] = []
        try:
            for pkg in packages:
                self.pool.acquire(pkg, self.layouts.get(pkg.digest))
                done.append(pkg.digest)
        except BaseException:
            self.unpin_experts(tuple(done))
            raise

    def unpin_experts(self, digests: tuple[str, ...]) -> None:
        for d in digests:
            self.pool.release(d)

    def forget(self, seq_id: int) -> None:
        self.generators.pop(seq_id, None)

    # -- one step ------------------------------------------------------------------------------

    @torch.inference_mode()
    def run(self, seqs: list[Sequence], is_prefill: bool) -> list[int]:
        """One token per sequence. The rows run grouped by expert set (so each expert's rows
        are adjacent and its LoRA reads them as one block); tokens come back in `seqs` order."""
        order = sorted(range(len(seqs)), key=lambda i: [(e.digest, e.weight) for e in seqs[i].experts])
        rows = [seqs[i] for i in order]
        ctx = self._prepare(rows, is_prefill)
        logits = self.model(ctx, self.kv_cache)
        tokens = sample(logits, [s.params for s in rows], [self._generator(s) for s in rows])
        out = [0] * len(seqs)
        for i, tok in zip(order, tokens):
            out[i] = tok
        return out

    @torch.inference_mode()
    def all_logits(self, seq: Sequence) -> torch.Tensor:
        """Logits [new tokens, vocab] at every position a prefill of `seq` computes (float32)."""
        ctx = self._prepare([seq], True)
        ctx.last_index = torch.arange(ctx.input_ids.shape[0], device=self.device)
        return self.model(ctx, self.kv_cache).float()

    def _generator(self, seq: Sequence) -> torch.Generator | None:
        if seq.params.temperature <= 0:
            return None
        gen = self.generators.get(seq.seq_id)
        if gen is None:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(seq.params.seed if seq.params.seed is not None else random.getrandbits(63))
            self.generators[seq.seq_id] = gen
        return gen

    def _prepare(self, seqs: list[Sequence], is_prefill: bool) -> StepContext:
        bs = self.block_size
        starts = [s.num_cached_tokens if is_prefill else len(s) - 1 for s in seqs]
        ends = [len(s) for s in seqs]
        ids: list[int] = []
        for s, a in zip(seqs, starts):
            ids.extend(s.token_ids[a:])
        q_lens = [e - a for a, e in zip(starts, ends)]
        B, Lq, Lk = len(seqs), max(q_lens), max(ends)
        cpu = dict(dtype=torch.long)
        start_t, end_t = torch.tensor(starts, **cpu), torch.tensor(ends, **cpu)
        nb = max(len(s.block_table) for s in seqs)
        tables = torch.tensor([s.block_table + [0] * (nb - len(s.block_table)) for s in seqs], **cpu)
        key_pos = torch.arange(Lk)
        kv_slots = tables.gather(1, (key_pos // bs).clamp(max=nb - 1).expand(B, -1)) * bs + key_pos % bs
        kv_slots = kv_slots.masked_fill(key_pos >= end_t.unsqueeze(1), 0)
        # rows of each layer's cache viewed as [kv_heads·slots, D], heads outermost
        num_slots = self.kv_cache.shape[3]
        kv_index = (torch.arange(self.spec.num_kv_heads).unsqueeze(1) * num_slots + kv_slots.view(1, -1)).view(-1)
        q_pos = start_t.unsqueeze(1) + torch.arange(Lq)  # [B, Lq]
        valid_q = torch.arange(Lq) < (end_t - start_t).unsqueeze(1)
        positions = q_pos[valid_q]
        rows = torch.arange(B).unsqueeze(1).expand(B, Lq)[valid_q]
        slot_mapping = tables[rows, positions // bs] * bs + positions % bs
        allowed = (key_pos.view(1, 1, Lk) <= q_pos.unsqueeze(2)).unsqueeze(1)  # [B, 1, Lq, Lk]
        # additive: SDPA's fused CPU path is faster with it than with a boolean mask; decode
        # attention (one query per row) adds it to float32 scores
        attn_mask = torch.zeros(allowed.shape, dtype=torch.float32 if Lq == 1 else self.dtype)
        attn_mask.masked_fill_(~allowed, float("-inf"))
        last_index = torch.tensor(q_lens, **cpu).cumsum(0) - 1
        q_index = None
        if Lq > 1:
            q_index = (torch.arange(B).unsqueeze(1) * Lq + torch.arange(Lq))[valid_q]
        dev = self.device
        token_row = rows if Lq > 1 else None  # CPU: StepAdapters moves what it needs
        expert_rows = [[(self.pool.slot_of(e.digest), e.weight) for e in s.experts if not e.num_virtual_tokens]
                       for s in seqs]
        return StepContext(
            input_ids=torch.tensor(ids, **cpu).to(dev), positions=positions.to(dev),
            slot_mapping=slot_mapping.to(dev), kv_index=kv_index.to(dev), kv_shape=(B, Lk),
            attn_mask=attn_mask.to(dev),
            q_index=q_index.to(dev) if q_index is not None else None, q_len=Lq, last_index=last_index.to(dev),
            adapters=self._adapters(expert_rows, token_row),
            virtual_embeds=self._virtual_embeds(seqs, starts) if is_prefill else None)

    def _adapters(self, expert_rows: list[list[tuple[int, float]]], token_row) -> StepAdapters | None:
        """Per-step expert weights; reused across decode steps while the batch keeps its experts."""
        if token_row is not None:
            return StepAdapters.build(self.pool, expert_rows, token_row)
        key = (tuple(map(tuple, expert_rows)), self.pool.generation)
        if self._last_decode_adapters[0] != key:
            self._last_decode_adapters = (key, StepAdapters.build(self.pool, expert_rows, None))
        return self._last_decode_adapters[1]

    def _virtual_embeds(self, seqs: list[Sequence], starts: list[int]) -> torch.Tensor | None:
        """Prompt-tuning embeddings of the virtual tokens this step computes, in token order."""
        parts = []
        for s, start in zip(seqs, starts):
            offset = 0
            for e in s.experts:
                n = e.num_virtual_tokens
                lo, hi = max(start, offset), offset + n
                if n and lo < hi:
                    parts.append(self.pool.slots[self.pool.slot_of(e.digest)].prompt[lo - offset:hi - offset])
                offset += n
        return torch.cat(parts) if parts else None

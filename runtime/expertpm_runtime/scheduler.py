"""Continuous batching: which sequences run in the next step. No torch.

Each step is either a prefill (newly admitted sequences, first-come first-served) or a decode
(one token for every running sequence). New requests are admitted between decode steps as soon
as KV blocks, batch slots and adapter slots allow. When a decode step lacks a KV block, the most
recently admitted sequence is preempted: its blocks are freed and it goes back to the front of
the queue, to be recomputed later (prefix caching usually makes that cheap). The block manager
owns the only KV accounting, so the configured budget is never exceeded.
"""

from __future__ import annotations

from collections import Counter, deque

from expertpm._errors import RuntimeUserError

from .block_manager import BlockManager
from .sequence import Sequence, SequenceStatus


class Scheduler:
    def __init__(self, block_manager: BlockManager, *, max_num_seqs: int, max_num_batched_tokens: int,
                 max_model_len: int, max_resident_experts: int, eos_token_ids: tuple[int, ...] = ()) -> None:
        self.block_manager = block_manager
        self.max_num_seqs = max_num_seqs
        self.max_num_batched_tokens = max_num_batched_tokens
        self.max_model_len = max_model_len
        self.max_resident_experts = max_resident_experts
        self.eos_token_ids = frozenset(eos_token_ids)
        self.waiting: deque[Sequence] = deque()
        self.running: deque[Sequence] = deque()
        self.resident_experts: Counter[str] = Counter()  # digest -> running sequences using it
        self.preempted: list[Sequence] = []  # since the engine last drained it
        self.num_preemptions = 0

    # -- admission -----------------------------------------------------------------------------

    def check_fits(self, seq: Sequence) -> None:
        """Refuse a request that could never run, even alone with the whole KV cache."""
        if len(seq) > self.max_model_len:
            raise RuntimeUserError(
                f"prompt is {len(seq)} tokens but the model's context is {self.max_model_len} tokens",
                hint="shorten the prompt")
        total = min(len(seq) + seq.params.max_tokens, self.max_model_len)
        needed = self.block_manager.blocks_for(total)
        if needed > self.block_manager.num_blocks:
            bs = self.block_manager.block_size
            raise RuntimeUserError(
                f"request needs {needed} KV cache blocks ({total} tokens) but the whole cache holds "
                f"{self.block_manager.num_blocks} blocks ({self.block_manager.num_blocks * bs} tokens)",
                hint="lower max_tokens, shorten the prompt, or give the engine a larger kv_cache_bytes")
        if len(set(seq.expert_digests)) > self.max_resident_experts:
            raise RuntimeUserError(
                f"request uses {len(set(seq.expert_digests))} experts but only "
                f"{self.max_resident_experts} adapter slots exist", hint="raise adapter_slots")

    def add(self, seq: Sequence) -> None:
        self.check_fits(seq)
        seq.status = SequenceStatus.WAITING
        self.waiting.append(seq)

    def has_unfinished(self) -> bool:
        return bool(self.waiting or self.running)

    def _experts_fit(self, seq: Sequence) -> bool:
        new = {d for d in seq.expert_digests if d not in self.resident_experts}
        return len(self.resident_experts) + len(new) <= self.max_resident_experts

    def _start(self, seq: Sequence) -> None:
        self.block_manager.allocate(seq)
        seq.status = SequenceStatus.RUNNING
        self.resident_experts.update(set(seq.expert_digests))
        self.running.append(seq)

    def _stop(self, seq: Sequence) -> None:
        self.block_manager.deallocate(seq)
        for d in set(seq.expert_digests):
            self.resident_experts[d] -= 1
            if self.resident_experts[d] == 0:
                del self.resident_experts[d]

    # -- one step ------------------------------------------------------------------------------

    def schedule(self) -> tuple[list[Sequence], bool]:
        """The sequences of the next step and whether it is a prefill. Empty when idle."""
        batch: list[Sequence] = []
        num_tokens = 0
        while self.waiting and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if (num_tokens + len(seq) > self.max_num_batched_tokens
                    or not self._experts_fit(seq) or not self.block_manager.can_allocate(seq)):
                break
            self.waiting.popleft()
            self._start(seq)
            num_tokens += len(seq) - seq.num_cached_tokens
            batch.append(seq)
        if batch:
            return batch, True

        kept: deque[Sequence] = deque()
        while self.running:
            seq = self.running.popleft()
            while not self.block_manager.can_append(seq):
                if self.running:
                    self._preempt(self.running.pop())
                else:
                    self._preempt(seq)
                    break
            else:
                self.block_manager.may_append(seq)
                kept.append(seq)
        self.running = kept
        return list(kept), False

    def _preempt(self, seq: Sequence) -> None:
        self._stop(seq)
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)
        self.preempted.append(seq)
        self.num_preemptions += 1

    def postprocess(self, seqs: list[Sequence], token_ids: list[int]) -> list[Sequence]:
        """Append each sequence's new token; finish and free those that are done."""
        finished = []
        for seq, tok in zip(seqs, token_ids):
            seq.token_ids.append(tok)
            p = seq.params
            if tok in p.stop_token_ids or (not p.ignore_eos and tok in self.eos_token_ids):
                seq.finish_reason = "stop"
            elif seq.num_completion_tokens >= p.max_tokens or len(seq) >= self.max_model_len:
                seq.finish_reason = "length"
            else:
                continue
            self._finish(seq)
            finished.append(seq)
        return finished

    def _finish(self, seq: Sequence) -> None:
        if seq.status is SequenceStatus.RUNNING:
            self._stop(seq)
            self.running.remove(seq)
        elif seq.status is SequenceStatus.WAITING:
            self.waiting.remove(seq)
        seq.status = SequenceStatus.FINISHED

    def abort(self, seq: Sequence) -> None:
        if seq.status is not SequenceStatus.FINISHED:
            seq.finish_reason = "abort"
            self._finish(seq)

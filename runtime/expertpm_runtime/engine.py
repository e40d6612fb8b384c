"""The engine: requests in, tokens out, one step at a time.

    engine = Engine(EngineConfig(model=Path(hf_dir)))
    rid = engine.add_request(token_ids, SamplingParams(max_tokens=32), experts=[ExpertSpec(...)])
    while engine.has_unfinished():
        for out in engine.step(): ...

An Engine is not thread-safe: call it from one thread (a server runs one loop thread that owns
it and hands requests/outputs over through queues). Requests are validated in `add_request`
(every refusal is a `RuntimeUserError` with a one-line reason) before they are queued; expert
tensors are loaded when a request is first scheduled, into the adapter slot pool.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from expertpm._errors import ExpertpmError, RuntimeUserError

from .block_manager import BlockManager
from .config import EngineConfig, ExpertSpec, RequestOutput, SamplingParams
from .model.spec import ModelSpec
from .packages import ExpertPackage, base_weights_digest, read_expert
from .scheduler import Scheduler
from .sequence import ExpertUse, Sequence, SequenceStatus, cache_salt


class Engine:
    def __init__(self, cfg: EngineConfig) -> None:
        from .model_runner import ModelRunner  # the only torch import of the engine

        model_dir = Path(cfg.model)
        for name in ("block_size", "max_num_seqs", "max_num_batched_tokens", "max_chain", "adapter_slots", "max_rank"):
            if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 1:
                raise RuntimeUserError(f"engine option {name} must be a positive integer, not {getattr(cfg, name)!r}")
        self.config = cfg
        self.spec = ModelSpec.from_dir(model_dir)
        if cfg.max_chain > cfg.adapter_slots:
            raise RuntimeUserError(f"max_chain={cfg.max_chain} exceeds adapter_slots={cfg.adapter_slots}",
                                   hint="give the engine at least as many adapter slots as max_chain")
        self.base_digest = base_weights_digest(model_dir)
        self.max_model_len = min(cfg.max_model_len or self.spec.max_position_embeddings,
                                 self.spec.max_position_embeddings)
        self.runner = ModelRunner(cfg, self.spec)
        self.block_manager = BlockManager(self.runner.num_blocks, cfg.block_size, cfg.enable_prefix_caching)
        self.scheduler = Scheduler(
            self.block_manager, max_num_seqs=cfg.max_num_seqs,
            max_num_batched_tokens=max(cfg.max_num_batched_tokens, self.max_model_len),
            max_model_len=self.max_model_len, max_resident_experts=cfg.adapter_slots,
            eos_token_ids=self.spec.eos_token_ids)
        self._ids = itertools.count()
        self._seqs: dict[int, Sequence] = {}
        self._packages: dict[str, ExpertPackage] = {}
        self._aborted: list[RequestOutput] = []
        self._tokenizer = None
        self._counters = dict(prefill_seconds=0.0, decode_seconds=0.0, prefill_steps=0, decode_steps=0,
                              prompt_tokens=0, prefill_tokens=0, generation_tokens=0, cached_prompt_tokens=0,
                              requests_added=0, requests_finished=0, requests_aborted=0, requests_failed=0)
        self.last_error: str | None = None

    # -- tokenizer -----------------------------------------------------------------------------

    @property
    def tokenizer(self):
        """A transformers tokenizer from the model directory, or None when it has none (lazy)."""
        if self._tokenizer is None:
            model_dir = Path(self.config.model)
            if any((model_dir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
                from transformers import AutoTokenizer

                self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        return self._tokenizer

    # -- requests ------------------------------------------------------------------------------

    def validate_experts(self, experts: list[ExpertSpec] | None) -> list[ExpertPackage]:
        """Check an expert list for this engine (count, duplicates, base) without loading tensors."""
        experts = list(experts or [])
        if len(experts) > self.config.max_chain:
            raise RuntimeUserError(f"{len(experts)} experts requested but at most {self.config.max_chain} "
                                   "can be composed on one request", hint="name fewer experts")
        packages = []
        for spec in experts:
            pkg = self._packages.get(spec.digest)
            if pkg is None or pkg.path != Path(spec.path):
                pkg = read_expert(spec, self.base_digest)
                self.runner.check_expert(pkg)  # tensor names and shapes, from the header only
                self._packages[spec.digest] = pkg
            packages.append(pkg)
        names = [p.digest for p in packages]
        if len(set(names)) != len(names):
            dup = next(p for p in packages if names.count(p.digest) > 1)
            raise RuntimeUserError(f"expert {dup.label} is named twice in one request", hint="name it once")
        return packages

    def add_request(self, prompt_token_ids: list[int], params: SamplingParams | None = None,
                    experts: list[ExpertSpec] | None = None) -> int:
        """Validate and queue one request; returns its id. Raises RuntimeUserError when refused."""
        seq = self._new_sequence(prompt_token_ids, params or SamplingParams(), experts)
        self.scheduler.add(seq)  # refuses what can never fit
        self._seqs[seq.seq_id] = seq
        self._counters["requests_added"] += 1
        self._counters["prompt_tokens"] += seq.num_prompt_tokens - seq.num_virtual_tokens
        return seq.seq_id

    def _new_sequence(self, prompt_token_ids: list[int], params: SamplingParams,
                      experts: list[ExpertSpec] | None) -> Sequence:
        _check_params(params)
        prompt = list(prompt_token_ids)
        if not prompt:
            raise RuntimeUserError("prompt is empty", hint="give at least one token")
        bad = next((t for t in prompt if not isinstance(t, int) or not 0 <= t < self.spec.vocab_size), None)
        if bad is not None:
            raise RuntimeUserError(f"token id {bad!r} is outside the vocabulary (0..{self.spec.vocab_size - 1})")
        packages = self.validate_experts(experts)
        uses = tuple(ExpertUse(p.digest, float(s.weight), p.num_virtual_tokens)
                     for p, s in zip(packages, experts or []))
        num_virtual = sum(u.num_virtual_tokens for u in uses)
        token_ids = [-1 - i for i in range(num_virtual)] + prompt
        return Sequence(seq_id=next(self._ids), token_ids=token_ids, num_prompt_tokens=len(token_ids),
                        params=params, experts=uses, num_virtual_tokens=num_virtual, salt=cache_salt(uses))

    def abort(self, request_id: int) -> None:
        """Stop a request and free its KV blocks and expert pins; the next step reports it."""
        seq = self._seqs.get(request_id)
        if seq is None or seq.status is SequenceStatus.FINISHED:
            return
        self.scheduler.abort(seq)
        self._release(seq)
        self._aborted.append(RequestOutput(request_id, [], True, "abort"))
        self._counters["requests_aborted"] += 1

    def has_unfinished(self) -> bool:
        return self.scheduler.has_unfinished() or bool(self._aborted)

    # -- stepping ------------------------------------------------------------------------------

    def step(self) -> list[RequestOutput]:
        """Run one prefill or decode step; one output per request that got a token or ended."""
        outputs, self._aborted = self._aborted, []
        seqs, is_prefill = self.scheduler.schedule()
        for seq in self.scheduler.preempted:
            self._unpin(seq)
        self.scheduler.preempted.clear()
        if not seqs:
            return outputs
        if is_prefill:
            seqs = [seq for seq in seqs if self._pin_or_fail(seq, outputs)]
            if not seqs:
                return outputs
            for seq in seqs:
                self._counters["cached_prompt_tokens"] += seq.num_cached_tokens
                self._counters["prefill_tokens"] += len(seq) - seq.num_cached_tokens
        t0 = time.perf_counter()
        token_ids = self.runner.run(seqs, is_prefill)
        phase = "prefill" if is_prefill else "decode"
        self._counters[f"{phase}_seconds"] += time.perf_counter() - t0
        self._counters[f"{phase}_steps"] += 1
        self._counters["generation_tokens"] += len(seqs)
        finished = set(map(id, self.scheduler.postprocess(seqs, token_ids)))
        for seq, tok in zip(seqs, token_ids):
            done = id(seq) in finished
            if done:
                self._release(seq)
                self._counters["requests_finished"] += 1
            outputs.append(RequestOutput(seq.seq_id, [tok], done, seq.finish_reason if done else None))
        return outputs

    def _pin_or_fail(self, seq: Sequence, outputs: list[RequestOutput]) -> bool:
        """Load a newly scheduled request's experts; a request whose expert cannot be read ends
        with finish_reason "error" (and `last_error` says why) instead of stopping the engine."""
        try:
            self._pin(seq)
            return True
        except (ExpertpmError, OSError) as exc:
            self.last_error = f"request {seq.seq_id}: {exc}"
            self.scheduler.abort(seq)
            seq.finish_reason = "error"
            self._release(seq)
            outputs.append(RequestOutput(seq.seq_id, [], True, "error"))
            self._counters["requests_failed"] += 1
            return False

    def _pin(self, seq: Sequence) -> None:
        if not seq.experts_pinned:
            self.runner.pin_experts([self._packages[e.digest] for e in seq.experts])
            seq.experts_pinned = True

    def _unpin(self, seq: Sequence) -> None:
        if seq.experts_pinned:
            self.runner.unpin_experts(seq.expert_digests)
            seq.experts_pinned = False

    def _release(self, seq: Sequence) -> None:
        self._unpin(seq)
        self.runner.forget(seq.seq_id)
        self._seqs.pop(seq.seq_id, None)

    # -- conveniences --------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], params: SamplingParams | None = None,
                 experts: list[list[ExpertSpec]] | None = None) -> list[list[int]]:
        """Run prompts to completion (continuous batching); the generated token ids of each."""
        if experts is not None and len(experts) != len(prompts):
            raise RuntimeUserError(f"{len(experts)} expert lists for {len(prompts)} prompts")
        ids: list[int] = []
        try:
            for i, p in enumerate(prompts):
                ids.append(self.add_request(p, params, experts[i] if experts else None))
        except RuntimeUserError:
            for rid in ids:  # all or nothing
                self.abort(rid)
            self._aborted = [o for o in self._aborted if o.request_id not in ids]
            raise
        results: dict[int, list[int]] = {i: [] for i in ids}
        while self.has_unfinished():
            for out in self.step():
                if out.request_id in results:
                    results[out.request_id].extend(out.new_token_ids)
        return [results[i] for i in ids]

    def prompt_logits(self, prompt_token_ids: list[int], experts: list[ExpertSpec] | None = None):
        """Logits (torch float32 [len(prompt), vocab]) of every prompt position, with `experts` applied.

        Runs one prefill outside the scheduler (virtual tokens of prompt experts are not returned).
        Needs free KV blocks for the prompt; for evaluation and tests, not for serving.
        """
        seq = self._new_sequence(prompt_token_ids, SamplingParams(max_tokens=1), experts)
        self.scheduler.check_fits(seq)
        if not self.block_manager.can_allocate(seq):
            raise RuntimeUserError("not enough free KV blocks to score this prompt now",
                                   hint="wait for running requests to finish")
        self.block_manager.allocate(seq)
        seq.num_cached_tokens = 0
        try:
            self._pin(seq)
            logits = self.runner.all_logits(seq)
        finally:
            self.block_manager.deallocate(seq)
            self._release(seq)
        return logits[seq.num_virtual_tokens:]

    def stats(self) -> dict:
        pool = self.runner.pool
        return {**self._counters,
                "adapter_load_seconds": pool.load_seconds, "adapter_loads": pool.loads,
                "adapter_hits": pool.hits, "adapter_evictions": pool.evictions,
                "adapters_resident": len(pool.by_digest), "adapter_slots": pool.num_slots,
                "adapter_pool_bytes": pool.raw.numel(),
                "preemptions": self.scheduler.num_preemptions,
                "num_running": len(self.scheduler.running), "num_waiting": len(self.scheduler.waiting),
                "kv_blocks_total": self.block_manager.num_blocks, "kv_blocks_used": self.block_manager.num_used,
                "kv_block_bytes": self.runner.block_bytes, "block_size": self.config.block_size,
                "kv_tokens_used": sum(len(s) for s in self.scheduler.running)}


def _check_params(p: SamplingParams) -> None:
    if not isinstance(p.max_tokens, int) or p.max_tokens < 1:
        raise RuntimeUserError(f"max_tokens must be a positive integer, not {p.max_tokens!r}")
    if p.temperature < 0:
        raise RuntimeUserError(f"temperature must be >= 0, not {p.temperature}")
    if not 0 < p.top_p <= 1:
        raise RuntimeUserError(f"top_p must be in (0, 1], not {p.top_p}")
    if p.top_k < 0:
        raise RuntimeUserError(f"top_k must be >= 0, not {p.top_k}")

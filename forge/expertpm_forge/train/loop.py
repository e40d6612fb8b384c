"""forge's training loop: one plain loop for SFT, DPO and continued pre-training.

Why not TRL or `transformers.Trainer`: TRL is not a dependency, and on a 2-core CPU a plain loop
spends its time in the model rather than in accelerate's wrappers and callbacks
(`bench/forge_train.py` measures it against `Trainer` + PEFT). What differs between the three
methods lives in an *objective* (which rows form micro-batch k, and the summed loss of a batch);
the loop owns the optimiser, the schedule, gradient accumulation and checkpoints.

The micro-batch stream is a pure function of (seed, k), so a run resumed from a checkpoint at an
optimiser-step boundary replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig


class Objective(Protocol):
    micro_batches_per_epoch: int

    def micro_batch(self, k: int) -> dict: ...  # the k-th micro-batch over all epochs
    def weight(self, batch: dict) -> int: ...  # units (tokens or pairs) the loss averages over
    def loss_sum(self, model, batch: dict): ...  # loss summed over those units (a tensor)


class BatchOrder:
    """Rows of micro-batch k: a fresh seeded permutation per epoch, cut into `batch_size` rows."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.micro_batches_per_epoch = math.ceil(n / batch_size)
        self._epoch, self._perm = -1, []

    def rows(self, k: int) -> list[int]:
        import torch

        epoch, index = divmod(k, self.micro_batches_per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=gen).tolist()
        return self._perm[index * self.batch_size:(index + 1) * self.batch_size]


@dataclass(frozen=True, slots=True)
class LoopResult:
    steps_done: int
    total_steps: int
    log: list[dict]  # one entry per optimiser step: step, loss, lr, tokens, epoch
    tokens: int  # tokens processed in this call (not counting earlier, resumed-from work)
    seconds: float

    @property
    def completed(self) -> bool:
        return self.steps_done >= self.total_steps

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def total_steps(config: TrainConfig, micro_batches_per_epoch: int) -> int:
    if config.max_steps is not None:
        return config.max_steps
    return max(1, math.ceil(config.epochs * micro_batches_per_epoch / config.grad_accum))


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then linear decay to zero (transformers' "linear" schedule)."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    return max(0.0, (total - step) / max(1, total - warmup))


def run_loop(model, objective: Objective, config: TrainConfig, lr: float, *,
             checkpoint_dir: Path, fingerprint: str, resume: bool = True,
             stop_at_step: int | None = None,
             progress: Callable[[int, int, float], None] | None = None) -> LoopResult:
    """Train `model`'s trainable parameters; checkpoint into `checkpoint_dir` as configured.

    `stop_at_step` ends the run early after that optimiser step, leaving a checkpoint (what an
    interrupted run leaves behind); calling again with `resume=True` continues from it.
    """
    import torch

    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(params.values(), lr=lr, weight_decay=config.weight_decay)
    total = total_steps(config, objective.micro_batches_per_epoch)
    torch.manual_seed(config.seed)
    start, log = 0, []
    checkpoint_dir = Path(checkpoint_dir)
    if resume and checkpoint_dir.is_dir():
        restored = load_checkpoint(checkpoint_dir, params=params, optimizer=optimizer, fingerprint=fingerprint)
        start, log = restored.step, restored.log

    model.train()
    seen = log[-1]["tokens"] if log else 0
    tokens, began = 0, time.perf_counter()
    for step in range(start, total):
        factor = lr_factor(step, config.warmup_steps, total)
        for group in optimizer.param_groups:
            group["lr"] = lr * factor
        batches = [objective.micro_batch(step * config.grad_accum + j) for j in range(config.grad_accum)]
        weight = sum(objective.weight(b) for b in batches)
        step_loss = 0.0
        for batch in batches:
            loss = objective.loss_sum(model, batch) / max(weight, 1)
            loss.backward()
            step_loss += loss.item()
            tokens += int(batch["attention_mask"].sum())
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        micro = (step + 1) * config.grad_accum
        log.append({"step": step + 1, "loss": step_loss, "lr": lr * factor, "tokens": seen + tokens,
                    "epoch": round(micro / objective.micro_batches_per_epoch, 4)})
        if progress is not None:
            progress(step + 1, total, step_loss)
        done = step + 1
        stopping = stop_at_step is not None and done >= stop_at_step and done < total
        if stopping or (config.checkpoint_every and done % config.checkpoint_every == 0 and done < total):
            save_checkpoint(checkpoint_dir, params=params, optimizer=optimizer, step=done, log=log,
                            fingerprint=fingerprint)
        if stopping:
            return LoopResult(done, total, log, tokens, time.perf_counter() - began)
    model.eval()
    return LoopResult(total, total, log, tokens, time.perf_counter() - began)

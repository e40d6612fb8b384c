"""What each training method optimises: causal-LM loss (SFT, continued pre-training) and DPO.

An objective turns micro-batch number k into padded tensors and returns the loss *summed* over
its units (label tokens for causal LM, preference pairs for DPO); the loop divides by the units of
the whole optimiser step, so gradient accumulation equals one big batch exactly.
"""

from __future__ import annotations

from typing import Sequence

from .data import IGNORE, Example, Pair, pad
from .loop import BatchOrder


def shifted_logits(model, batch: dict):
    """(logits, targets) aligned for next-token loss, over the labelled span only.

    Positions before the first labelled token of the batch never enter the loss, so the output
    layer is applied from there on (`logits_to_keep`): for SFT, where prompts are most of each
    row, that skips most of the vocabulary projection and its backward pass.
    """
    labels = batch["labels"]
    width = labels.shape[1]
    labelled = (labels != IGNORE).any(dim=0).nonzero()
    start = max(int(labelled[0]) - 1, 0) if len(labelled) else width - 1
    keep = width - start
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False,
                logits_to_keep=keep)
    # Prompt tuning prepends virtual tokens; the kept positions are the last `keep` either way.
    logits = out.logits[:, -keep:]
    return logits[:, :-1], labels[:, start + 1:]


def token_logps(model, batch: dict):
    """Per-token log-probability of each label (0 where ignored) and the mask of counted tokens."""
    import torch

    logits, labels = shifted_logits(model, batch)
    mask = labels != IGNORE
    safe = labels.masked_fill(~mask, 0)
    logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    return logps * mask, mask


class CausalLMObjective:
    """Next-token cross-entropy on the labelled tokens (completions for SFT, all for CPT)."""

    def __init__(self, examples: Sequence[Example], batch_size: int, seed: int, pad_id: int) -> None:
        self.examples, self.pad_id = list(examples), pad_id
        self.order = BatchOrder(len(self.examples), batch_size, seed)
        self.micro_batches_per_epoch = self.order.micro_batches_per_epoch

    def micro_batch(self, k: int) -> dict:
        return pad([self.examples[i] for i in self.order.rows(k)], self.pad_id)

    def weight(self, batch: dict) -> int:
        return int((batch["labels"][:, 1:] != IGNORE).sum())

    def loss_sum(self, model, batch: dict):
        import torch.nn.functional as F

        logits, labels = shifted_logits(model, batch)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                               ignore_index=IGNORE, reduction="sum")


class DPOObjective:
    """Direct Preference Optimisation (Rafailov et al. 2023) against fixed reference log-probs.

    The reference model never changes during training, so its sequence log-probs are computed
    once up front (`reference_logps`) instead of on every step.
    """

    def __init__(self, pairs: Sequence[Pair], reference: list[tuple[float, float]], beta: float,
                 batch_size: int, seed: int, pad_id: int) -> None:
        self.pairs, self.reference, self.beta, self.pad_id = list(pairs), reference, beta, pad_id
        self.order = BatchOrder(len(self.pairs), batch_size, seed)
        self.micro_batches_per_epoch = self.order.micro_batches_per_epoch

    def micro_batch(self, k: int) -> dict:
        import torch

        rows = self.order.rows(k)
        batch = pad([self.pairs[i].chosen for i in rows] + [self.pairs[i].rejected for i in rows], self.pad_id)
        batch["reference_margin"] = torch.tensor([self.reference[i][0] - self.reference[i][1] for i in rows])
        return batch

    def weight(self, batch: dict) -> int:
        return len(batch["reference_margin"])

    def loss_sum(self, model, batch: dict):
        import torch.nn.functional as F

        logps, _ = token_logps(model, batch)
        seq = logps.sum(-1)
        n = len(batch["reference_margin"])
        margin = (seq[:n] - seq[n:]) - batch["reference_margin"]
        return -F.logsigmoid(self.beta * margin).sum()


def reference_logps(model, pairs: Sequence[Pair], batch_size: int, pad_id: int) -> list[tuple[float, float]]:
    """Sequence log-probs (chosen, rejected) of each pair under `model` as it is now."""
    import torch

    was_training = model.training
    model.eval()
    out: list[tuple[float, float]] = []
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start:start + batch_size]
            batch = pad([p.chosen for p in chunk] + [p.rejected for p in chunk], pad_id)
            seq = token_logps(model, batch)[0].sum(-1).tolist()
            out.extend(zip(seq[:len(chunk)], seq[len(chunk):]))
    model.train(was_training)
    return out

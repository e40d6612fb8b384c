"""Choosing the next token of every row: greedy, or temperature / top-k / top-p sampling."""

from __future__ import annotations

import torch

from ..config import SamplingParams


def sample(logits: torch.Tensor, params: list[SamplingParams],
           generators: list[torch.Generator | None]) -> list[int]:
    """logits [B, vocab]; a row with temperature 0 is greedy. Returns one token id per row."""
    logits = logits.float()
    tokens = logits.argmax(dim=-1)
    sampled = [i for i, p in enumerate(params) if p.temperature > 0]
    if sampled:
        rows = torch.tensor(sampled, device=logits.device)
        sub = logits[rows] / torch.tensor([params[i].temperature for i in sampled],
                                          device=logits.device).unsqueeze(1)
        for j, i in enumerate(sampled):
            sub[j] = _filter(sub[j], params[i].top_k, params[i].top_p)
        probs = torch.softmax(sub, dim=-1)
        picks = [torch.multinomial(probs[j], 1, generator=generators[i]) for j, i in enumerate(sampled)]
        tokens[rows] = torch.cat(picks)
    return tokens.tolist()


def _filter(row: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if 0 < top_k < row.numel():
        kth = torch.topk(row, top_k).values[-1]
        row = row.masked_fill(row < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(row, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        drop = cum - torch.softmax(sorted_logits, dim=-1) > top_p  # keep the smallest set reaching top_p
        row = row.masked_fill(torch.zeros_like(drop).scatter(0, order, drop), float("-inf"))
    return row

"""Greedy generation for evaluation, with transformers + PEFT.

Prompts are batched by length (left-padded so every row ends where generation starts) and the
answers come back in the original order, cut at the first stop string. The runtime engine can
replace this later; evaluation only needs `generate(model, tokenizer, prompts) -> answers`.
"""

from __future__ import annotations

from typing import Sequence

from ..tokenizer import stop_token_ids


def generate(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int = 64, batch_size: int = 16,
             stop: Sequence[str] = ()) -> list[str]:
    import torch

    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    eos = stop_token_ids(tokenizer)
    pad_id = tokenizer.pad_token_id
    answers: list[str] = [""] * len(prompts)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):
                n = len(encoded[i])
                ids[r, width - n:] = torch.tensor(encoded[i])
                mask[r, width - n:] = 1
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=eos, pad_token_id=pad_id, use_cache=True)
            new = out[:, width:]  # generate returns prompt + continuation
            for r, i in enumerate(rows):
                answers[i] = cut(tokenizer.decode(_until_eos(new[r].tolist(), eos), skip_special_tokens=True), stop)
    model.train(was_training)
    return answers


def _until_eos(ids: list[int], eos: list[int]) -> list[int]:
    for pos, token in enumerate(ids):
        if token in eos:
            return ids[:pos]
    return ids


def cut(text: str, stop: Sequence[str]) -> str:
    """The text up to the first stop string, without surrounding whitespace."""
    for s in stop:
        if s and s in text:
            text = text[:text.index(s)]
    return text.strip()

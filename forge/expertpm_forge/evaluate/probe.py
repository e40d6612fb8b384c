"""The general-text probe: perplexity on held-out general text, to measure forgetting.

An expert that leaves the base's general ability intact has an expert/base perplexity ratio
near 1.0; a large ratio means the adapter damages text it was not trained for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

from ..tokenizer import ENDOFTEXT, read_documents
from ..train.data import encode_blocks
from ..train.objectives import token_logps


def probe_texts(source: Path | Sequence[str]) -> list[str]:
    """Documents of a probe: a text file (blank-line separated) or a list of strings."""
    if isinstance(source, (str, Path)):
        return list(read_documents([Path(source)]))
    return list(source)


def perplexity(model, tokenizer, texts: Iterable[str], *, block_size: int = 128, batch_size: int = 16) -> tuple[float, int]:
    """(perplexity, scored tokens) of `model` over `texts` cut into `block_size` blocks."""
    import torch

    from ..train.data import pad

    blocks = encode_blocks(texts, tokenizer, block_size, eos_id=tokenizer.convert_tokens_to_ids(ENDOFTEXT))
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = pad(blocks[start:start + batch_size], tokenizer.pad_token_id)
            logps, mask = token_logps(model, batch)
            total -= float(logps.sum())
            count += int(mask.sum())
    model.train(was_training)
    return math.exp(total / count), count


def forgetting_probe(peft_model, tokenizer, texts: Sequence[str], *, block_size: int = 128) -> dict:
    """Perplexity of base (adapter disabled) and base + expert on the same held-out text."""
    expert_ppl, n = perplexity(peft_model, tokenizer, texts, block_size=block_size)
    with peft_model.disable_adapter():
        base_ppl, _ = perplexity(peft_model, tokenizer, texts, block_size=block_size)
    return {"metric": "perplexity", "base": round(base_ppl, 4), "expert": round(expert_ppl, 4),
            "ratio": round(expert_ppl / base_ppl, 4), "tokens": n}

"""The one type shared by the engine, the scheduler, the block manager and the model runner.

No torch here. A sequence's `token_ids` start with `num_virtual_tokens` placeholders (negative
ids) when prompt-tuning experts are applied: their embeddings come from the experts, they sit at
positions 0..n-1 exactly like PEFT's virtual tokens, and they take KV cache space like any token.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import Enum

from .config import SamplingParams


class SequenceStatus(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class ExpertUse:
    """One expert as a sequence uses it: cache key, weight αᵢ, and virtual tokens it adds."""

    digest: str
    weight: float
    num_virtual_tokens: int = 0


def cache_salt(experts: tuple[ExpertUse, ...]) -> bytes:
    """The prefix-cache salt of an expert set.

    Additive experts commute, so they enter sorted; prompt experts add virtual tokens in chain
    order, so their order is part of the salt too. No experts → empty salt (the base's cache).
    """
    if not experts:
        return b""
    h = hashlib.blake2b(digest_size=16)
    for e in sorted(experts, key=lambda e: (e.digest, e.weight)):
        h.update(e.digest.encode() + struct.pack("<d", e.weight))
    h.update(b"|")
    for e in experts:
        if e.num_virtual_tokens:
            h.update(e.digest.encode())
    return h.digest()


@dataclass(slots=True, eq=False)
class Sequence:
    seq_id: int
    token_ids: list[int]
    num_prompt_tokens: int
    params: SamplingParams
    experts: tuple[ExpertUse, ...] = ()
    num_virtual_tokens: int = 0
    salt: bytes = b""
    status: SequenceStatus = SequenceStatus.WAITING
    block_table: list[int] = field(default_factory=list)
    num_cached_tokens: int = 0
    finish_reason: str | None = None
    experts_pinned: bool = False

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def last_token(self) -> int:
        return self.token_ids[-1]

    @property
    def completion_token_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def num_completion_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def expert_digests(self) -> tuple[str, ...]:
        return tuple(e.digest for e in self.experts)

    def num_blocks(self, block_size: int) -> int:
        return (len(self.token_ids) + block_size - 1) // block_size

    def block_tokens(self, i: int, block_size: int) -> list[int]:
        return self.token_ids[i * block_size:(i + 1) * block_size]

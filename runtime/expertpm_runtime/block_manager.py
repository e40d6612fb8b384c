"""Paged KV cache bookkeeping: fixed-size blocks, reference counts, prefix caching. No torch.

A full block is identified by a hash chained over the token ids of every block before it and
seeded with the sequence's expert salt, so a cached prefix is only ever reused by a sequence
with the same tokens *and* the same expert set. Freed blocks keep their hash until they are
reallocated, so a later request with the same prefix can revive them.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from .sequence import Sequence


@dataclass(slots=True)
class Block:
    block_id: int
    ref_count: int = 0
    hash: bytes | None = None
    token_ids: tuple[int, ...] = ()


def chain_hash(prefix: bytes, token_ids: list[int]) -> bytes:
    h = hashlib.blake2b(prefix, digest_size=16)
    h.update(struct.pack(f"<{len(token_ids)}q", *token_ids))
    return h.digest()


def seed_hash(salt: bytes) -> bytes:
    return hashlib.blake2b(b"expertpm-kv\0" + salt, digest_size=16).digest()


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int, enable_prefix_caching: bool = True) -> None:
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self.blocks = [Block(i) for i in range(num_blocks)]
        # insertion-ordered set: the longest-free block is reused first, so cached blocks linger
        self.free_block_ids: dict[int, None] = dict.fromkeys(range(num_blocks))
        self.hash_to_block_id: dict[bytes, int] = {}
        self.num_used = 0

    # -- queries -------------------------------------------------------------------------------

    @property
    def num_free(self) -> int:
        return self.num_blocks - self.num_used

    def blocks_for(self, num_tokens: int) -> int:
        return (num_tokens + self.block_size - 1) // self.block_size

    def _full_block_hashes(self, seq: Sequence) -> list[bytes]:
        if not self.enable_prefix_caching:
            return []
        hashes, h = [], seed_hash(seq.salt)
        for i in range(len(seq) // self.block_size):
            h = chain_hash(h, seq.block_tokens(i, self.block_size))
            hashes.append(h)
        return hashes

    def _lookup(self, h: bytes, token_ids: list[int]) -> int | None:
        block_id = self.hash_to_block_id.get(h)
        if block_id is not None and self.blocks[block_id].token_ids == tuple(token_ids):
            return block_id
        return None

    def can_allocate(self, seq: Sequence) -> bool:
        """Enough free blocks for the whole sequence, counting prefix hits on blocks in use."""
        needed = seq.num_blocks(self.block_size)
        for i, h in enumerate(self._full_block_hashes(seq)):
            block_id = self._lookup(h, seq.block_tokens(i, self.block_size))
            if block_id is None:
                break
            if self.blocks[block_id].ref_count > 0:
                needed -= 1
        return needed <= self.num_free

    def can_append(self, seq: Sequence) -> bool:
        """Room for the KV of the sequence's last token (a new block when it starts one)."""
        return len(seq) <= len(seq.block_table) * self.block_size or self.num_free >= 1

    # -- changes -------------------------------------------------------------------------------

    def _take_free(self, block_id: int | None = None) -> Block:
        if block_id is None:
            block_id = next(iter(self.free_block_ids))
        del self.free_block_ids[block_id]
        block = self.blocks[block_id]
        assert block.ref_count == 0
        block.ref_count = 1
        self.num_used += 1
        return block

    def _forget_hash(self, block: Block) -> None:
        if block.hash is not None and self.hash_to_block_id.get(block.hash) == block.block_id:
            del self.hash_to_block_id[block.hash]
        block.hash, block.token_ids = None, ()

    def allocate(self, seq: Sequence) -> None:
        """Give a waiting sequence its block table, reusing cached prefix blocks."""
        assert not seq.block_table
        hashes = self._full_block_hashes(seq)
        cached = 0
        for i in range(seq.num_blocks(self.block_size)):
            tokens = seq.block_tokens(i, self.block_size)
            hit = self._lookup(hashes[i], tokens) if i < len(hashes) and cached == i else None
            if hit is not None:
                block = self.blocks[hit]
                if block.ref_count > 0:
                    block.ref_count += 1
                else:
                    self._take_free(hit)
                cached += 1
            else:
                block = self._take_free()
                self._forget_hash(block)
                if i < len(hashes):
                    self._register(block, hashes[i], tokens)
            seq.block_table.append(block.block_id)
        # Always compute at least the last token: its logits start the generation.
        seq.num_cached_tokens = min(cached * self.block_size, len(seq) - 1)

    def _register(self, block: Block, h: bytes, tokens: list[int]) -> None:
        block.hash, block.token_ids = h, tuple(tokens)
        self.hash_to_block_id[h] = block.block_id

    def may_append(self, seq: Sequence) -> None:
        """Before a decode step: make room for the last token, and hash a block it completes."""
        if len(seq) > len(seq.block_table) * self.block_size:
            block = self._take_free()
            self._forget_hash(block)
            seq.block_table.append(block.block_id)
        if self.enable_prefix_caching and len(seq) % self.block_size == 0:
            n = len(seq) // self.block_size
            prefix = self.blocks[seq.block_table[n - 2]].hash if n >= 2 else seed_hash(seq.salt)
            last = self.blocks[seq.block_table[n - 1]]
            if prefix is not None and last.hash is None:
                tokens = seq.block_tokens(n - 1, self.block_size)
                self._register(last, chain_hash(prefix, tokens), tokens)

    def deallocate(self, seq: Sequence) -> None:
        for block_id in reversed(seq.block_table):
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self.num_used -= 1
                self.free_block_ids[block_id] = None
        seq.block_table.clear()
        seq.num_cached_tokens = 0

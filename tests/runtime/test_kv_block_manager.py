"""Paged KV bookkeeping: reference counts, prefix caching salted by the expert set."""

from __future__ import annotations

from expertpm_runtime.block_manager import BlockManager
from expertpm_runtime.config import SamplingParams
from expertpm_runtime.sequence import ExpertUse, Sequence, cache_salt

_ids = iter(range(10_000))


def seq(tokens, experts=()) -> Sequence:
    experts = tuple(experts)
    return Sequence(seq_id=next(_ids), token_ids=list(tokens), num_prompt_tokens=len(tokens),
                    params=SamplingParams(), experts=experts, salt=cache_salt(experts))


def test_allocate_and_free_keep_counts_consistent():
    bm = BlockManager(num_blocks=8, block_size=4)
    a = seq(range(10))
    assert bm.can_allocate(a)
    bm.allocate(a)
    assert len(a.block_table) == 3 and bm.num_used == 3 and bm.num_free == 5
    assert a.num_cached_tokens == 0
    bm.deallocate(a)
    assert bm.num_used == 0 and a.block_table == []
    assert sorted(bm.free_block_ids) == list(range(8))


def test_shared_prefix_is_reused_with_reference_counts():
    bm = BlockManager(num_blocks=8, block_size=4)
    a, b = seq([1, 2, 3, 4, 5, 6, 7, 8, 9]), seq([1, 2, 3, 4, 5, 6, 7, 8, 42, 43])
    bm.allocate(a)
    bm.allocate(b)
    assert b.block_table[:2] == a.block_table[:2] and b.block_table[2] != a.block_table[2]
    assert b.num_cached_tokens == 8
    assert [bm.blocks[i].ref_count for i in a.block_table] == [2, 2, 1]
    assert bm.num_used == 4
    bm.deallocate(a)
    assert [bm.blocks[i].ref_count for i in b.block_table] == [1, 1, 1]


def test_cached_prefix_is_never_shared_across_expert_sets():
    bm = BlockManager(num_blocks=16, block_size=4)
    tokens = list(range(12))
    base, x = seq(tokens), seq(tokens, [ExpertUse("aa" * 32, 1.0)])
    x_half = seq(tokens, [ExpertUse("aa" * 32, 0.5)])
    for s in (base, x, x_half):
        bm.allocate(s)
    assert len({tuple(s.block_table) for s in (base, x, x_half)}) == 3
    assert x.num_cached_tokens == 0 and x_half.num_cached_tokens == 0
    same_set_reordered = seq(tokens, [ExpertUse("bb" * 32, 1.0), ExpertUse("aa" * 32, 1.0)])
    other_order = seq(tokens, [ExpertUse("aa" * 32, 1.0), ExpertUse("bb" * 32, 1.0)])
    bm.allocate(same_set_reordered)
    bm.allocate(other_order)
    assert other_order.block_table == same_set_reordered.block_table  # additive experts commute


def test_freed_blocks_keep_their_prefix_until_reused():
    bm = BlockManager(num_blocks=4, block_size=4)
    a = seq(range(8))
    bm.allocate(a)
    kept = list(a.block_table)
    bm.deallocate(a)
    again = seq(list(range(8)) + [99])
    assert bm.can_allocate(again)
    bm.allocate(again)
    assert again.block_table[:2] == kept and again.num_cached_tokens == 8


def test_full_hit_still_computes_the_last_token():
    bm = BlockManager(num_blocks=4, block_size=4)
    a, b = seq(range(8)), seq(range(8))
    bm.allocate(a)
    bm.allocate(b)
    assert b.block_table == a.block_table and b.num_cached_tokens == 7


def test_can_allocate_counts_hits_on_blocks_in_use():
    bm = BlockManager(num_blocks=3, block_size=4)
    a = seq(range(8))
    bm.allocate(a)  # 2 blocks used, 1 free
    assert bm.can_allocate(seq(list(range(8)) + [1, 2]))  # 2 hits + 1 new block
    assert not bm.can_allocate(seq(range(100, 110)))


def test_decode_appends_blocks_and_hashes_completed_ones():
    bm = BlockManager(num_blocks=4, block_size=4)
    a = seq([1, 2, 3])
    bm.allocate(a)
    for tok in (4, 5):
        a.token_ids.append(tok)
        assert bm.can_append(a)
        bm.may_append(a)
    assert len(a.block_table) == 2
    first = bm.blocks[a.block_table[0]]
    assert first.hash is not None and first.token_ids == (1, 2, 3, 4)
    b = seq([1, 2, 3, 4, 7])
    bm.allocate(b)
    assert b.block_table[0] == a.block_table[0] and b.num_cached_tokens == 4


def test_prefix_caching_can_be_disabled():
    bm = BlockManager(num_blocks=8, block_size=4, enable_prefix_caching=False)
    a, b = seq(range(8)), seq(range(8))
    bm.allocate(a)
    bm.allocate(b)
    assert set(a.block_table).isdisjoint(b.block_table) and b.num_cached_tokens == 0

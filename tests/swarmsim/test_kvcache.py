"""The prefix cache: LRU eviction and hit accounting, and prefill that skips cached tokens."""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from itertools import takewhile

import pytest

from swarmsim.kvcache import KVCache, KVCacheConfig, capacity_blocks, common_prefix
from swarmsim.profiles import load_profiles
from swarmsim.query import Job, Query
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation


def test_lru_and_hit_accounting_by_hand() -> None:
    """Capacity 4. Prompt A = [1, 2, 3] then B = [1, 2, 4, 5]: B shares A's first two blocks.
    Inserting B (5 distinct blocks held) evicts the least recently used: A's tail, 3."""
    cache = KVCache(4)
    assert cache.match([1, 2, 3]) == 0  # cold: 3 looked up, 0 hit
    cache.insert([1, 2, 3])
    assert cache.match([1, 2, 4, 5]) == 2  # 4 looked up, 2 hit
    cache.insert([1, 2, 4, 5])
    assert 3 not in cache.blocks and set(cache.blocks) == {1, 2, 4, 5}
    assert cache.match([1, 2, 3]) == 2  # A again: its tail was evicted
    assert (cache.hits, cache.lookups) == (4, 10)
    assert cache.hit_rate == pytest.approx(0.4)
    assert cache.utilisation == 1.0


def test_a_prompt_loses_its_tail_before_its_head() -> None:
    """Blocks are touched last to first, so the head of the latest prompt is the most recent."""
    cache = KVCache(3)
    cache.insert([1, 2, 3])
    assert list(cache.blocks) == [3, 2, 1]  # least recently used first
    cache.insert([9])
    assert list(cache.blocks) == [2, 1, 9]


def test_peek_counts_the_cached_head_without_touching_order_or_counts() -> None:
    """What a router looks at: [1, 2, 3] held (LRU order 3, 2, 1); peeking [1, 2, 7] finds 2
    blocks, and 1 stays the least recently used, the counts at zero."""
    cache = KVCache(3)
    cache.insert([1, 2, 3])
    assert cache.peek([1, 2, 7]) == 2 and cache.peek([7, 1]) == 0
    assert list(cache.blocks) == [3, 2, 1]
    assert (cache.hits, cache.lookups) == (0, 0)


def test_capacity_from_the_memory_the_weights_leave() -> None:
    """llm-small (5.4 GB, 512 KiB of KV per token) on a 16 GB RTX 4080 SUPER, 16-token blocks:
    10.6e9 B / (524288 B x 16) = 1263.6 -> 1263 blocks."""
    p = load_profiles()
    model, device = p.model("llm-small"), p.device("rtx4080-super")
    args = (device.vram_gb, model.vram_gb, model.kv_bytes_per_token, 16)
    assert capacity_blocks(KVCacheConfig(), *args) == 1263
    assert capacity_blocks(KVCacheConfig(capacity_blocks=10), *args) == 10


def test_prefill_counts_only_the_uncached_tokens() -> None:
    """llm-small on Worlock's RTX 3080: prefill 2407 tok/s, decode 114.5 tok/s. A 2,048-token
    prompt (128 blocks of 16) answering 100 tokens takes 2048/2407 + 100/114.5 s cold; with its
    first 64 blocks (1,024 tokens) cached, 1024/2407 + 100/114.5 s, its first token at
    1024/2407 s after service starts."""
    sim = Simulation(load_scenario("homelab"), seed=0)
    sim.start()  # places the agents
    agent = next(a for a in sim.cluster.agents if a.device.profile.name == "rtx3080")
    query = Query(0, 0.0, 0, "small", 2048, 100, 0, tuple(range(128)))
    cold = Job(query, agent.layer)
    assert sim.service.seconds(agent, [cold]) == pytest.approx(2048 / 2407 + 100 / 114.5)
    agent.kv = KVCache(1000)
    agent.kv.insert(tuple(range(64)))
    warm = Job(query, agent.layer)
    sim.coordinator.serving.prefill(agent, [warm], 0.0)
    assert warm.cached == 1024
    assert sim.service.seconds(agent, [warm]) == pytest.approx(1024 / 2407 + 100 / 114.5)
    assert query.first_token == pytest.approx(1024 / 2407)


def test_pending_overlap_counts_the_prompts_queued_or_served_on_a_replica() -> None:
    """A router's view of where a prompt's prefix will be cached when it is served: the
    query [1, 2, 3, 5] finds 2 blocks cached on A and 3 in the prompt queued there; 1 in the
    prompt C is serving; none on B, which has no cache."""
    from types import SimpleNamespace as NS

    from swarmsim.kvcache import common_prefix
    from swarmsim.snapshot import _overlap, _pending

    cached = KVCache(8)
    cached.insert([1, 2])

    def job(*blocks: int) -> NS:
        return NS(query=NS(blocks=blocks))

    a = NS(kv=cached, batch=[], queue=[job(7), job(1, 2, 3, 4)])
    b = NS(kv=None, batch=[job(1, 2, 3, 5)], queue=[])
    c = NS(kv=KVCache(8), batch=[job(1, 9)], queue=[])
    query = NS(blocks=(1, 2, 3, 5))
    overlap = _overlap(query, [a, b, c])  # type: ignore[arg-type]
    assert overlap.tolist() == [2, 0, 0]
    assert _pending(query, [a, b, c], overlap).tolist() == [3, 0, 1]  # type: ignore[arg-type]
    assert [common_prefix(x, (1, 2, 3)) for x in ((), (1, 2, 3), (1, 2), (2,), (1, 2, 4))] == [
        0, 3, 2, 0, 2,
    ]  # fmt: skip


class _ReferenceLRU:
    """The cache as first written: an OrderedDict moved one block at a time."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.blocks: OrderedDict[int, None] = OrderedDict()

    def match(self, blocks: list[int]) -> int:
        n = len(list(takewhile(self.blocks.__contains__, blocks)))
        for h in reversed(blocks[:n]):
            self.blocks.move_to_end(h)
        return n

    def insert(self, blocks: list[int]) -> None:
        for h in reversed(blocks):
            self.blocks[h] = None
            self.blocks.move_to_end(h)
        while len(self.blocks) > self.capacity:
            self.blocks.popitem(last=False)


def test_whole_prompt_moves_keep_the_block_by_block_lru_order() -> None:
    """Random prompts over 16 block ids (so with repeated blocks, which end where their last
    touch puts them): after every match and insert the held blocks and their order equal the
    block-by-block OrderedDict's."""
    rng = random.Random(7)
    for _ in range(300):
        capacity = rng.randint(1, 12)
        cache, ref = KVCache(capacity), _ReferenceLRU(capacity)
        for _ in range(30):
            blocks = [rng.randrange(16) for _ in range(rng.randint(0, 10))]
            if rng.random() < 0.5:
                assert cache.match(blocks) == ref.match(blocks)
            else:
                cache.insert(blocks)
                ref.insert(blocks)
            assert list(cache.blocks) == list(ref.blocks)


def _bisected_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def test_common_prefix_equals_the_bisection_over_slice_equality() -> None:
    """For lists, tuples and the two mixed (a list never equals a tuple: nothing shared)."""
    rng = random.Random(3)
    for _ in range(3000):
        a = [rng.randrange(3) for _ in range(rng.randint(0, 8))]
        b = a[: rng.randint(0, len(a))] + [rng.randrange(3) for _ in range(rng.randint(0, 4))]
        for x, y in ((a, b), (tuple(a), tuple(b)), (a, tuple(b)), (tuple(b), a)):
            assert common_prefix(x, y) == _bisected_prefix(x, y)
    assert common_prefix((1, 2, 3), (1, 2, 3, 4)) == 3 and common_prefix((1, 2), (1, 3)) == 1

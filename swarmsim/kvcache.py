"""A synthesizer replica's prefix (KV) cache: which prompt-prefix blocks it holds, LRU-evicted.

A query whose leading prefix blocks are cached on the replica that serves it skips their
prefill. The cache is consulted when the query's synthesizer job starts service (``match``)
and filled when it finishes (``insert``). Its capacity is the device's memory left after the
model's weights, in blocks (llm-d sizes its approximate prefix cache the same way:
(HBM - weights) / KV bytes per token, ../shared/REFERENCE.md). A prompt's blocks are touched
last to first, so that under pressure a prompt loses its tail before its head (vLLM frees a
finished request's blocks in reverse order for the same reason). The blocks are a plain dict in
least-recently-used order, changed by whole prompts at a time through C-level iterators
(``map`` over ``dict.pop`` and ``dict.update``): per block a Python-level move costs ~5x more.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import compress, count, islice, repeat, takewhile
from operator import ne

import numpy as np

from .errors import check


@dataclass(frozen=True)
class KVCacheConfig:
    """A layer's prefix cache; ``capacity_blocks`` overrides the size derived from memory."""

    capacity_blocks: int | None = None

    def __post_init__(self) -> None:
        ok = self.capacity_blocks is None or self.capacity_blocks >= 1
        check(ok, "capacity_blocks", self.capacity_blocks, "an integer >= 1 or null")


def capacity_blocks(
    cfg: KVCacheConfig,
    device_gb: float,
    model_gb: float,
    kv_bytes_per_token: float | None,
    block_tokens: int,
) -> int:
    """Blocks of ``block_tokens`` tokens that fit in the device memory the model leaves free."""
    if cfg.capacity_blocks is not None:
        return cfg.capacity_blocks
    check(kv_bytes_per_token is not None, "kv_cache", "...", "a model with kv_bytes_per_token")
    assert kv_bytes_per_token is not None
    free = max(device_gb - model_gb, 0.0) * 1e9  # hardware.yaml's GB are 10^9 bytes
    return max(int(free // (kv_bytes_per_token * block_tokens)), 1)


class KVCache:
    """The prefix blocks one replica holds, least recently used first, and its hit counts."""

    __slots__ = ("blocks", "capacity", "hits", "lookups")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.blocks: dict[int, None] = {}  # least recently used first
        self.hits = 0  # blocks found cached
        self.lookups = 0  # blocks looked up

    def match(self, blocks: Sequence[int]) -> int:
        """The number of leading ``blocks`` cached here (touched as used), counted as a lookup."""
        n = self.peek(blocks)
        if n:
            self._touch(blocks[n - 1 :: -1])
        self.lookups += len(blocks)
        self.hits += n
        return n

    def peek(self, blocks: Sequence[int]) -> int:
        """The number of leading ``blocks`` cached here, leaving the LRU order and the hit
        counts untouched (what a router may look at without serving the query)."""
        return len(list(takewhile(self.blocks.__contains__, blocks)))  # a C loop: 1.3x faster

    def insert(self, blocks: Sequence[int]) -> None:
        """Hold ``blocks`` (a served prompt's), evicting the least recently used beyond capacity."""
        self._touch(blocks[::-1])
        held = self.blocks
        excess = len(held) - self.capacity
        if excess > 0:
            _consume(map(held.__delitem__, list(islice(held, excess))))

    def _touch(self, touched: Sequence[int]) -> None:
        """Make ``touched`` the most recently used blocks, in the order touched: each moves
        to the end, so a block touched twice ends where its last touch puts it."""
        held = self.blocks
        _consume(map(held.pop, touched, repeat(None)))
        size = len(held)
        held.update(zip(touched, repeat(None)))
        if len(held) - size != len(touched):  # a repeated block: order by last touches
            last = list(dict.fromkeys(reversed(touched)))
            last.reverse()
            _consume(map(held.pop, last))
            held.update(zip(last, repeat(None)))

    @property
    def hit_rate(self) -> float | None:
        """Blocks hit / blocks looked up (None before any lookup)."""
        return self.hits / self.lookups if self.lookups else None

    @property
    def utilisation(self) -> float:
        """Fraction of the capacity holding blocks."""
        return len(self.blocks) / self.capacity


def pending_blocks(
    blocks: Sequence[int], overlap: np.ndarray, held: Iterable[Iterable[Sequence[int]]]
) -> np.ndarray:
    """Per agent row: the leading ``blocks`` cached there (``overlap``) or shared with a prompt
    sent there and not yet served (``held``: per row, those prompts' blocks), so cached by the
    time this prompt would be served. The simulator and the live coordinator both use it."""
    out = overlap.copy()
    if not blocks:
        return out
    for i, prompts in enumerate(held):
        shared = max((common_prefix(blocks, other) for other in prompts), default=0)
        if shared > out[i]:
            out[i] = shared
    return out


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """The largest ``m`` with ``a[:m] == b[:m]``: all of the shorter when one slice comparison
    says so (a conversation's later turn extends its earlier one), else the index of the first
    pair of block ids that differ, both found by C-level loops (a list never equals a tuple, so
    mixed kinds share nothing)."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    if a[n - 1] == b[n - 1] and a[:n] == b[:n]:  # the slices only when the last pair agrees
        return n
    first: int = next(compress(count(), map(ne, a, b)), n)
    return first if a[:first] == b[:first] else 0


def _consume(it: Iterator[object]) -> None:
    """Run an iterator to its end for its side effects, at C speed."""
    deque(it, maxlen=0)

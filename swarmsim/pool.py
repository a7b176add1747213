"""A pool of accepting agents indexed by outstanding jobs: least-loaded pick in O(1).

Join-shortest-queue over thousands of replicas (agi-1000 has ~1,100 per shard) must not
scan them all per query. Agents sit in buckets by their outstanding count; a send or an
answer moves one agent one bucket. Ties go to the agent that entered its bucket first,
which is deterministic for a given seed.

A bucket is an ``OrderedDict``, not a ``dict``: agents leave a bucket's front and rejoin at
its back, and a plain dict keeps the holes they leave until it resizes, so finding its first
entry scans them, O(bucket) a pick (2-10 us at agi-1000's 5,500 replicas a shard at 50,000
agents); an OrderedDict's first entry is the head of its linked list.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .cluster import Agent


class Pool:
    """Accepting agents of one layer (or of one shard), bucketed by outstanding jobs."""

    __slots__ = ("buckets", "lo", "size")

    def __init__(self) -> None:
        self.buckets: list[OrderedDict[int, Agent]] = [OrderedDict()]
        self.lo = 0  # no non-empty bucket below this index
        self.size = 0

    @classmethod
    def of(cls, agents: Iterable[Agent]) -> Pool:
        """A new pool holding ``agents``, exactly as ``add``-ing them in order would."""
        pool = cls()
        buckets = pool.buckets
        size = 0
        for agent in agents:
            k = agent.outstanding
            if len(buckets) <= k:  # a busy agent: a bucket per count up to its own
                buckets += [OrderedDict() for _ in range(k + 1 - len(buckets))]
            buckets[k][agent.id] = agent
            agent.pool = pool
            size += 1
        pool.size = size  # and ``lo`` stays 0: no bucket below 0
        return pool

    def add(self, agent: Agent) -> None:
        k = agent.outstanding
        while len(self.buckets) <= k:
            self.buckets.append(OrderedDict())
        self.buckets[k][agent.id] = agent
        self.size += 1
        if k < self.lo:
            self.lo = k
        agent.pool = self

    def remove(self, agent: Agent) -> None:
        del self.buckets[agent.outstanding][agent.id]
        self.size -= 1
        agent.pool = None

    def least(self) -> Agent | None:
        """The agent with the fewest outstanding jobs, or None when the pool is empty."""
        if not self.size:
            return None
        buckets, lo = self.buckets, self.lo
        while not buckets[lo]:
            lo += 1
        self.lo = lo
        return next(iter(buckets[lo].values()))

    def idle(self) -> Agent | None:
        """An agent with nothing outstanding, or None."""
        first = self.buckets[0]
        return next(iter(first.values())) if first else None


def add_outstanding(agent: Agent, delta: int) -> None:
    """Change ``agent.outstanding`` by ``delta``, keeping its pool's buckets in step."""
    pool = agent.pool
    old = agent.outstanding
    new = agent.outstanding = old + delta
    if pool is None:
        return
    del pool.buckets[old][agent.id]
    if len(pool.buckets) <= new:
        pool.buckets.append(OrderedDict())
    pool.buckets[new][agent.id] = agent
    if new < pool.lo:
        pool.lo = new

"""Shard-routing heuristics: which shards a query searches and which replica serves each.

Every controller decodes the ``ShardRoutingTask`` observation (``decode``) and answers with
one choice per shard: 0 skips it, ``r + 1`` searches it on replica slot ``r``. Only accepting
slots are ever chosen; a shard with no accepting replica is skipped. Unless a controller says
otherwise, every shard present is searched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from envs.routing import (
    IN_FLIGHT_SCALE,
    LATENCY_SCALE_S,
    MAX_REPLICAS,
    MAX_SHARDS,
    QUEUE_SCALE,
    REPLICA_FEATURES,
    SHARD_FEATURES,
)
from envs.task import unsquash

TASK = "shard-routing"


@dataclass(frozen=True)
class RoutingObservation:
    """The routing observation decoded back into counts, seconds and cosines."""

    present: np.ndarray  # (MAX_SHARDS,) bool: the shard exists
    relevance: np.ndarray  # (MAX_SHARDS,) cosine of query and shard centroid, in [-1, 1]
    accepting: np.ndarray  # (MAX_SHARDS, MAX_REPLICAS) bool: slot holds a replica taking work
    queue: np.ndarray  # (MAX_SHARDS, MAX_REPLICAS) jobs waiting
    in_flight: np.ndarray  # (MAX_SHARDS, MAX_REPLICAS) jobs sent and not yet answered
    latency_s: np.ndarray  # (MAX_SHARDS, MAX_REPLICAS) recent stage latency

    def slots(self, shard: int) -> np.ndarray:
        """The accepting replica slots of ``shard``, ascending."""
        return np.flatnonzero(self.accepting[shard])

    def lightest(self, shard: int, slots: np.ndarray) -> int:
        """Among ``slots``, the fewest in flight, then the shorter queue, then the lower slot."""
        order = np.lexsort((slots, self.queue[shard, slots], self.in_flight[shard, slots]))
        return int(slots[order[0]])


def decode(obs: np.ndarray) -> RoutingObservation:
    """Decode a ``ShardRoutingTask`` observation (layout in its class docstring)."""
    obs = np.asarray(obs, dtype=np.float64)
    shards = obs[: MAX_SHARDS * SHARD_FEATURES].reshape(MAX_SHARDS, SHARD_FEATURES)
    rep = shards[:, 2:].reshape(MAX_SHARDS, MAX_REPLICAS, REPLICA_FEATURES)
    return RoutingObservation(
        present=shards[:, 0] > 0.5,
        relevance=2.0 * shards[:, 1] - 1.0,
        accepting=(rep[..., 0] > 0.5) & (rep[..., 1] > 0.5),
        queue=np.rint(unsquash(rep[..., 2], QUEUE_SCALE)),
        in_flight=np.rint(unsquash(rep[..., 3], IN_FLIGHT_SCALE)),
        latency_s=unsquash(rep[..., 4], LATENCY_SCALE_S),
    )


class RoutingController(ABC):
    """Base: search the shards ``shards`` names, each on the slot ``pick`` returns."""

    task = TASK

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One choice per shard: 0 skips it, ``r + 1`` searches it on slot ``r``."""
        d = decode(obs)
        action = np.zeros(MAX_SHARDS, dtype=np.int64)
        for s in self.shards(d):
            slots = d.slots(s)
            if slots.size:
                action[s] = self.pick(d, int(s), slots) + 1
        return action

    def shards(self, d: RoutingObservation) -> np.ndarray:
        """The shards to search: every shard present."""
        return np.flatnonzero(d.present)

    @abstractmethod
    def pick(self, d: RoutingObservation, shard: int, slots: np.ndarray) -> int:
        """The slot among the (non-empty) accepting ``slots`` that serves ``shard``."""

    def reset(self) -> None:  # noqa: B027 (an optional hook: most routers keep no state)
        """Stateless unless overridden."""


class _Seeded(RoutingController):
    """A routing controller drawing from its own generator, seeded (0 unless given) so that
    the same scenario, seed and controller give the same run."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)


class RandomRouting(_Seeded):
    """Every shard present on a uniformly random accepting replica."""

    def pick(self, d: RoutingObservation, shard: int, slots: np.ndarray) -> int:
        return int(self.rng.choice(slots))


class RoundRobin(RoutingController):
    """Per shard, the next accepting slot after the one chosen last (wrapping around), so a
    replica leaving or returning does not restart the rotation."""

    def __init__(self) -> None:
        self.last = np.full(MAX_SHARDS, -1, dtype=np.int64)

    def pick(self, d: RoutingObservation, shard: int, slots: np.ndarray) -> int:
        after = slots[slots > self.last[shard]]
        slot = int(after[0] if after.size else slots[0])
        self.last[shard] = slot
        return slot

    def reset(self) -> None:
        self.last[:] = -1


class LeastOutstanding(RoutingController):
    """Join-shortest-queue: fewest jobs in flight, ties by shorter queue then lower slot."""

    def pick(self, d: RoutingObservation, shard: int, slots: np.ndarray) -> int:
        return d.lightest(shard, slots)


class PowerOfTwo(_Seeded):
    """Two distinct random accepting replicas, the one with fewer in flight (ties: queue,
    then lower slot); a shard with one accepting replica uses it."""

    def pick(self, d: RoutingObservation, shard: int, slots: np.ndarray) -> int:
        if slots.size == 1:
            return int(slots[0])
        return d.lightest(shard, self.rng.choice(slots, size=2, replace=False))


class SearchAllShards(RoutingController):
    """The recall-maximising, load-blind baseline: every shard on its lowest accepting slot."""

    def pick(self, d: RoutingObservation, shard: int, slots: np.ndarray) -> int:
        return int(slots[0])


class RelevanceThreshold(LeastOutstanding):
    """Shard pruning: rank the servable shards by relevance (cosine) and search the shortest
    prefix whose positive relevance covers fraction ``p`` of theirs (at least one shard).

    Shards without an accepting replica are left out of the ranking and of the total, so an
    outage does not shrink the relevance mass actually searched.
    """

    def __init__(self, p: float = 0.9) -> None:
        if not 0.0 < p <= 1.0:
            raise ValueError(f"p must be in (0, 1], got {p}")
        self.p = p

    def shards(self, d: RoutingObservation) -> np.ndarray:
        servable = np.flatnonzero(d.present & d.accepting.any(axis=1))
        if servable.size == 0:
            return servable
        ranked = servable[np.argsort(-d.relevance[servable], kind="stable")]
        mass = np.cumsum(np.maximum(d.relevance[ranked], 0.0))
        count = int(np.searchsorted(mass, self.p * mass[-1], side="left")) + 1
        return ranked[: min(count, ranked.size)]

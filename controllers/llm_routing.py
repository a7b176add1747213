"""LLM-routing heuristics: which synthesizer replica serves a query, prefix-cache aware or not.

Every controller decodes the ``LlmRoutingTask`` observation (``decode``) and answers with one
replica slot, chosen among the accepting slots (slot 0 when none accepts: the Task then
leaves the query to the layer's dispatch rule). Ties go to the lower slot.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from envs.llm_routing import MAX_REPLICAS, OUTSTANDING_SCALE, REPLICA_FEATURES
from envs.task import unsquash

TASK = "llm-routing"


@dataclass(frozen=True)
class LlmRoutingObservation:
    """The LLM-routing observation decoded per replica slot."""

    accepting: np.ndarray  # (MAX_REPLICAS,) bool: slot holds a replica taking work
    outstanding: np.ndarray  # (MAX_REPLICAS,) jobs sent and not yet answered
    queue: np.ndarray  # (MAX_REPLICAS,) outstanding as observed: squashed into [0, 1)
    overlap: np.ndarray  # (MAX_REPLICAS,) fraction of the prompt's blocks cached there
    kv_util: np.ndarray  # (MAX_REPLICAS,) fraction of its prefix cache in use
    pending: np.ndarray  # (MAX_REPLICAS,) overlap counting the prompts queued there as cached

    def prefix(self, pending_weight: float) -> np.ndarray:
        """The overlap a cost heuristic scores: ``pending_weight`` of the way from the cached
        fraction to the pending one (llm-d's approximate prefix index counts a prompt on its
        replica from when it is routed there: weight 1)."""
        return np.asarray(self.overlap + pending_weight * (self.pending - self.overlap))


def decode(obs: np.ndarray) -> LlmRoutingObservation:
    """Decode an ``LlmRoutingTask`` observation (layout in its class docstring)."""
    obs = np.asarray(obs, dtype=np.float64)
    rep = obs[: MAX_REPLICAS * REPLICA_FEATURES].reshape(MAX_REPLICAS, REPLICA_FEATURES)
    return LlmRoutingObservation(
        accepting=(rep[:, 0] > 0.5) & (rep[:, 1] > 0.5),
        outstanding=np.rint(unsquash(rep[:, 2], OUTSTANDING_SCALE)),
        queue=rep[:, 2],
        overlap=rep[:, 3],
        kv_util=rep[:, 4],
        pending=rep[:, 7],
    )


class LlmRoutingController(ABC):
    """Base: the accepting slot ``pick`` returns (slot 0 when none accepts)."""

    task = TASK

    def act(self, obs: np.ndarray) -> np.ndarray:
        """One replica slot for the query."""
        d = decode(obs)
        slots = np.flatnonzero(d.accepting)
        slot = self.pick(d, slots) if slots.size else 0
        return np.array([slot], dtype=np.int64)

    @abstractmethod
    def pick(self, d: LlmRoutingObservation, slots: np.ndarray) -> int:
        """The slot among the (non-empty, ascending) accepting ``slots``."""

    def reset(self) -> None:  # noqa: B027 (an optional hook: most routers keep no state)
        """Stateless unless overridden."""


def _lowest(slots: np.ndarray, cost: np.ndarray) -> int:
    """The slot of least ``cost`` (aligned with ``slots``), the lower slot on ties."""
    return int(slots[np.argmin(cost)])


class RoundRobin(LlmRoutingController):
    """The next accepting slot after the one chosen last (wrapping around)."""

    def __init__(self) -> None:
        self.last = -1

    def pick(self, d: LlmRoutingObservation, slots: np.ndarray) -> int:
        after = slots[slots > self.last]
        self.last = int(after[0] if after.size else slots[0])
        return self.last

    def reset(self) -> None:
        self.last = -1


class LeastOutstanding(LlmRoutingController):
    """Join-shortest-queue: the fewest outstanding jobs (the Task's heuristic)."""

    def pick(self, d: LlmRoutingObservation, slots: np.ndarray) -> int:
        return _lowest(slots, d.outstanding[slots])


class PowerOfTwo(LlmRoutingController):
    """Two distinct random accepting slots, the one with fewer outstanding (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def pick(self, d: LlmRoutingObservation, slots: np.ndarray) -> int:
        if slots.size == 1:
            return int(slots[0])
        two = np.sort(self.rng.choice(slots, size=2, replace=False))
        return _lowest(two, d.outstanding[two])


class KvOverlap(LlmRoutingController):
    """NVIDIA Dynamo's KV router: cost = ``overlap_weight`` x blocks to prefill + blocks in
    decode, lowest wins (../shared/REFERENCE.md). Blocks to prefill are the prompt's B blocks
    less those cached, B x (1 - overlap fraction); blocks in decode are approximated by the
    outstanding jobs x B (each as long as this prompt). B is common to every replica, so the
    cost per block of prompt, ``overlap_weight x (1 - overlap) + outstanding``, ranks alike.
    ``pending_weight`` (0..1) counts prompts queued on a replica as cached (see ``prefix``)."""

    def __init__(self, overlap_weight: float = 1.0, pending_weight: float = 0.0) -> None:
        if overlap_weight < 0:
            raise ValueError(f"overlap_weight must be >= 0, got {overlap_weight}")
        self.overlap_weight = overlap_weight
        self.pending_weight = _unit("pending_weight", pending_weight)

    def pick(self, d: LlmRoutingObservation, slots: np.ndarray) -> int:
        overlap = d.prefix(self.pending_weight)[slots]
        cost = self.overlap_weight * (1.0 - overlap) + d.outstanding[slots]
        return _lowest(slots, cost)


class LlmD(LlmRoutingController):
    """llm-d's inference scheduler: score = ``w_prefix`` x overlap fraction + ``w_queue`` x
    (1 - squashed queue) + ``w_kv`` x (1 - KV utilisation), highest wins; its default weights
    3, 2, 2 (../shared/REFERENCE.md). ``pending_weight`` as in ``KvOverlap``."""

    def __init__(
        self,
        w_prefix: float = 3.0,
        w_queue: float = 2.0,
        w_kv: float = 2.0,
        pending_weight: float = 0.0,
    ) -> None:
        self.w_prefix, self.w_queue, self.w_kv = w_prefix, w_queue, w_kv
        self.pending_weight = _unit("pending_weight", pending_weight)

    def pick(self, d: LlmRoutingObservation, slots: np.ndarray) -> int:
        score = (
            self.w_prefix * d.prefix(self.pending_weight)[slots]
            + self.w_queue * (1.0 - d.queue[slots])
            + self.w_kv * (1.0 - d.kv_util[slots])
        )
        return _lowest(slots, -score)


def _unit(name: str, value: float) -> float:
    """``value`` checked to lie in [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value

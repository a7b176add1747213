"""The Task contract: one learned decision, seen only through ``ClusterView`` and
``ControlPlane``.

A Task owns its observation and action spaces, turns a view into an observation, an action
into ControlPlane calls, and two successive views' totals into a reward. The Gymnasium
environment drives a Task with the simulator; the live runtime will drive the same Task
object with its coordinator. Nothing in a Task touches simulator internals.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from gymnasium import spaces

from swarmsim.view import ClusterView, ControlPlane, QueryOutcome, Totals


class Actor(Protocol):
    """Anything that maps an observation to an action (a controller)."""

    def act(self, obs: np.ndarray) -> Any: ...


class Task(ABC):
    """One decision of the swarm as an observation space, an action space and a reward."""

    name: ClassVar[str]  # registry name, e.g. "shard-routing"
    env_id: ClassVar[str]  # Gymnasium id, e.g. "swarmsim/ShardRouting-v0"
    version: ClassVar[int]  # bumped when the meaning of an observation or action changes
    # per query at retrieval ("route"), at its synthesizer ("configure" its strategy or
    # "place" it on a replica), or per interval ("control")
    decision: ClassVar[Literal["route", "configure", "place", "control"]]
    roles: ClassVar[tuple[str, ...] | None] = None  # agent rows the observation needs
    layer_stats: ClassVar[bool] = True  # whether the observation needs per-layer statistics

    observation_space: spaces.Box
    action_space: spaces.MultiDiscrete

    def __init__(self) -> None:
        self.view: ClusterView | None = None  # the view of the last observe()

    def observe(self, view: ClusterView) -> np.ndarray:
        """The observation for ``view``; ``act`` then refers to this view."""
        self.view = view
        return self.encode(view)

    @abstractmethod
    def encode(self, view: ClusterView) -> np.ndarray:
        """The observation vector for ``view`` (documented per Task)."""

    def act(self, action: Any, plane: ControlPlane) -> int:
        """Apply ``action`` to the view last observed; returns the number of sub-actions that
        were invalid and replaced by the Task's heuristic choice (never executed as given)."""
        if self.view is None:
            raise RuntimeError(f"{self.name}: act() before observe()")
        action = np.asarray(action, dtype=np.int64).reshape(-1)
        expected = self.action_space.nvec.shape[0]
        if action.shape[0] != expected:
            raise ValueError(
                f"{self.name}: action must have {expected} entries, got {action.shape[0]}"
            )
        return self.apply(self.view, action, plane)

    @abstractmethod
    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        """Turn a validated-shape action into ControlPlane calls."""

    @abstractmethod
    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        """The reward earned between two decisions, from the change in cumulative totals."""

    def outcome_reward(self, outcome: QueryOutcome) -> float | None:
        """The reward of one decided query once it ended, for controllers that learn online
        (``feedback``); None when the Task has no per-query reward (the default)."""
        return None

    @abstractmethod
    def heuristic(self, view: ClusterView) -> np.ndarray:
        """The built-in default decision as an action (what the simulator does unaided)."""

    def estimate(self, view: ClusterView, action: np.ndarray) -> dict[str, float]:
        """What ``action`` would do on ``view``, in the Task's own units, without applying it:
        how a shadow controller's differing choice is costed (empty unless overridden)."""
        return {}

    def action_masks(self, view: ClusterView) -> np.ndarray:
        """Flat boolean mask over the MultiDiscrete choices (all valid unless overridden)."""
        return np.ones(int(self.action_space.nvec.sum()), dtype=bool)


def squash(x: np.ndarray | float, scale: float) -> np.ndarray:
    """Map ``x >= 0`` monotonically into [0, 1): ``x / (x + scale)``; ``scale`` maps to 0.5."""
    x = np.asarray(x, dtype=np.float64)
    return x / (x + scale)


def unsquash(y: np.ndarray | float, scale: float) -> np.ndarray:
    """Invert ``squash``: ``scale * y / (1 - y)`` (a saturated 1 decodes as very large)."""
    y = np.asarray(y, dtype=np.float64)
    return scale * y / np.maximum(1.0 - y, np.finfo(np.float32).eps)


def unit_box(size: int, low: float = 0.0) -> spaces.Box:
    """A float32 observation box of ``size`` features in [low, 1]."""
    return spaces.Box(low=low, high=1.0, shape=(size,), dtype=np.float32)

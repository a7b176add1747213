"""Guardrails: a learned controller whose decision cannot be trusted gives way to a heuristic.

The wrapped controller's action is replaced by the fallback's when the observation lies
outside the ranges seen in training, when the policy raises, when it misses its deadline,
or when its action is not a valid action (wrong shape, NaN, out of range, or masked out).
Every decision and every fallback is counted by reason, for the metrics summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces

from .base import Controller
from .registry import make_controller

# The heuristic a Task falls back to: the simulator's own default decision for it.
DEFAULT_FALLBACK = {
    "shard-routing": "least-outstanding",
    "autoscaling": "static",
    "role-assignment": "static",
    "llm-routing": "least-outstanding",
}
REASONS = ("out_of_range", "raised", "deadline", "invalid")


class DecisionTimeout(RuntimeError):
    """A controller gave up on a decision past its deadline (counted as ``deadline``): what a
    hung controller amounts to where deciding takes no simulated time."""


class Guardrail:
    """Wraps ``policy``; on any trigger, ``fallback`` decides instead (and is counted)."""

    def __init__(
        self,
        policy: Controller,
        action_space: spaces.Space[Any],
        *,
        task: str | None = None,
        fallback: Controller | None = None,
        obs_low: np.ndarray | None = None,
        obs_high: np.ndarray | None = None,
        obs_tolerance: float = 1e-6,
        deadline_s: float | None = None,
        mask: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.task = task or policy.task
        self.policy = policy
        self.fallback = fallback or make_controller(self.task, DEFAULT_FALLBACK[self.task])
        self.action_space = action_space
        # bounds widened by the tolerance once, so the per-decision check is two compares
        self._low = None if obs_low is None else np.asarray(obs_low, np.float64) - obs_tolerance
        self._high = None if obs_high is None else np.asarray(obs_high, np.float64) + obs_tolerance
        self._nvec = getattr(action_space, "nvec", None)
        self._offsets = None
        if isinstance(action_space, spaces.MultiDiscrete):
            self._offsets = np.concatenate([[0], np.cumsum(action_space.nvec)[:-1]])
        self.deadline_s = deadline_s
        self.mask = mask
        self.decisions = 0
        self.fallbacks = dict.fromkeys(REASONS, 0)
        self.last_reason: str | None = None  # why the last decision fell back, if it did

    def act(self, obs: np.ndarray) -> np.ndarray:
        self.decisions += 1
        self.last_reason = None
        reason = self._out_of_range(obs)
        if reason is None:
            start = time.perf_counter()
            # one mask per decision, given to a policy that takes it and used to validate
            mask = None if self.mask is None else self.mask(obs)
            act_masked = getattr(self.policy, "act_masked", None)
            try:
                if mask is not None and act_masked is not None:
                    action = act_masked(obs, mask)
                else:
                    action = self.policy.act(obs)
            except DecisionTimeout:
                return self._fall_back(obs, "deadline")
            except Exception:  # a failing policy must never take the swarm down with it
                return self._fall_back(obs, "raised")
            if self.deadline_s is not None and time.perf_counter() - start > self.deadline_s:
                reason = "deadline"
            elif not self._valid(action, mask):
                reason = "invalid"
            else:
                return np.asarray(action, dtype=np.int64)
        return self._fall_back(obs, reason)

    def reset(self) -> None:
        self.policy.reset()
        self.fallback.reset()

    def stats(self) -> dict[str, Any]:
        """Decisions taken and fallbacks by reason, for the metrics summary."""
        return {"decisions": self.decisions, "fallbacks": dict(self.fallbacks)}

    def _fall_back(self, obs: np.ndarray, reason: str) -> np.ndarray:
        self.fallbacks[reason] += 1
        self.last_reason = reason
        return np.asarray(self.fallback.act(obs), dtype=np.int64)

    def _out_of_range(self, obs: np.ndarray) -> str | None:
        obs = np.asarray(obs, dtype=np.float64)
        if not np.isfinite(obs).all():
            return "out_of_range"
        if self._low is not None and (obs < self._low).any():
            return "out_of_range"
        if self._high is not None and (obs > self._high).any():
            return "out_of_range"
        return None

    def _valid(self, action: Any, mask: np.ndarray | None) -> bool:
        try:
            arr = np.asarray(action)
        except (TypeError, ValueError):
            return False
        if arr.shape != self.action_space.shape:
            return False
        if arr.dtype.kind != "i":  # floats must be finite whole numbers
            if arr.dtype.kind not in "fu" or not np.isfinite(arr).all():
                return False
            if not (arr == np.round(arr)).all():
                return False
        arr = arr.astype(np.int64)
        if self._offsets is not None:  # MultiDiscrete: bounds per head, then the mask
            if (arr < 0).any() or (arr >= self._nvec).any():
                return False
            return mask is None or bool(mask[self._offsets + arr].all())
        if not self.action_space.contains(arr):
            return False
        return mask is None or bool(mask[int(arr)])

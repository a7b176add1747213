"""Fault injection: a controller that decides as its Task's default heuristic, then starts to
fail after ``after`` decisions, so that guardrails and a live swarm's automatic detach can be
rehearsed on purpose (a game day), not discovered in an incident.

``mode`` says how it fails: ``raise`` (an exception), ``invalid`` (an action of the wrong
shape) or ``slow`` (the heuristic's action after sleeping ``delay_s``, past a deadline).
"""

from __future__ import annotations

import time

import numpy as np

from .guardrails import DEFAULT_FALLBACK
from .registry import make_controller

MODES = ("raise", "invalid", "slow")


class InjectedFault(RuntimeError):
    """What a ``faulty`` controller raises in ``raise`` mode."""


class FaultyController:
    """The Task's default heuristic for ``after`` decisions, then a fault on every decision."""

    def __init__(self, task: str, mode: str = "raise", after: int = 0, delay_s: float = 0.5):
        if mode not in MODES:
            raise ValueError(f"faulty: mode must be one of {MODES}, got {mode!r}")
        if not isinstance(after, int) or after < 0:
            raise ValueError(f"faulty: after must be an integer >= 0, got {after!r}")
        if not delay_s > 0:
            raise ValueError(f"faulty: delay_s must be > 0, got {delay_s!r}")
        self.task, self.mode, self.after, self.delay_s = task, mode, after, float(delay_s)
        self.inner = make_controller(task, DEFAULT_FALLBACK[task])
        self.decisions = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The heuristic's action until ``after`` decisions have passed, then the fault."""
        self.decisions += 1
        if self.decisions <= self.after:
            return self.inner.act(obs)
        if self.mode == "raise":
            raise InjectedFault(f"faulty: injected failure at decision {self.decisions}")
        if self.mode == "invalid":
            return np.array([-1], dtype=np.int64)
        time.sleep(self.delay_s)
        return self.inner.act(obs)

    def reset(self) -> None:
        """Start counting decisions again."""
        self.decisions = 0
        self.inner.reset()

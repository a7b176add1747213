"""Fault injection: a controller that decides as its Task's default heuristic, then starts to
fail after ``after`` decisions, so that guardrails and a live swarm's automatic detach can be
rehearsed on purpose (a game day), not discovered in an incident.

``mode`` says how it fails: ``raise`` (an exception), ``invalid`` (an action of the wrong
shape), ``nan`` (an action of the right shape, all NaN), ``slow`` (the heuristic's action after
sleeping ``delay_s``, past a deadline) or ``hang`` (never returns; only a preempting guardrail
gets the decision back). ``lasting`` decisions later it recovers (0: it never does), so the
circuit breaker's return to a recovered policy can be rehearsed too.
"""

from __future__ import annotations

import time

import numpy as np

from .guardrails import DEFAULT_FALLBACK
from .registry import make_controller

MODES = ("raise", "invalid", "nan", "slow", "hang")


class InjectedFault(RuntimeError):
    """What a ``faulty`` controller raises in ``raise`` mode."""


class FaultyController:
    """The Task's default heuristic for ``after`` decisions, then a fault on every decision."""

    def __init__(
        self, task: str, mode: str = "raise", after: int = 0, delay_s: float = 0.5, lasting: int = 0
    ):
        if mode not in MODES:
            raise ValueError(f"faulty: mode must be one of {MODES}, got {mode!r}")
        if not isinstance(after, int) or after < 0:
            raise ValueError(f"faulty: after must be an integer >= 0, got {after!r}")
        if not isinstance(lasting, int) or lasting < 0:
            raise ValueError(f"faulty: lasting must be an integer >= 0, got {lasting!r}")
        if not delay_s > 0:
            raise ValueError(f"faulty: delay_s must be > 0, got {delay_s!r}")
        self.task, self.mode, self.after, self.delay_s = task, mode, after, float(delay_s)
        self.lasting = lasting
        self.inner = make_controller(task, DEFAULT_FALLBACK[task])
        self.decisions = 0

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The heuristic's action until ``after`` decisions have passed, then the fault (for
        ``lasting`` decisions, or for good), then the heuristic's again."""
        self.decisions += 1
        faulty = self.decisions - self.after
        if faulty <= 0 or (self.lasting and faulty > self.lasting):
            return self.inner.act(obs)
        if self.mode == "raise":
            raise InjectedFault(f"faulty: injected failure at decision {self.decisions}")
        if self.mode == "invalid":
            return np.array([-1], dtype=np.int64)
        if self.mode == "nan":
            return np.full(np.shape(self.inner.act(obs)), np.nan)
        while self.mode == "hang":
            time.sleep(1.0)
        time.sleep(self.delay_s)
        return self.inner.act(obs)

    def reset(self) -> None:
        """Start counting decisions again."""
        self.decisions = 0
        self.inner.reset()

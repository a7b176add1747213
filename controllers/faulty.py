"""Fault injection: a controller that decides as its Task's default heuristic, then starts to
fail after ``after`` decisions, so that guardrails and a live swarm's automatic detach can be
rehearsed on purpose (a game day), not discovered in an incident.

``mode`` says how it fails: ``raise`` (an exception), ``invalid`` (an action of the wrong
shape) or ``slow`` (the heuristic's action after sleeping ``delay_s``, past a deadline).

:class:`FaultWindows` is the fault schedule's ``controller:MODE@T[+D]`` in the simulator: any
attached controller misbehaves so while such a fault is in force, behind a guardrail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Controller
from .guardrails import DEFAULT_FALLBACK, DecisionTimeout, Guardrail
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


class FaultWindows:
    """``inner``'s decisions, except while ``mode()`` names a controller fault: then it raises
    (crash), gives up past its deadline (hang), answers NaN (nan) or an out-of-range action
    (invalid), and ``struck()`` is told. Sits behind a guardrail, which uses the heuristic."""

    def __init__(
        self, inner: Any, mode: Callable[[], str | None], struck: Callable[[], None]
    ) -> None:
        self.inner, self.mode, self.struck = inner, mode, struck
        self.task = inner.task

    def act(self, obs: np.ndarray) -> np.ndarray:
        mode = self.mode()
        if mode is None:
            return np.asarray(self.inner.act(obs))
        self.struck()
        if mode == "crash":
            raise InjectedFault("controller:crash injected")
        if mode == "hang":
            raise DecisionTimeout("controller:hang injected")
        action = np.asarray(self.inner.act(obs))
        if mode == "nan":
            return np.full(action.shape, np.nan)
        return np.full(action.shape, -1, dtype=np.int64)

    def reset(self) -> None:
        self.inner.reset()


def with_fault_windows(
    controller: Controller, mode: Callable[[], str | None], struck: Callable[[], None]
) -> Controller:
    """``controller`` misbehaving while ``mode()`` says so, behind its guardrail (the one it
    has, or a new one falling back to its Task's heuristic); a Task without a heuristic to fall
    back to keeps its controller as it is."""
    if isinstance(controller, Guardrail):
        controller.policy = FaultWindows(controller.policy, mode, struck)
        return controller
    if controller.task not in DEFAULT_FALLBACK:
        return controller
    from envs.registry import make_task

    from .learned import OBS_MASKS

    task = make_task(controller.task)
    faulty = FaultWindows(controller, mode, struck)
    guard = Guardrail(faulty, task.action_space, task=task.name, mask=OBS_MASKS.get(task.name))
    for hook in ("feedback", "foresee"):  # the optional hooks envs.attach looks for
        if hasattr(controller, hook):
            setattr(guard, hook, getattr(controller, hook))
    return guard

"""The fault schedule's ``controller:MODE@T[+D]`` in the simulator: any attached controller
misbehaves so while such a fault is in force (crash, hang, nan, invalid), behind a guardrail,
which decides with the Task's heuristic instead and counts it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Controller
from .faulty import InjectedFault
from .guardrails import DEFAULT_FALLBACK, DecisionTimeout, Guardrail


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

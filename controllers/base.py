"""The controller interface and the registry of controllers by Task and name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from envs.registry import TASKS
from swarmsim.errors import UnknownNameError


@runtime_checkable
class Controller(Protocol):
    """Maps one observation of its Task to one action; nothing more."""

    task: str  # the Task name it decides for (envs.registry.TASKS)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action for ``obs`` (a valid action of the Task's action space)."""

    def reset(self) -> None:
        """Forget per-episode state (windows, counters); stateless controllers do nothing."""


# Online learners may also define ``feedback(obs, action, reward) -> None``: for a per-query
# Task with an ``outcome_reward``, ``envs.attach`` calls it when a query the controller decided
# ends, with that decision's observation and action and the Task's reward for the outcome. It
# is optional and not part of the protocol: heuristics and learned policies never see it.


Factory = Callable[..., Controller]
_REGISTRY: dict[str, dict[str, tuple[Factory, str]]] = {name: {} for name in TASKS}


def register(task: str, name: str, summary: str) -> Callable[[Factory], Factory]:
    """Class or function decorator: make ``name`` a controller of ``task``."""
    if task not in _REGISTRY:
        raise UnknownNameError("task", task, _REGISTRY)

    def wrap(factory: Factory) -> Factory:
        if name in _REGISTRY[task]:
            raise ValueError(f"controller {name!r} is already registered for {task}")
        _REGISTRY[task][name] = (factory, summary)
        return factory

    return wrap


def make_controller(task: str, name: str, **kwargs: Any) -> Controller:
    """A new controller of ``task`` by registry name; unknown names suggest the nearest."""
    _load_builtins()
    if task not in _REGISTRY:
        raise UnknownNameError("task", task, _REGISTRY)
    if name not in _REGISTRY[task]:
        raise UnknownNameError(f"{task} controller", name, _REGISTRY[task])
    return _REGISTRY[task][name][0](**kwargs)


def controller_names() -> dict[str, dict[str, str]]:
    """Registered controllers grouped by Task: ``{task: {name: one-line summary}}``."""
    _load_builtins()
    return {
        task: {n: s for n, (_, s) in sorted(entries.items())} for task, entries in _REGISTRY.items()
    }


def _load_builtins() -> None:
    """Import the modules whose decorators register the built-in controllers."""
    from . import faulty, roles, routing, scaling, strategy  # noqa: F401

"""The controller interface: ``act(obs) -> action`` for one Task, whatever decides it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


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

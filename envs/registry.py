"""Tasks by name, and their Gymnasium registrations (as data: entry-point strings)."""

from __future__ import annotations

from typing import Any

from gymnasium.envs.registration import register, registry

from swarmsim.errors import UnknownNameError

from .llm_routing import LlmRoutingTask
from .roles import RoleAssignmentTask
from .routing import ShardRoutingTask
from .scaling import AutoscalingTask
from .strategy import InferenceStrategyTask
from .task import Task

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (
        ShardRoutingTask,
        AutoscalingTask,
        RoleAssignmentTask,
        InferenceStrategyTask,
        LlmRoutingTask,
    )
}


def make_task(name: str, reward: Any = None) -> Task:
    """A fresh Task by registry name; unknown names suggest the nearest."""
    if name not in TASKS:
        raise UnknownNameError("task", name, TASKS)
    task: Task = TASKS[name](reward)  # type: ignore[call-arg]  # each Task takes its reward
    return task


def register_envs() -> None:
    """Register ``swarmsim/<Task>-v<version>`` for every Task (idempotent)."""
    for cls in TASKS.values():
        if cls.env_id not in registry:
            register(id=cls.env_id, entry_point="envs.sim_env:SwarmEnv", kwargs={"task": cls.name})

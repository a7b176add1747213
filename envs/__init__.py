"""Gymnasium environments: one Task per learned decision, driven by the simulator.

Importing ``envs`` registers ``swarmsim/ShardRouting-v0``, ``swarmsim/Autoscaling-v1``,
``swarmsim/RoleAssignment-v0``, ``swarmsim/InferenceStrategy-v0`` and ``swarmsim/LlmRouting-v1``;
``gymnasium.make("envs:swarmsim/ShardRouting-v0")`` imports it for you. Imports only ``swarmsim``.
"""

from .llm_routing import LlmRoutingTask
from .registry import TASKS, make_task, register_envs
from .roles import RoleAssignmentTask
from .routing import ShardRoutingTask
from .scaling import AutoscalingTask
from .sim_env import SwarmEnv
from .strategy import InferenceStrategyTask
from .task import Actor, Task

register_envs()

__all__ = [
    "TASKS",
    "Actor",
    "AutoscalingTask",
    "InferenceStrategyTask",
    "LlmRoutingTask",
    "RoleAssignmentTask",
    "ShardRoutingTask",
    "SwarmEnv",
    "Task",
    "make_task",
    "register_envs",
]

"""swarmsim: a SimPy discrete-event model of a distributed RAG agent swarm and its fabric.

The bottom layer of the project: it imports none of ``envs``, ``controllers``, ``live`` or
``experiments``. Start with :func:`load_scenario` and :class:`Simulation`. The names below
are imported on first use (PEP 562), so ``import swarmsim.errors`` (as every command does)
costs milliseconds, not the simulator's dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .scenario import Scenario
    from .scenario_files import builtin_scenarios, load_scenario
    from .simulation import Simulation
    from .view import ClusterView, ControlPlane, RoutePlan

_LAZY = {
    "ClusterView": "view",
    "ControlPlane": "view",
    "RoutePlan": "view",
    "Scenario": "scenario",
    "Simulation": "simulation",
    "builtin_scenarios": "scenario_files",
    "load_scenario": "scenario_files",
}
__all__ = [
    "ClusterView",
    "ControlPlane",
    "RoutePlan",
    "Scenario",
    "Simulation",
    "builtin_scenarios",
    "load_scenario",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'swarmsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once imported, a plain attribute
    return value

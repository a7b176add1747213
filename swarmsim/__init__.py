"""swarmsim: a SimPy discrete-event model of a distributed RAG agent swarm and its fabric.

The bottom layer of the project: it imports none of ``envs``, ``controllers``, ``live`` or
``experiments``. Start with :func:`load_scenario` and :class:`Simulation`.
"""

from .scenario import Scenario
from .scenario_files import builtin_scenarios, load_scenario
from .simulation import Simulation
from .view import ClusterView, ControlPlane, RoutePlan

__all__ = [
    "ClusterView",
    "ControlPlane",
    "RoutePlan",
    "Scenario",
    "Simulation",
    "builtin_scenarios",
    "load_scenario",
]

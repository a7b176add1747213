"""Attach a controller to a simulation through its Task: the decision hooks that observe,
ask the controller and apply its action via the ControlPlane."""

from __future__ import annotations

from typing import Any

from swarmsim.simulation import Simulation

from .task import Actor, Task


def decide(sim: Simulation, task: Task, controller: Actor, query: Any = None) -> int:
    """One decision: observe through ``task``, ask ``controller``, apply through ``sim``.

    Returns the number of sub-actions the Task did not execute as given."""
    view = sim.view(query, roles=task.roles, layer_stats=task.layer_stats)
    return task.act(controller.act(task.observe(view)), sim)


def attach(sim: Simulation, task: Task, controller: Actor) -> None:
    """Let ``controller`` take ``task``'s decisions in ``sim`` (before it starts)."""
    if task.decision == "route":
        if sim.on_route is not None:
            raise ValueError(f"{task.name}: queries are already routed by another hook")
        sim.on_route = lambda query: decide(sim, task, controller, query)
    else:
        sim.on_control.append(lambda: decide(sim, task, controller))

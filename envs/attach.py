"""Attach a controller to a simulation through its Task: the decision hooks that observe,
ask the controller and apply its action via the ControlPlane.

Online learners (bandits) hear back through an optional ``feedback(obs, action, reward)``
method: for a per-query Task with an ``outcome_reward``, each decision's observation and action
are kept until that query ends, then passed back with the Task's reward for its outcome.
Controllers without ``feedback`` are never told anything, and nothing is kept for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swarmsim.simulation import Simulation
from swarmsim.view import QueryOutcome

from .task import Actor, Task

Memory = dict[int, tuple[Any, Any]]  # query id -> (observation, action) of its decision


def decide(
    sim: Simulation, task: Task, controller: Actor, query: Any = None, memory: Memory | None = None
) -> int:
    """One decision: observe through ``task``, ask ``controller``, apply through ``sim``.

    Returns the number of sub-actions the Task did not execute as given. With ``memory``, the
    observation and action are kept under the query's id (for ``feedback``)."""
    view = sim.view(query, roles=task.roles, layer_stats=task.layer_stats)
    obs = task.observe(view)
    action = controller.act(obs)
    if memory is not None:
        memory[query.id] = (obs, action)
    return task.act(action, sim)


def attach(sim: Simulation, task: Task, controller: Actor) -> None:
    """Let ``controller`` take ``task``'s decisions in ``sim`` (before it starts)."""
    if task.decision == "control":
        sim.on_control.append(lambda: decide(sim, task, controller))
        return
    memory = _feedback(sim, task, controller)
    hook = "on_route" if task.decision == "route" else "on_configure"
    if getattr(sim, hook) is not None:
        raise ValueError(f"{task.name}: {hook} is already taken by another hook")
    setattr(sim, hook, lambda query: decide(sim, task, controller, query, memory))


def _feedback(sim: Simulation, task: Task, controller: Actor) -> Memory | None:
    """Wire ``controller.feedback`` to the ends of the queries it decided (or return None)."""
    learn = getattr(controller, "feedback", None)
    if learn is None or type(task).outcome_reward is Task.outcome_reward:
        return None
    memory: Memory = {}

    def on_outcome(outcome: QueryOutcome) -> None:
        decided = memory.pop(outcome.id, None)
        if decided is not None:
            learn(*decided, task.outcome_reward(outcome))

    sim.on_outcome = _chain(sim.on_outcome, on_outcome)
    return memory


def _chain(first: Callable | None, second: Callable) -> Callable:
    """``second`` alone, or both in order when a hook is already there."""
    if first is None:
        return second

    def both(outcome: QueryOutcome) -> None:
        first(outcome)
        second(outcome)

    return both

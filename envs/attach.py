"""Attach a controller to a simulation through its Task: the decision hooks that observe,
ask the controller and apply its action via the ControlPlane.

Online learners (bandits) hear back through an optional ``feedback(obs, action, reward)``
method: for a per-query Task with an ``outcome_reward``, each decision's observation and action
are kept until that query ends, then passed back with the Task's reward for its outcome.
Controllers without ``feedback`` are never told anything, and nothing is kept for them.
A reference controller (the autoscaling oracle) has a ``foresee(foresight)`` method: it is told
the run's future (``swarmsim.foresight``) here, which only the simulator knows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from swarmsim.coordinator import OutcomeHook
from swarmsim.foresight import foresight
from swarmsim.query import Query
from swarmsim.simulation import Simulation
from swarmsim.view import QueryOutcome, Swarm

from .task import Actor, Task

Memory = dict[int, tuple[Any, Any]]  # query id -> (observation, action) of its decision


@dataclass(frozen=True)
class Decision:
    """What one decision saw, chose and changed, and how long its parts took."""

    obs: np.ndarray
    action: Any
    invalid: int  # sub-actions the Task replaced by its heuristic's (never executed as given)
    observe_s: float  # building the view and the observation
    act_s: float  # the controller's ``act`` alone


def decide(swarm: Swarm, task: Task, controller: Actor, query: Any = None) -> Decision:
    """One decision, the same in the simulator and live: observe through ``task``, ask
    ``controller``, apply through ``swarm``'s ControlPlane."""
    t0 = time.perf_counter()
    obs = task.observe(swarm.view(query, task.roles, task.layer_stats))
    t1 = time.perf_counter()
    action = controller.act(obs)
    t2 = time.perf_counter()
    return Decision(obs, action, task.act(action, swarm), t1 - t0, t2 - t1)


def attach(sim: Simulation, task: Task, controller: Actor) -> None:
    """Let ``controller`` take ``task``'s decisions in ``sim`` (before it starts)."""
    foresee = getattr(controller, "foresee", None)
    if foresee is not None:
        foresee(foresight(sim))
    if task.decision == "control":

        def on_interval() -> None:
            decide(sim, task, controller)

        sim.on_control.append(on_interval)
        return
    memory = _feedback(sim, task, controller)
    hook = {"route": "on_route", "configure": "on_configure", "place": "on_place"}[task.decision]
    if getattr(sim, hook) is not None:
        raise ValueError(f"{task.name}: {hook} is already taken by another hook")

    def on_query(query: Query) -> None:
        made = decide(sim, task, controller, query)
        if memory is not None:
            memory[query.id] = (made.obs, made.action)

    setattr(sim, hook, on_query)


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


def _chain(first: OutcomeHook | None, second: OutcomeHook) -> OutcomeHook:
    """``second`` alone, or both in order when a hook is already there."""
    if first is None:
        return second

    def both(outcome: QueryOutcome) -> None:
        first(outcome)
        second(outcome)

    return both

"""The headline objective of each Task, in one table: what ``swarmsim tune`` minimises and
what a learned policy must beat (issue 16).

Every objective is measured per seed and averaged over seeds. Queries that fail, are dropped
or are still in flight past the SLO when the run ends must not make an arm look fast, so the
latency objectives count each of them as one query of latency ``penalty_s``: the scenario's
deadline (or 4 x its SLO where it sets none), and never less than the slowest completed
query. An objective with a ``Guard`` is minimised subject to the guard's mean over seeds
staying within a stated level (an Optuna constraint: a trial outside it is never the best
while one inside exists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from swarmsim.scenario import Scenario
    from swarmsim.simulation import Simulation

Measure = Callable[["Scenario", "Simulation", dict[str, Any]], float]


@dataclass(frozen=True)
class Guard:
    """A metric that must stay within ``level`` (``upper``: at most; else at least)."""

    metric: str
    upper: bool
    level: float  # the default level; swarmsim tune's ``option`` states another
    option: str
    measure: Measure

    def excess(self, value: float, level: float) -> float:
        """How far ``value`` is outside ``level`` (<= 0: within it)."""
        return value - level if self.upper else level - value


@dataclass(frozen=True)
class Objective:
    """What one Task minimises, per seed, in the summary's units."""

    task: str
    metric: str  # named as the summary's (flattened) metric it stands for
    description: str
    measure: Measure
    guard: Guard | None = None


def penalised_latencies(
    scenario: Scenario, sim: Simulation, summary: dict[str, Any]
) -> list[float]:
    """Post-warm-up latencies of completed queries, plus ``penalty_s`` for every failed,
    dropped or overdue one (see the module docstring)."""
    done = list(sim.metrics.latencies)
    unfinished = sim.metrics.late_failures + summary["slo"]["overdue_in_flight"]
    penalty = max([scenario.deadline_s or 4 * scenario.slo_latency_s, *done])
    return done + [penalty] * unfinished


def p99_s(scenario: Scenario, sim: Simulation, summary: dict[str, Any]) -> float:
    return float(np.percentile(penalised_latencies(scenario, sim, summary) or [np.inf], 99))


def mean_s(scenario: Scenario, sim: Simulation, summary: dict[str, Any]) -> float:
    return float(np.mean(penalised_latencies(scenario, sim, summary) or [np.inf]))


def gpu_hours(scenario: Scenario, sim: Simulation, summary: dict[str, Any]) -> float:
    return float(summary["gpu_hours"])


def violation_rate(scenario: Scenario, sim: Simulation, summary: dict[str, Any]) -> float:
    rate = summary["slo"]["violation_rate"]
    return 1.0 if rate is None else float(rate)  # nothing judged: nothing met the SLO


def recall(scenario: Scenario, sim: Simulation, summary: dict[str, Any]) -> float:
    value = summary["recall_at_k"]
    return 0.0 if value is None else float(value)


def strategy_loss(scenario: Scenario, sim: Simulation, summary: dict[str, Any]) -> float:
    """The inference-strategy reward per query (its default weights), negated: quality of the
    completed share, less latency (penalised) and SLO violations."""
    from envs.strategy import StrategyReward

    w, latencies = StrategyReward(), penalised_latencies(scenario, sim, summary)
    completed = len(sim.metrics.latencies) / max(len(latencies), 1)
    quality = (summary.get("answer_quality") or 0.0) * completed
    latency = float(np.mean(latencies)) if latencies else scenario.slo_latency_s
    return (
        w.latency * latency + w.slo * violation_rate(scenario, sim, summary) - w.quality * quality
    )


_SLO = Guard("slo.violation_rate", True, 0.05, "--max-violation", violation_rate)
_RECALL = Guard("recall_at_k", False, 0.95, "--min-recall", recall)
OBJECTIVES = {
    o.task: o
    for o in (
        Objective("llm-routing", "latency_s.p99", "p99 end-to-end latency (s)", p99_s),
        Objective("shard-routing", "latency_s.p99", "p99 end-to-end latency (s)", p99_s, _RECALL),
        Objective("role-assignment", "latency_s.mean", "mean end-to-end latency (s)", mean_s),
        Objective("autoscaling", "gpu_hours", "GPU-hours", gpu_hours, _SLO),
        Objective(
            "inference-strategy", "strategy_loss", "minus the reward per query", strategy_loss
        ),
    )
}


def measure(
    objective: Objective, scenario: Scenario, sim: Simulation, summary: dict[str, Any]
) -> dict[str, float]:
    """One seed's objective (and guard, if any) from a finished run."""
    out = {"objective": objective.measure(scenario, sim, summary)}
    if objective.guard is not None:
        out["guard"] = objective.guard.measure(scenario, sim, summary)
    return out


def mean_over(rows: Sequence[dict[str, float]], key: str) -> float:
    """The mean of ``key`` over per-seed rows."""
    return float(np.mean([row[key] for row in rows]))

"""``swarmsim eval``: controllers compared over seeds with common random numbers.

Each arm is one controller attached to its Task (the other decisions keep the simulator's
defaults). For a given seed every arm sees the same arrivals, query pool and failure draws,
because each concern draws from its own seeded stream; differences between arms on the same
seed are therefore paired, and their intervals are reported beside the per-arm ones.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from controllers.injected import with_fault_windows
from controllers.spec import Arm, resolve
from envs.attach import attach
from envs.registry import make_task
from swarmsim.errors import SwarmError
from swarmsim.scenario import Scenario
from swarmsim.simulation import Simulation

from .progress import Stage, Stages
from .stats import flatten, mean_ci


def run_arm(scenario: Scenario, seed: int, arm: Arm, record: bool = False) -> dict[str, Any]:
    """One simulation with ``arm``'s controller deciding its Task; the metrics summary. With
    ``record``, also ``latencies`` and a per-interval ``series`` of replicas and load."""
    sim = Simulation(scenario, seed=seed)
    attached = attach_arms(sim, [arm])
    recorder = Recorder(sim)
    if record:
        sim.on_control.append(recorder.sample)
    summary = sim.run()
    summary["controllers"] = controller_stats(attached)
    if record:
        summary["latencies"] = list(sim.metrics.latencies)
        summary["series"] = recorder.series
    return summary


Attached = dict[str, tuple[str, Any]]  # task -> (arm label, controller)


def attach_arms(sim: Simulation, arms: Sequence[Arm]) -> Attached:
    """A fresh controller of each arm deciding its Task in ``sim`` (before it runs); the
    simulator's defaults decide the other Tasks. One arm per Task."""
    tasks = [arm.task for arm in arms]
    if len(set(tasks)) < len(tasks):
        labels = ", ".join(arm.label for arm in arms)
        raise SwarmError(f"--controller: one controller per Task, got {labels}")
    attached = {arm.task: (arm.label, arm.build()) for arm in arms}
    injector = sim.injector
    if injector is not None and injector.controller_faults:
        for task, (label, controller) in attached.items():
            faulty = with_fault_windows(controller, injector.controller_mode, injector.struck)
            attached[task] = (label, faulty)
    for task, (_, controller) in attached.items():
        attach(sim, make_task(task), controller)
    return attached


def controller_stats(attached: Attached) -> dict[str, Any]:
    """The summary's ``controllers`` block: each attached controller's name and counters."""
    return {
        task: {"name": label, **(c.stats() if hasattr(c, "stats") else {})}
        for task, (label, c) in attached.items()
    }


class Recorder:
    """Per control interval: live replicas over all layers and the interval's arrival rate."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.submitted = 0
        self.series: dict[str, list[float]] = {"t": [], "replicas": [], "arrival_rate": []}

    def sample(self) -> None:
        sim = self.sim
        layers = sim.view(roles=()).layers.values()
        self.series["t"].append(sim.env.now)
        self.series["replicas"].append(sum(ly.running + ly.starting for ly in layers))
        arrived = sim.metrics.submitted - self.submitted
        self.series["arrival_rate"].append(arrived / sim.scenario.control_interval_s)
        self.submitted = sim.metrics.submitted


def evaluate(
    scenario: Scenario, specs: Sequence[str], seeds: Sequence[int], stages: Stages | None = None
) -> dict[str, Any]:
    """Per arm, mean and 95% CI of every summary metric over ``seeds``; and per arm after the
    first, the paired difference to the first arm. With ``stages``, the runs are a stage of
    them (opened once every spec resolved), with a line per finished arm."""
    arms = [resolve(s, scenario.name) for s in specs]
    title = f"evaluation: {len(arms)} controllers x {len(seeds)} seeds on {scenario.name}"
    with stages.stage(title) if stages else nullcontext() as stage:
        runs = {arm.label: _arm_runs(scenario, arm, seeds, stage, i / len(arms), 1 / len(arms))
                for i, arm in enumerate(arms)}  # fmt: skip
        if stage is not None:
            stage.result = f"{len(arms) * len(seeds)} runs"
    base = arms[0].label
    return {
        "scenario": scenario.name,
        "seeds": list(seeds),
        "controllers": {label: _aggregate(rows) for label, rows in runs.items()},
        "paired_vs": base,
        "paired": {
            label: _paired(runs[base], rows) for label, rows in runs.items() if label != base
        },
    }


def _arm_runs(
    scenario: Scenario,
    arm: Arm,
    seeds: Sequence[int],
    stage: Stage | None,
    before: float,
    share: float,
) -> list[dict[str, float]]:
    """``arm`` on each seed, flattened; ``stage`` moves over the arm's ``share`` of it (after
    ``before``) and says a line when the arm is done."""
    start, rows = time.perf_counter(), []
    for seed in seeds:
        rows.append(flatten(run_arm(scenario, seed, arm)))
        if stage is not None:
            stage.update(before + share * len(rows) / len(seeds))
    if stage is not None:
        shown = [f"{m} {_mean_of(rows, m)}" for m in ("latency_s.p99", "slo.violation_rate")]
        wall = (time.perf_counter() - start) / len(seeds)
        stage.say(f"  {arm.label}: {len(seeds)} seeds, {', '.join(shown)}, {wall:.1f} s per run")
    return rows


def _mean_of(rows: list[dict[str, float]], metric: str) -> str:
    values = [row[metric] for row in rows if row.get(metric) is not None]
    return f"{sum(values) / len(values):.4g}" if values else "n/a"


def _aggregate(rows: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    metrics = sorted({k for row in rows for k in row})
    return {m: mean_ci(row[m] for row in rows if m in row) for m in metrics}


def _paired(base: list[dict[str, float]], other: list[dict[str, float]]) -> dict[str, Any]:
    metrics = sorted(set(base[0]) & set(other[0]))
    return {
        m: mean_ci(o[m] - b[m] for b, o in zip(base, other, strict=True) if m in b and m in o)
        for m in metrics
    }

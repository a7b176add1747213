"""The learned-vs-tuned comparison (issue 16, section 3): per Task the trained policy and
every heuristic at its tuned settings over the same held-out seeds, on the Task's scenario,
its control twin and a trace, run by ``spread_run.run_jobs``. Per seed each run scores the
Task's objective (``experiments.objectives``: penalised latency or GPU-hours) and its side
condition; ``learned_stats`` turns the rows into the paired verdicts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from controllers.registry import controller_spec
from controllers.spec import resolve
from controllers.tuned import read_tuned, tuned_path
from swarmsim.errors import SwarmError, UnknownNameError
from swarmsim.simulation import Simulation

from .evaluate import attach_arms
from .learned import COMPARISONS, LEARNED, Comparison, task_of
from .learned_stats import scenario_result
from .objectives import OBJECTIVES, penalised_latencies
from .spread_run import Job, run_jobs, scenario_of
from .stats import flatten

BESIDE = ("latency_s.p50", "latency_s.p99", "recall_at_k", "slo.violation_rate", "gpu_hours")


def policy_dir(run: Path) -> Path | None:
    """The artifact of the training run in ``run`` (its ``policy/`` or the run directory
    itself when that holds the manifest); None while it is not trained."""
    for path in (run / "policy", run):
        if (path / "manifest.json").is_file():
            return path
    return None


def heuristic_arms(comparison: Comparison, names: Sequence[str] = ()) -> list[dict[str, str]]:
    """Each heuristic's (or of ``names``, the references) label, spec and settings note:
    ``NAME@tuned`` with the parameters ``swarmsim tune`` wrote for the Task's scenario (used
    on its twin and trace too: the heuristic, like the policy, is fitted to the scenario
    only), else its defaults."""
    task, tuned = comparison.task, read_tuned(comparison.scenario).get(comparison.task, {})
    arms = []
    for name in names or comparison.heuristics:
        entry = tuned.get(name)
        if entry is not None:
            params = ":".join(f"{k}={v}" for k, v in sorted(entry["params"].items()))
            source = f"{entry['trials']} trials, {tuned_path(comparison.scenario)}"
            arms.append({"label": f"{name}@tuned", "spec": f"{task}={name}:{params}".rstrip(":"),
                         "note": f"tuned: {params or 'no parameters'} ({source})"})  # fmt: skip
        elif controller_spec(task, name).params:
            arms.append({"label": f"{name}@defaults", "spec": f"{task}={name}",
                         "note": "(defaults: not tuned)"})  # fmt: skip
        else:
            arms.append({"label": name, "spec": f"{task}={name}", "note": "nothing to tune"})
    return arms


def run_job(job: Job) -> dict[str, Any]:
    """One run: the Task's objective and side condition, the metrics beside them, the
    penalised latencies (pooled over seeds for the tail interval), submitted count, wall."""
    start = time.perf_counter()
    arm = resolve(job.spec)
    scenario = scenario_of(job.scenario, job.overrides)
    sim = Simulation(scenario, seed=job.seed)
    attach_arms(sim, [arm])
    summary: dict[str, Any] = dict(sim.run())
    flat = flatten(summary)
    side = COMPARISONS[arm.task].side
    return {
        "objective": OBJECTIVES[arm.task].measure(scenario, sim, summary),
        "side": side.measure(scenario, sim, summary),
        "side_measured": flat.get(side.metric) is not None,
        "metrics": {m: flat.get(m) for m in BESIDE},
        "latencies": penalised_latencies(scenario, sim, summary),
        "submitted": summary["queries"]["submitted"],
        "wall_s": time.perf_counter() - start,
    }


def plan(
    tasks: Sequence[str], seeds: Sequence[int], overrides: Sequence[str], explicit: bool
) -> tuple[list[Job], dict[str, dict[str, Any]]]:
    """The jobs of every Task whose policy is trained, and per Task its setup (scenarios,
    arms) or ``status: not trained yet``; a Task named ``explicit``ly must be trained."""
    todo: list[Job] = []
    setup: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if task not in COMPARISONS:
            raise UnknownNameError("Task", task, COMPARISONS)
        c = COMPARISONS[task]
        policy = policy_dir(c.artifact_dir)
        if policy is None:
            if explicit:
                raise SwarmError(f"{task}: no trained policy in {c.artifact_dir}; train it "
                                 f"first (swarmsim train experiments/configs/...)")  # fmt: skip
            setup[task] = {"status": "not trained yet", "artifact": str(c.artifact_dir)}
            continue
        refs = heuristic_arms(c, c.references) if c.references else []
        arms = [{"label": LEARNED, "spec": str(policy), "note": str(policy)}, *heuristic_arms(c),
                *({**a, "note": f"reference: {a['note']}"} for a in refs)]  # fmt: skip
        scenarios = {"scenario": c.scenario, "twin": c.twin, "trace": c.trace}
        setup[task] = {"status": "compared", "artifact": str(policy), "arms": arms,
                       "references": [a["label"] for a in refs],
                       "scenarios": scenarios, "no_trace": c.no_trace}  # fmt: skip
        for name in (s for s in scenarios.values() if s is not None):
            for arm in arms:
                todo += [Job(name, tuple(overrides), arm["label"], arm["spec"], s) for s in seeds]
    return todo, setup


def run_compare(
    tasks: Sequence[str],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    explicit: bool = False,
    workers: int = 2,
    say: Callable[[str], None] = print,
    update: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Every Task's comparison over ``workers`` processes, one line per finished arm (and
    ``update``, see ``run_jobs``); per Task its setup and, per scenario it was run on,
    ``learned_stats.scenario_result``."""
    start = time.perf_counter()
    todo, setup = plan(tasks, seeds, overrides, explicit)
    rows = run_jobs(todo, len(seeds), run_job, _progress_line, say, workers, update) if todo else {}
    for task, s in setup.items():
        if s["status"] != "compared":
            continue
        labels = [a["label"] for a in s["arms"]]
        s["results"] = {
            role: scenario_result(task, {lb: rows[(name, lb)] for lb in labels}, s["references"])
            for role, name in s["scenarios"].items()
            if name is not None
        }
    return {
        "seeds": list(seeds),
        "overrides": list(overrides),
        "wall_s": time.perf_counter() - start,
        "workers": workers,
        "tasks": setup,
    }


def _progress_line(n: int, total: int, job: Job, done: dict[int, dict[str, Any]]) -> str:
    task = task_of(job.scenario)
    mean = sum(r["objective"] for r in done.values()) / len(done)
    wall = sum(r["wall_s"] for r in done.values()) / len(done)
    return (
        f"[{n}/{total}] {job.scenario} {job.label}: {len(done)} seeds, "
        f"{OBJECTIVES[task].metric} {mean:.4g}, {wall:.1f} s wall per run"
    )

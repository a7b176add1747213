"""The decision-spread experiment (issue 15): every arm of a scenario's Task over the same
seeds, run in a process pool; per arm the mean and 95% interval of each metric, the paired
difference to the best arm, and the spread between the best and the worst sensible arm.

Common random numbers: each concern draws from its own seeded stream (swarmsim/rng.py), so on
one seed every arm sees the same arrivals; the result checks this on the submitted count.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from controllers.spec import resolve
from swarmsim.errors import SwarmError, UnknownNameError
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario

from .evaluate import run_arm
from .replay import TraceReplay, replay_scenario
from .spread import PLANS, REPLAYS, SCENARIOS
from .spread_stats import headline_block, interval
from .stats import flatten

CHECKOUT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    """One simulation: ``spec`` (``TASK=NAME[:k=v]``) deciding its Task on ``scenario``."""

    scenario: str
    overrides: tuple[str, ...]
    label: str
    spec: str
    seed: int


def run_job(job: Job) -> dict[str, Any]:
    """The job's metrics (None where not measured), submitted count and wall seconds."""
    start = time.perf_counter()
    summary = run_arm(scenario_of(job.scenario, job.overrides), job.seed, resolve(job.spec))
    flat = flatten(summary)
    metrics = {m: flat.get(m) for m in _metrics(SCENARIOS[job.scenario])}
    wall = time.perf_counter() - start
    return {"metrics": metrics, "submitted": summary["queries"]["submitted"], "wall_s": wall}


@cache
def scenario_of(ref: str, overrides: tuple[str, ...]) -> Scenario:
    """A built-in scenario, or a ``TRACE@SCENARIO`` replay (``spread.REPLAYS``)."""
    replay = REPLAYS.get(ref)
    if replay is None:
        return load_scenario(ref, list(overrides))
    path = CHECKOUT / replay.path
    if not path.is_file():
        raise SwarmError(f"{ref}: trace {path} not found (../shared beside the checkout)")
    trace = TraceReplay(path, "auto", replay.columns, replay.time_scale, 1.0, None,
                        replay.time_unit, replay.block_tokens)  # fmt: skip
    return replay_scenario(trace, replay.scenario, [*replay.overrides, *overrides], None)


def _metrics(task: str) -> tuple[str, ...]:
    plan = PLANS[task]
    return (*plan.headline, *(m for m in plan.beside if m not in plan.headline))


def jobs(
    scenarios: Sequence[str], seeds: Sequence[int], overrides: Sequence[str], only: Sequence[str]
) -> list[Job]:
    """Every (scenario, arm, seed), arms of each scenario's Task in plan order; ``only``, if
    given, keeps the arms of those labels (each must be an arm of some scenario's Task)."""
    for name in scenarios:
        if name not in SCENARIOS:
            raise UnknownNameError("spread scenario", name, SCENARIOS)
    known = {a for name in scenarios for a in PLANS[SCENARIOS[name]].arms}
    for label in only:
        if label not in known:
            raise UnknownNameError("arm", label, known)
    out = []
    for name in scenarios:
        task = SCENARIOS[name]
        for label in PLANS[task].arms:
            if not only or label in only:
                out += [Job(name, tuple(overrides), label, f"{task}={label}", s) for s in seeds]
    return out


def run_spread(
    scenarios: Sequence[str],
    seeds: Sequence[int],
    overrides: Sequence[str] = (),
    only: Sequence[str] = (),
    workers: int = 2,
    say: Callable[[str], None] = print,
    update: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Run every job over ``workers`` processes, ``say`` one line per finished arm (``update``
    the fraction of jobs done after each); the result per scenario (see ``scenario_result``)
    with the run's seeds and wall time."""
    start = time.perf_counter()
    todo = jobs(scenarios, seeds, overrides, only)
    rows = run_jobs(todo, len(seeds), run_job, _progress_line, say, workers, update)
    return {
        "seeds": list(seeds),
        "overrides": list(overrides),
        "wall_s": time.perf_counter() - start,
        "workers": workers,
        "scenarios": {
            name: scenario_result(name, {lb: r for (sc, lb), r in rows.items() if sc == name})
            for name in scenarios
        },
    }


Rows = dict[tuple[str, str], dict[int, dict[str, Any]]]  # (scenario, label) -> seed -> row
ArmLine = Callable[[int, int, Job, dict[int, dict[str, Any]]], str]


def run_jobs(
    todo: Sequence[Job],
    n_seeds: int,
    runner: Callable[[Job], dict[str, Any]],
    line: ArmLine,
    say: Callable[[str], None],
    workers: int,
    update: Callable[[float], None] | None = None,
) -> Rows:
    """``runner`` on every job over ``workers`` processes (jobs of one arm adjacent, one per
    seed); ``say(line(n, total, job, rows))`` as the n-th arm's last seed finishes, ``update``
    (the fraction of jobs done) as any job does. Every spec and scenario is resolved here
    first, so a bad arm or a missing trace fails before any run."""
    if workers < 1:
        raise SwarmError(f"--workers: expected at least 1, got {workers}")
    for job in {(j.scenario, j.spec): j for j in todo}.values():
        resolve(job.spec)
        scenario_of(job.scenario, job.overrides)
    rows: Rows = {}
    arms_total = len({(j.scenario, j.label) for j in todo})
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for n, (job, row) in enumerate(zip(todo, pool.map(runner, todo), strict=True), 1):
            if update is not None:
                update(n / len(todo))
            done = rows.setdefault((job.scenario, job.label), {})
            done[job.seed] = row
            if len(done) == n_seeds:
                say(line(len(rows), arms_total, job, done))
    return rows


def _progress_line(n: int, total: int, job: Job, done: dict[int, dict[str, Any]]) -> str:
    metric = PLANS[SCENARIOS[job.scenario]].headline[0]
    values = [r["metrics"][metric] for r in done.values() if r["metrics"][metric] is not None]
    shown = f"{sum(values) / len(values):.4g}" if values else "n/a"
    wall = sum(r["wall_s"] for r in done.values()) / len(done)
    return (
        f"[{n}/{total}] {job.scenario} {job.label}: {len(done)} seeds, {metric} {shown}, "
        f"{wall:.1f} s wall per run"
    )


def scenario_result(name: str, runs: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """One scenario's arms (per metric mean and interval, the value on each seed in seed order;
    wall per run), the check of common random numbers, and per headline metric its best arm,
    spread and paired differences."""
    task = SCENARIOS[name]
    plan = PLANS[task]
    seeds = sorted(next(iter(runs.values())))
    metrics = [m for m in _metrics(task) if _measured(runs, m)]
    submitted = {s: sorted({r[s]["submitted"] for r in runs.values()}) for s in seeds}
    return {
        "task": task,
        "baseline": plan.baseline,
        "arms": {
            label: {
                "sensible": label not in plan.unsensible,
                "wall_s_per_run": sum(r["wall_s"] for r in rows.values()) / len(rows),
                "metrics": {m: interval(_values(rows, m), m) for m in metrics},
                "per_seed": {m: list(_per_seed(rows, m).values()) for m in metrics},
            }
            for label, rows in runs.items()
        },
        "same_arrivals": all(len(counts) == 1 for counts in submitted.values()),
        "submitted": {str(s): counts for s, counts in submitted.items()},
        "headline": {
            m: headline_block(m, {lb: _per_seed(rows, m) for lb, rows in runs.items()}, plan)
            for m in plan.headline
            if m in metrics
        },
    }


def _measured(runs: dict[str, dict[int, dict[str, Any]]], metric: str) -> bool:
    return any(r["metrics"][metric] is not None for rows in runs.values() for r in rows.values())


def _values(rows: dict[int, dict[str, Any]], metric: str) -> list[float]:
    return [r["metrics"][metric] for r in rows.values() if r["metrics"][metric] is not None]


def _per_seed(rows: dict[int, dict[str, Any]], metric: str) -> dict[int, float | None]:
    return {seed: r["metrics"][metric] for seed, r in sorted(rows.items())}

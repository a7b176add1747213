"""A sweep's search: ``trials`` points of the space, each run on every seed and scored by the
mean of the search's metric; proposed by a seeded TPE sampler, Optuna's here (trials in
batches of ``jobs``, their cells in the pool) and Ray Tune's OptunaSearch on Ray. A resumed
search first completes the trials an interruption cut short, then tells the sampler every
stored trial and proposes only the missing ones (its seed moved on by their number, so it
does not propose the first points again)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from swarmsim.errors import SwarmError

from .sweep_table import Cell, Row, Table

if TYPE_CHECKING:
    from .sweep import Backend, Context, Outcome
    from .sweep_config import Dimension, SweepConfig

Told = dict[int, tuple[dict[str, Any], float]]  # trial number -> (its point, its objective)
RunTrials = Callable[[Sequence[tuple[int, dict[str, Any]]]], list[Row]]


def distributions(space: dict[str, Dimension]) -> dict[str, Any]:
    """The space as Optuna distributions (what both samplers take)."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.type == "categorical":
            out[name] = d.CategoricalDistribution(list(dim.choices))
        elif dim.type == "int":
            out[name] = d.IntDistribution(int(dim.low or 0), int(dim.high or 0), log=dim.log)
        else:
            out[name] = d.FloatDistribution(float(dim.low or 0), float(dim.high or 0), log=dim.log)
    return out


def trial_cells(cfg: SweepConfig, point: dict[str, Any], trial: int) -> list[Cell]:
    """The cells of one trial: the point on every seed."""
    seeds: Sequence[int | None] = cfg.seeds or (None,)
    args = {**cfg.fixed, **point}
    return [Cell(cfg.run, args if s is None else {**args, "seed": s}, trial) for s in seeds]


def objective(cfg: SweepConfig, rows: Sequence[Row]) -> float:
    """The mean of the search's metric over a trial's rows; a metric no row has is an error
    naming the field, with the nearest metric the run does have."""
    assert cfg.search is not None
    metric = cfg.search.metric
    for row in rows:
        if metric not in row["metrics"]:
            near = difflib.get_close_matches(metric, row["metrics"], n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise SwarmError(f"search.metric: {metric!r} is not a metric of these {cfg.run} "
                             f"runs{hint}")  # fmt: skip
    return float(sum(r["metrics"][metric] for r in rows)) / len(rows)


def stored_points(cfg: SweepConfig, table: Table) -> dict[int, dict[str, Any]]:
    """The point of each trial in the table (by trial number)."""
    assert cfg.search is not None
    out: dict[int, dict[str, Any]] = {}
    for row in table.rows.values():
        point = {k: row["args"][k] for k in cfg.search.space if k in row["args"]}
        if row.get("trial") is not None and len(point) == len(cfg.search.space):
            out.setdefault(int(row["trial"]), point)
    return out


def search(cfg: SweepConfig, table: Table, ctx: Context, backend: Backend, outcome: Outcome,
           say: Callable[[str], None], update: Callable[[float], None] | None) -> None:  # fmt: skip
    """Run the search of ``cfg`` until the table holds its trials; the best in ``outcome``."""
    from .sweep import Progress, run_missing

    assert cfg.search is not None
    points = stored_points(cfg, table)
    seeds = max(len(cfg.seeds), 1)
    progress = Progress(cfg, max(cfg.search.trials, len(points)) * seeds, say, update)

    def run_trials(numbered: Sequence[tuple[int, dict[str, Any]]]) -> list[Row]:
        cells = [c for n, point in numbered for c in trial_cells(cfg, point, n)]
        return run_missing(cells, table, ctx, backend, outcome, progress)

    told = tell(cfg, sorted(points.items()), run_trials)
    tuner = getattr(backend, "tune", None)
    if tuner is not None:
        tuner(cfg, told, table, ctx, outcome, progress)
    else:
        optuna_search(cfg, told, run_trials)
    table.rewrite(c.key for n, (point, _) in sorted(told.items())
                  for c in trial_cells(cfg, point, n))  # fmt: skip
    best = (min if cfg.search.direction == "minimize" else max)(told, key=lambda n: told[n][1])
    outcome.best = {"trial": best, "point": told[best][0], cfg.search.metric: told[best][1]}


def tell(cfg: SweepConfig, numbered: Sequence[tuple[int, dict[str, Any]]],
         run_trials: RunTrials) -> Told:  # fmt: skip
    """Run the missing cells of ``numbered`` trials; each trial's point and objective."""
    rows = run_trials(numbered)
    return {n: (point, objective(cfg, [r for r in rows if r.get("trial") == n]))
            for n, point in numbered}  # fmt: skip


def optuna_search(cfg: SweepConfig, told: Told, run_trials: RunTrials) -> None:
    """Optuna's seeded TPE over the space, told the stored trials, asked for the rest in
    batches of ``jobs`` (so that a batch's cells run in parallel)."""
    import optuna

    assert cfg.search is not None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = distributions(cfg.search.space)
    sampler = optuna.samplers.TPESampler(seed=cfg.search.seed + len(told))
    study = optuna.create_study(direction=cfg.search.direction, sampler=sampler)
    for point, value in (told[n] for n in sorted(told)):
        study.add_trial(optuna.trial.create_trial(params=point, distributions=space, value=value))
    number = max(told, default=-1) + 1
    while len(told) < cfg.search.trials:
        asked = [study.ask(space) for _ in range(min(cfg.jobs, cfg.search.trials - len(told)))]
        numbered = [(number + i, dict(t.params)) for i, t in enumerate(asked)]
        results = tell(cfg, numbered, run_trials)
        for (n, _), trial in zip(numbered, asked, strict=True):
            study.tell(trial, results[n][1])
            told[n] = results[n]
        number += len(asked)

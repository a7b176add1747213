"""The Ray backend of ``swarmsim sweep``: a grid's cells as Ray tasks (one CPU each), a
search as a Ray Tune run of OptunaSearch (seeded TPE, the same space as the local search),
its rows written by a driver-side callback as each trial reports. Ray (the optional extra
``.[ray]``) is imported by this module only, and it only by ``--backend ray``.

Without ``--address`` a local Ray instance is started with ``jobs`` CPUs and a capped object
store, and shut down on every path. With an address, the cluster's nodes need swarmsim (and
any file a cell names, at the same path) installed; cell outputs are written where they run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# before Ray Tune is imported: its plain reporter (silent at verbose=0, where the newer one
# still prints a table of the run's configuration), and no per-trial CSV/JSON/TensorBoard
# logs (the sweep's table is its record)
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")

import ray
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from live.ray_launcher import init_ray
from swarmsim.errors import SwarmError

from .sweep import Context, Finished, Outcome, Progress, timed_cell
from .sweep_config import SweepConfig
from .sweep_search import Told, distributions, objective, trial_cells
from .sweep_table import Cell, Table


@contextmanager
def ray_session(address: str | None, jobs: int) -> Iterator[RayBackend]:
    """Ray started (a local instance of ``jobs`` CPUs) or joined (``address``), then shut
    down whatever happens; a Ray this process already runs (a notebook's ``ray.init()``, a
    test's) is used as it is and left running (``live.ray_launcher.init_ray``, which the live
    swarm's Ray launcher shares)."""
    started = init_ray(address, jobs)
    try:
        yield RayBackend(jobs)
    finally:
        if started:
            ray.shutdown()


class RayBackend:
    """Cells as Ray tasks; a search as a Ray Tune run (``tune``)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, cells: Sequence[Cell], ctx: Context) -> Finished:
        remote = ray.remote(num_cpus=1, max_retries=0)(timed_cell)
        pending = {remote.remote(c.run, c.args, ctx.base, ctx.out(c), ctx.keep): c
                   for c in cells}  # fmt: skip
        try:
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                cell = pending.pop(ready)
                try:
                    done = ray.get(ready)
                except ray.exceptions.RayTaskError as err:
                    raise _cause(err) from None
                yield cell, *done
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def tune(self, cfg: SweepConfig, told: Told, table: Table, ctx: Context, outcome: Outcome,
             progress: Progress) -> None:  # fmt: skip
        """Ray Tune's OptunaSearch told the stored trials, run for the missing ones with
        ``jobs`` at once; each trial's rows added to ``table`` as it reports."""
        import optuna

        assert cfg.search is not None
        todo = cfg.search.trials - len(told)
        if todo <= 0:
            return
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        numbered = sorted(told.items())
        searcher = OptunaSearch(
            distributions(cfg.search.space), metric="objective",
            mode="min" if cfg.search.direction == "minimize" else "max",
            points_to_evaluate=[p for _, (p, _) in numbered] or None,
            evaluated_rewards=[v for _, (_, v) in numbered] or None,
            seed=cfg.search.seed + len(told),
        )  # fmt: skip
        rows = _Rows(cfg, told, table, outcome, progress)
        trainable = tune.with_resources(_trainable(cfg, ctx), {"cpu": 1})
        with tempfile.TemporaryDirectory(prefix="swarmsim-tune-") as storage:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(search_alg=ConcurrencyLimiter(searcher, self.jobs),
                                            num_samples=todo),
                run_config=tune.RunConfig(name=cfg.name, storage_path=storage, verbose=0,
                                          callbacks=[rows]),
            )  # fmt: skip
            grid = tuner.fit()
        if grid.errors:
            raise _cause(grid.errors[0]) from None


def _cause(err: Exception) -> Exception:
    """The user's error behind a failed Ray task or trial (one line at the command line), or
    the failure itself when it is not one."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, SwarmError) else err


def _trainable(cfg: SweepConfig, ctx: Context) -> Any:
    """A Tune function trainable: the point on every seed, reporting the objective and the
    cells' metrics (the driver numbers the trial and writes its rows)."""

    def trial(point: dict[str, Any]) -> None:
        name = tune.get_context().get_trial_id()
        cells = trial_cells(cfg, point, 0)
        done = [timed_cell(c.run, c.args, ctx.base, str(Path(ctx.root) / f"tune-{name}-{i}"),
                           ctx.keep) for i, c in enumerate(cells)]  # fmt: skip
        rows = [{"metrics": m} for m, _ in done]
        tune.report({"objective": objective(cfg, rows), "point": json.dumps(point),
                     "cells": json.dumps(done)})  # fmt: skip

    return trial


class _Rows(tune.Callback):
    """On the driver, as each trial reports: add its rows, say its lines. Trials are numbered
    in the order the sampler proposed them (the counter Tune's search generator puts first in
    a trial's tag), as the local search numbers its asks, not in the order they finish."""

    def __init__(self, cfg: SweepConfig, told: Told, table: Table, outcome: Outcome,
                 progress: Progress) -> None:  # fmt: skip
        self.cfg, self.told, self.table = cfg, told, table
        self.outcome, self.progress = outcome, progress
        self.first = max(told, default=-1) + 1

    def on_trial_result(self, iteration: int, trials: list[Any], trial: Any,
                        result: dict[str, Any], **info: Any) -> None:  # fmt: skip
        point, done = json.loads(result["point"]), json.loads(result["cells"])
        number = self.first + int(trial.experiment_tag.partition("_")[0]) - 1
        cells = trial_cells(self.cfg, point, number)
        for cell, (metrics, wall) in zip(cells, done, strict=True):
            self.table.add(cell.row(metrics))
            self.outcome.ran.append(cell.key)
            self.progress.cell(cell, metrics, wall)
        self.outcome.cells += len(cells)
        self.told[number] = (point, float(result["objective"]))

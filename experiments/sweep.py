"""``swarmsim sweep CONFIG``: a grid or a search of simulate, eval, tune or train runs on a
local process pool or on Ray, written to one table that an interrupted sweep resumes from.

A grid's cells are every combination of its lists times the seeds; a search's are ``trials``
points of its space times the seeds, proposed by a seeded TPE sampler (Optuna here, Ray Tune's
OptunaSearch on Ray: ``experiments.sweep_ray``). Each finished cell is one flushed row in
``results/sweeps/<name>.jsonl`` and one flushed line on stderr; a rerun skips the cells whose
key is in the table. At the end the table is rewritten in cell order, so the same sweep gives
the same file on either backend.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import yaml

from swarmsim.errors import SwarmError

from .sweep_config import SweepConfig
from .sweep_runs import Metrics, check_cell, run_cell
from .sweep_table import Cell, Row, Table

SWEEPS_DIR = Path("results") / "sweeps"


@dataclass(frozen=True)
class Context:
    """Where a sweep's cells run from: files relative to ``base``, outputs under ``root``
    (``results/sweeps/<name>/<key>/``), rows keeping the metrics matching ``keep``."""

    base: str
    root: str
    keep: tuple[str, ...]

    def out(self, cell: Cell) -> str:
        return str(Path(self.root) / cell.key)


def timed_cell(run: str, args: dict[str, Any], base: str, out: str,
               keep: Sequence[str]) -> tuple[Metrics, float]:  # fmt: skip
    """``run_cell`` and its wall seconds (for the progress line, not the row)."""
    start = time.perf_counter()
    metrics = run_cell(run, args, base, out, keep)
    return metrics, time.perf_counter() - start


Finished = Iterator[tuple[Cell, Metrics, float]]


class Backend(Protocol):
    """Runs cells, yielding each as it finishes; stops what is left when closed."""

    def map(self, cells: Sequence[Cell], ctx: Context) -> Finished: ...


class LocalBackend:
    """Cells over ``jobs`` processes of this machine (in this process when ``jobs`` is 1)."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def map(self, cells: Sequence[Cell], ctx: Context) -> Finished:
        if not cells:
            return
        if self.jobs == 1 or len(cells) == 1:
            for cell in cells:
                yield cell, *timed_cell(cell.run, cell.args, ctx.base, ctx.out(cell), ctx.keep)
            return
        pool = ProcessPoolExecutor(min(self.jobs, len(cells)))
        try:
            futures = {pool.submit(timed_cell, c.run, c.args, ctx.base, ctx.out(c), ctx.keep): c
                       for c in cells}  # fmt: skip
            for future in as_completed(futures):
                yield futures[future], *future.result()
        finally:
            pool.shutdown(cancel_futures=True)


@dataclass
class Outcome:
    """What a sweep did: the table, the keys it ran, the rows it found already there."""

    path: Path
    ran: list[str] = field(default_factory=list)
    kept: int = 0
    cells: int = 0
    best: Row | None = None


Say = Callable[[str], None]


def run_sweep(
    cfg: SweepConfig,
    path: Path | None = None,
    backend: str = "local",
    address: str | None = None,
    say: Say = print,
    update: Callable[[float], None] | None = None,
) -> Outcome:
    """Run the cells of ``cfg`` missing from its table (``path``, default
    results/sweeps/<name>.jsonl) on ``backend``; ``say`` a line per finished cell."""
    path = path or SWEEPS_DIR / f"{cfg.name}.jsonl"
    check_cells(cfg, Path.cwd())
    root = path.with_suffix("").resolve()  # the cells' outputs and the resolved config
    root.mkdir(parents=True, exist_ok=True)
    record = yaml.safe_dump(config_record(cfg, backend), sort_keys=False)
    (root / "config.yaml").write_text(record)
    table = Table(path)
    ctx = Context(os.getcwd(), str(root), cfg.metrics)
    outcome = Outcome(path)
    if backend == "local":
        drive(cfg, table, ctx, LocalBackend(cfg.jobs), outcome, say, update)
        return outcome
    from .sweep_ray import ray_session

    with ray_session(address, cfg.jobs) as ray_backend:
        drive(cfg, table, ctx, ray_backend, outcome, say, update)
    return outcome


def drive(cfg: SweepConfig, table: Table, ctx: Context, backend: Backend, outcome: Outcome,
          say: Say, update: Callable[[float], None] | None) -> None:  # fmt: skip
    """The grid, or the search (locally with Optuna, on Ray with Ray Tune), on ``backend``."""
    if cfg.search is None:
        cells = grid_cells(cfg)
        run_missing(cells, table, ctx, backend, outcome, Progress(cfg, len(cells), say, update))
        table.rewrite(c.key for c in cells)
        return
    from .sweep_search import search

    search(cfg, table, ctx, backend, outcome, say, update)


def grid_cells(cfg: SweepConfig) -> list[Cell]:
    """Every combination of the grid's lists (in the file's order), each on every seed."""
    names = list(cfg.grid)
    seeds: Sequence[int | None] = cfg.seeds or (None,)
    cells = []
    for combo in itertools.product(*(cfg.grid[n] for n in names)):
        for seed in seeds:
            args = {**cfg.fixed, **dict(zip(names, combo, strict=True))}
            cells.append(Cell(cfg.run, args if seed is None else {**args, "seed": seed}))
    return cells


def check_cells(cfg: SweepConfig, base: Path) -> None:
    """Fail before anything runs on what ``check_cell`` can see: each distinct grid point,
    or a search's first point (its lows and first choices)."""
    if cfg.search is None:
        for cell in _distinct(grid_cells(cfg)):
            check_cell(cfg.run, cell.args, base)
        return
    first = {k: d.first for k, d in cfg.search.space.items()}
    check_cell(cfg.run, {**cfg.fixed, **first}, base)


def _distinct(cells: Sequence[Cell]) -> list[Cell]:
    """One cell per argument set apart from the seed (what ``check_cell`` needs to see)."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        rest = {k: v for k, v in cell.args.items() if k != "seed"}
        seen.setdefault(json.dumps(rest, sort_keys=True, default=str), cell)
    return list(seen.values())


class Progress:
    """A flushed line per finished cell: ``[n/total] ARGS: METRIC VALUE (S s)``."""

    def __init__(self, cfg: SweepConfig, total: int, say: Say,
                 update: Callable[[float], None] | None, done: int = 0) -> None:  # fmt: skip
        self.cfg, self.total, self.say, self.update, self.done = cfg, total, say, update, done

    def cell(self, cell: Cell, metrics: Metrics, wall: float) -> None:
        self.done += 1
        trial = "" if cell.trial is None else f"trial {cell.trial} "
        shown = shown_metric(self.cfg, metrics)
        value = f"{shown} {metrics[shown]:.4g}" if shown else f"{len(metrics)} metrics"
        self.say(f"[{self.done}/{self.total}] {trial}{cell.label(self.cfg.varied)}: {value} "
                 f"({wall:.1f} s)")  # fmt: skip
        if self.update is not None:
            self.update(self.done / self.total)


HEADLINES = {"simulate": "latency_s.p99", "eval": "controllers.*.latency_s.p99.mean",
             "tune": "value", "train": "controllers.policy.latency_s.p99.mean"}  # fmt: skip


def shown_metric(cfg: SweepConfig, metrics: Metrics) -> str | None:
    """The metric a line shows: the search's, else the run's headline, else the first kept."""
    if cfg.search is not None and cfg.search.metric in metrics:
        return cfg.search.metric
    headline = fnmatch.filter(metrics, HEADLINES[cfg.run])
    return headline[0] if headline else next(iter(metrics), None)


def run_missing(cells: Sequence[Cell], table: Table, ctx: Context, backend: Backend,
                outcome: Outcome, progress: Progress) -> list[Row]:  # fmt: skip
    """Run the ``cells`` whose key is not in ``table``, adding each row as it finishes; the
    rows of all ``cells``, in their order."""
    todo = [c for c in cells if c.key not in table.rows]
    outcome.kept += len(cells) - len(todo)
    outcome.cells += len(cells)
    progress.done += len(cells) - len(todo)
    finished = backend.map(todo, ctx)
    try:
        for cell, metrics, wall in finished:
            table.add(cell.row(metrics))
            outcome.ran.append(cell.key)
            progress.cell(cell, metrics, wall)
    finally:
        close = getattr(finished, "close", None)
        if close is not None:
            close()
    return [table.rows[c.key] for c in cells]


def config_record(cfg: SweepConfig, backend: str) -> dict[str, Any]:
    """The resolved config saved beside the table (results/sweeps/<name>/config.yaml)."""
    from dataclasses import asdict

    return {"backend": backend, **json.loads(json.dumps(asdict(cfg)))}


def check_backend(backend: str, address: str | None) -> None:
    """``--address`` only with ``--backend ray``; ray importable for it."""
    if address is not None and backend != "ray":
        raise SwarmError(f"--address: only with --backend ray, got --backend {backend}")
    if backend == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SwarmError(
                "--backend ray: ray is not installed (pip install -e '.[ray]')"
            ) from None

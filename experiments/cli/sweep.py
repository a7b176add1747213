"""``swarmsim sweep``: a grid or a search of runs on a process pool or Ray (experiments.sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path

from swarmsim.errors import SwarmError

from .options import add_progress, show_progress


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="a grid or search of simulate/eval/tune/train runs, locally or on Ray (resumable)",
        description="Run every cell of a sweep config (experiments/configs/sweeps/) that its "
        "table (results/sweeps/<name>.jsonl, one row per cell) does not hold yet: a rerun "
        "after an interruption runs only what is missing.",
    )
    p.add_argument("config", type=Path, help="a sweep config YAML")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: a process pool here (default); ray: Ray tasks, Ray Tune for "
                   "a search (needs the .[ray] extra)")  # fmt: skip
    p.add_argument("--address", metavar="ADDR",
                   help="a Ray cluster to join (default: start a local instance)")  # fmt: skip
    p.add_argument("--jobs", type=int, metavar="N", help="cells at once (default: the config's)")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="the table (default results/sweeps/<name>.jsonl)")  # fmt: skip
    add_progress(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    import dataclasses

    from ..progress import Stages
    from ..sweep import check_backend, run_sweep
    from ..sweep_config import load_sweep

    check_backend(args.backend, args.address)
    cfg = load_sweep(args.config)
    if args.jobs is not None:
        if args.jobs < 1:
            raise SwarmError(f"--jobs: expected >= 1, got {args.jobs}")
        cfg = dataclasses.replace(cfg, jobs=args.jobs)
    if args.out is not None and not args.out.parent.is_dir():
        raise SwarmError(f"--out: directory {args.out.parent} does not exist")
    title = f"sweep {cfg.name}: {cfg.run} runs on {args.backend}"
    with Stages(1, show_progress(args)).stage(title, announce=False) as stage:
        outcome = run_sweep(cfg, args.out, args.backend, args.address, stage.say, stage.update)
    print(f"sweep {cfg.name}: {outcome.cells} cells, {len(outcome.ran)} run, {outcome.kept} "
          f"already in the table\ntable: {outcome.path}")  # fmt: skip
    best = outcome.best
    if best is not None and cfg.search is not None:
        point = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in best["point"].items())  # fmt: skip
        metric, seeds = cfg.search.metric, max(len(cfg.seeds), 1)
        over = f" (mean over {seeds} seeds)" if seeds > 1 else ""
        print(f"best: trial {best['trial']} {point}: {metric} {best[metric]:.4g}{over}")
    return 0

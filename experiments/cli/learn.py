"""``swarmsim eval``, ``train`` and ``quickstart``: compare, train and try out controllers."""

from __future__ import annotations

import argparse
import json
import shlex
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from swarmsim.errors import SwarmError

from ..seeds import EVAL_SEEDS
from .options import add_overrides, add_progress, duration_overrides, show_progress

if TYPE_CHECKING:
    from ..progress import Stage

SPREAD_OUT = Path("results/decision_spread")
VERSUS_OUT = Path("results/learned_vs_tuned")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``eval`` (controllers over seeds) and ``train`` (one training config)."""
    ev = sub.add_parser("eval", help="compare controllers over seeds (common random numbers)")
    ev.add_argument("scenario", help="a built-in scenario name or a scenario YAML file")
    ev.add_argument(
        "--controllers",
        required=True,
        metavar="A,B,...",
        help="NAME, TASK=NAME or a policy artifact directory, comma-separated",
    )
    ev.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds per controller")
    ev.add_argument(
        "--seed-start",
        type=int,
        default=EVAL_SEEDS.start,
        metavar="S",
        help="first seed (default: the held-out seeds, experiments/seeds.py)",
    )
    ev.add_argument("--duration", type=float, metavar="S", help="simulated seconds")
    add_overrides(ev)
    ev.add_argument("--json", action="store_true", help="print the comparison as JSON")
    add_progress(ev)
    ev.set_defaults(func=cmd_eval)
    _add_spread(sub)
    _add_versus(sub)
    tr = sub.add_parser("train", help="train a policy, save it, evaluate it, write a report")
    tr.add_argument("config", help="a training config YAML (see experiments/configs/)")
    tr.add_argument(
        "--out", type=Path, metavar="DIR", help="run directory (default results/runs/<name>)"
    )
    add_progress(tr)
    tr.set_defaults(func=cmd_train)


def _add_spread(sub: argparse._SubParsersAction) -> None:
    from ..spread import SCENARIOS

    sp = sub.add_parser(
        "spread", help="every heuristic of each scenario's Task over seeds: the decision spread"
    )
    sp.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                    help=f"default: all of {', '.join(SCENARIOS)}")  # fmt: skip
    sp.add_argument("--seeds", type=int, default=10, metavar="N", help="seeds per arm (10)")
    sp.add_argument("--seed-start", type=int, default=0, metavar="S", help="first seed")
    sp.add_argument("--arms", default="", metavar="A,B,...",
                    help="only these arms (labels as in the report), comma-separated")  # fmt: skip
    _add_pool_options(sp, SPREAD_OUT)
    sp.set_defaults(func=cmd_spread)


def _add_versus(sub: argparse._SubParsersAction) -> None:
    cp = sub.add_parser(
        "versus", help="each Task's trained policy against its tuned heuristics, paired over seeds"
    )
    cp.add_argument("tasks", nargs="*", metavar="TASK",
                    help="default: every Task of experiments/learned.py's COMPARISONS "
                         "(llm-routing, shard-routing, autoscaling, role-assignment)")  # fmt: skip
    cp.add_argument("--seeds", type=int, default=len(EVAL_SEEDS), metavar="N",
                    help=f"held-out seeds per arm, from {EVAL_SEEDS.start} "
                         f"(default {len(EVAL_SEEDS)}; experiments/seeds.py)")  # fmt: skip
    _add_pool_options(cp, VERSUS_OUT)
    cp.set_defaults(func=cmd_versus)


def _add_pool_options(p: argparse.ArgumentParser, out: Path) -> None:
    """What spread and versus share: worker processes, the report's path, overrides."""
    p.add_argument("--workers", type=int, default=2, metavar="N", help="processes (2)")
    p.add_argument("--out", type=Path, default=out, metavar="PATH",
                   help=f"writes PATH.md and PATH.json (default {out})")  # fmt: skip
    add_overrides(p, "override a parameter of every scenario; repeatable")
    add_progress(p)


def add_quickstart(sub: argparse._SubParsersAction) -> None:
    """``quickstart``: a trained LLM router against the tuned heuristics, sim and live."""
    from ..quickstart_defaults import ARTIFACT, LIVE_QUERIES, SCENARIO, TIME_SCALE, TRAIN_STEPS

    qs = sub.add_parser(
        "quickstart",
        help="the main job: a learned LLM router against the tuned heuristics, sim and live",
        description=f"On {SCENARIO}: load the committed llm-routing policy ({ARTIFACT}), "
        "evaluate it against the routing heuristics at their tuned settings on held-out "
        "seeds in the simulator, attach the same artifact and the best heuristic to a live "
        "local swarm, and write report.md and report.json (about 5 minutes on 2 cores). "
        "Loading is the default because a full training run takes tens of minutes on 2 "
        "cores; --train trains a short run instead, which gives a weaker policy.",
    )
    mode = qs.add_mutually_exclusive_group()
    mode.add_argument("--pretrained", dest="train", action="store_false",
                      help="load the committed policy (the default; see --policy)")  # fmt: skip
    mode.add_argument("--train", dest="train", action="store_true",
                      help="train a short run of experiments/configs/llm-routing.yaml "
                      "instead (weaker than the committed policy; ~1 minute more)")  # fmt: skip
    qs.add_argument("--policy", type=Path, metavar="DIR",
                    help=f"a policy artifact or training run (default {ARTIFACT})")  # fmt: skip
    qs.add_argument("--steps", type=int, default=TRAIN_STEPS, metavar="N",
                    help=f"--train: PPO steps (default {TRAIN_STEPS})")  # fmt: skip
    qs.add_argument(
        "--seeds",
        type=int,
        default=len(EVAL_SEEDS),
        metavar="N",
        help=f"held-out simulator seeds per controller (default {len(EVAL_SEEDS)})",
    )
    qs.add_argument(
        "--live-queries",
        type=int,
        default=LIVE_QUERIES,
        metavar="N",
        help=f"measured queries per live arm, at least (default {LIVE_QUERIES})",
    )
    qs.add_argument(
        "--time-scale",
        type=float,
        default=TIME_SCALE,
        metavar="X",
        help=f"live: the workload runs 1/X times faster (default {TIME_SCALE})",
    )
    qs.add_argument("--workers", type=int, default=2, metavar="N",
                    help="simulator processes (2)")  # fmt: skip
    qs.add_argument("--out", type=Path, default=Path("results/runs/quickstart"), metavar="DIR",
                    help="where the report goes (default results/runs/quickstart)")  # fmt: skip
    add_overrides(qs, "override a scenario parameter on both sides; repeatable")
    add_progress(qs)
    qs.set_defaults(func=cmd_quickstart, train=False)


def cmd_eval(args: argparse.Namespace) -> int:
    from swarmsim.scenario_files import load_scenario

    from ..evaluate import evaluate
    from ..progress import Stages
    from ..render import render_comparison

    if args.seeds < 1:
        raise SwarmError(f"--seeds: expected at least 1, got {args.seeds}")
    overrides = list(args.overrides)
    if args.duration is not None:
        overrides += duration_overrides(args.scenario, args.duration)
    scenario = load_scenario(args.scenario, overrides)
    specs = [s.strip() for s in args.controllers.split(",") if s.strip()]
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    result = evaluate(scenario, specs, seeds, Stages(1, show_progress(args)))
    print(json.dumps(result, indent=2) if args.json else render_comparison(result))
    return 0


def cmd_spread(args: argparse.Namespace) -> int:
    from ..spread import SCENARIOS
    from ..spread_report import git_commit, render
    from ..spread_run import run_spread

    if args.seeds < 1:
        raise SwarmError(f"--seeds: expected at least 1, got {args.seeds}")
    if not args.out.parent.is_dir():
        raise SwarmError(f"--out: directory {args.out.parent} does not exist")
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    only = [a.strip() for a in args.arms.split(",") if a.strip()]
    scenarios = args.scenarios or list(SCENARIOS)
    title = f"spread: {len(scenarios)} scenarios x {len(seeds)} seeds"
    with _pool_stage(args, title) as stage:
        result = run_spread(scenarios, seeds, args.overrides, only, args.workers, stage.say,
                            stage.update)  # fmt: skip
    result["command"] = _spread_command(args)
    result["commit"] = git_commit(Path(__file__).resolve().parents[2])
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(render(result))
    print(f"wrote {md} and {js} ({result['wall_s']:.0f} s)")
    return 0


def cmd_versus(args: argparse.Namespace) -> int:
    from ..learned import COMPARISONS
    from ..learned_report import render
    from ..learned_run import run_compare
    from ..spread_report import git_commit

    if not 1 <= args.seeds <= len(EVAL_SEEDS):
        raise SwarmError(f"--seeds: expected 1 to {len(EVAL_SEEDS)} held-out seeds, "
                         f"got {args.seeds}")  # fmt: skip
    if not args.out.parent.is_dir():
        raise SwarmError(f"--out: directory {args.out.parent} does not exist")
    seeds = list(EVAL_SEEDS)[: args.seeds]
    tasks = args.tasks or list(COMPARISONS)
    with _pool_stage(args, f"versus: {', '.join(tasks)} x {len(seeds)} seeds") as stage:
        result = run_compare(tasks, seeds, args.overrides, bool(args.tasks), args.workers,
                             stage.say, stage.update)  # fmt: skip
    words = ["swarmsim", "versus", *args.tasks, "--seeds", str(args.seeds)]
    words += [w for o in args.overrides for w in ("--set", o)]
    words += ["--out", str(args.out)] if args.out != VERSUS_OUT else []
    result["command"] = shlex.join(words)
    result["commit"] = git_commit(Path(__file__).resolve().parents[2])
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    js.write_text(json.dumps(result, indent=2) + "\n")
    md.write_text(render(result))
    print(f"wrote {md} and {js} ({result['wall_s']:.0f} s)")
    return 0


def _pool_stage(args: argparse.Namespace, title: str) -> AbstractContextManager[Stage]:
    """spread's and versus's progress: a bar on a terminal; either way a flushed line on
    stderr per finished arm (no opening or closing line without the bar)."""
    from ..progress import Stages

    return Stages(1, show_progress(args)).stage(title, announce=False)


def _spread_command(args: argparse.Namespace) -> str:
    """The ``swarmsim spread`` command line that reruns ``args`` (written into the report)."""
    words = ["swarmsim", "spread", *args.scenarios, "--seeds", str(args.seeds)]
    if args.seed_start:
        words += ["--seed-start", str(args.seed_start)]
    if args.arms:
        words += ["--arms", args.arms]
    for override in args.overrides:
        words += ["--set", override]
    if args.out != SPREAD_OUT:
        words += ["--out", str(args.out)]
    return shlex.join(words)


def cmd_train(args: argparse.Namespace) -> int:
    from ..train import load_config, train

    cfg = load_config(args.config)
    out = args.out or Path("results") / "runs" / cfg.name
    words = ["swarmsim", "train", str(args.config)]
    if args.out is not None:
        words += ["--out", str(args.out)]
    result = train(cfg, out, progress=show_progress(args), command=shlex.join(words))
    verdict = result["verdict"]
    print(f"policy: {out / 'policy'}\nreport: {out / 'report.md'}\nverdict: {verdict}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from ..quickstart import QuickstartConfig, quickstart

    if args.policy is not None and args.train:
        raise SwarmError("--policy: not with --train (which trains its own)")
    cfg = QuickstartConfig(policy=args.policy, train=args.train, train_steps=args.steps,
                           seeds=args.seeds, live_queries=args.live_queries,
                           time_scale=args.time_scale, workers=args.workers,
                           overrides=tuple(args.overrides))  # fmt: skip
    quickstart(cfg, args.out, show_progress(args))
    report = args.out / "report.md"
    print(report.read_text())
    print(f"report: {report}\ndata: {args.out / 'report.json'}")
    return 0

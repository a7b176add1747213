"""``swarmsim tune``: search a heuristic's parameters on the tuning seeds (experiments.tune)."""

from __future__ import annotations

import argparse
import shlex

from swarmsim.errors import SwarmError

from .options import add_overrides, add_progress, duration_overrides, show_progress


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="tune a heuristic's parameters with Optuna (TPE, resumable)")
    p.add_argument("scenario", help="a built-in scenario name or a scenario YAML file")
    p.add_argument(
        "--controller",
        required=True,
        metavar="[TASK=]NAME",
        help="the heuristic to tune (see swarmsim controllers --params)",
    )
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=LO:HI[:log|:int]",
        help="search KEY over LO..HI; repeatable (default: every declared one)",
    )
    p.add_argument(
        "--trials",
        type=int,
        default=50,
        metavar="N",
        help="trials the study should have, counting stored ones (default 50)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        metavar="K",
        help="tuning seeds 1000..1000+K-1 per trial (default 3)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="J",
        help="processes running a trial's seeds (default 1)",
    )
    p.add_argument("--duration", type=float, metavar="S", help="simulated seconds per run")
    p.add_argument(
        "--max-violation",
        type=float,
        metavar="RATE",
        help="autoscaling: SLO violation rate allowed (default 0.05)",
    )
    p.add_argument(
        "--min-recall",
        type=float,
        metavar="R",
        help="shard-routing: recall@k required (default 0.95)",
    )
    add_overrides(p)
    add_progress(p)
    p.set_defaults(func=cmd_tune)


def cmd_tune(args: argparse.Namespace) -> int:
    from controllers.spec import resolve
    from swarmsim.scenario_files import load_scenario, scenario_digest

    from ..progress import Stages
    from ..tune import study_for, tune, write_tuned

    if args.trials < 1 or args.jobs < 1:
        raise SwarmError(f"--trials and --jobs: expected >= 1, got {args.trials}, {args.jobs}")
    if ":" in args.controller or "@" in args.controller:
        raise SwarmError(f"--controller: expected [TASK=]NAME, got {args.controller!r}")
    task, name = resolve(args.controller).task, args.controller.rpartition("=")[2]
    overrides = list(args.overrides)
    if args.duration is not None:
        overrides += duration_overrides(args.scenario, args.duration)
    scenario = load_scenario(args.scenario, overrides)
    levels = {"--max-violation": args.max_violation, "--min-recall": args.min_recall}
    study = study_for(scenario, task, name, args.params, args.seeds, levels)
    # a bar on a terminal; either way a flushed line on stderr per trial
    title = f"tune {task}={name} on {scenario.name}"
    with Stages(1, show_progress(args)).stage(title, announce=False) as stage:
        result = tune(study, args.trials, args.jobs, stage.say, stage.update)
    result["overrides"] = overrides
    result["scenario_sha256"] = scenario_digest(scenario)  # @tuned refuses a changed scenario
    result["command"] = _command(args, task, name)
    path = write_tuned(scenario.name, task, name, result)
    shown = " ".join(f"{k}={v:.4g}" for k, v in result["params"].items())
    guard = result.get("guard")
    within = (
        ""
        if guard is None
        else (
            f" at {guard['metric']} {guard['value']:.4g} ({'<=' if guard['upper'] else '>='} "
            f"{guard['level']:g}{'' if guard['met'] else ' NOT met by any trial'})"
        )
    )
    print(
        f"{task}={name}@tuned on {scenario.name}: {shown}\n"
        f"{result['objective']}: {result['value']:.4g} (defaults {result['default_value']:.4g})"
        f"{within} over {result['trials']} trials\nwritten: {path}"
    )
    return 0


def _command(args: argparse.Namespace, task: str, name: str) -> str:
    """The command that reproduces (or resumes) this study."""
    words = [
        "swarmsim",
        "tune",
        args.scenario,
        "--controller",
        f"{task}={name}",
        "--trials",
        str(args.trials),
        "--seeds",
        str(args.seeds),
    ]
    words += [w for p in args.params for w in ("--param", p)]
    words += [w for o in args.overrides for w in ("--set", o)]
    for flag, value in (
        ("--duration", args.duration),
        ("--max-violation", args.max_violation),
        ("--min-recall", args.min_recall),
    ):
        if value is not None:
            words += [flag, str(value)]
    return shlex.join(words)

"""``swarmsim scenarios``, ``controllers``, ``simulate`` and ``replay``: one simulation run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarmsim.errors import SwarmError

from .options import (
    INJECT_SIM,
    add_inject,
    add_overrides,
    add_run_options,
    add_trace_options,
    duration_overrides,
    show_progress,
    trace_replay,
    with_injected,
)

if TYPE_CHECKING:
    from swarmsim.scenario import Scenario
    from swarmsim.simulation import Simulation


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The listing commands and the two that run one simulation."""
    sub.add_parser("scenarios", help="list the built-in scenarios").set_defaults(func=cmd_scenarios)
    sim = sub.add_parser("simulate", help="run one simulation and print its metrics summary")
    sim.add_argument("scenario", help="a built-in scenario name or a scenario YAML file")
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    sim.add_argument(
        "--duration",
        type=float,
        metavar="S",
        help="simulated seconds (warm-up is capped at a tenth of it)",
    )
    add_overrides(sim, "override a scenario parameter or dotted field; repeatable")
    add_run_options(sim)
    add_inject(sim, INJECT_SIM)
    sim.set_defaults(func=cmd_simulate)
    rep = sub.add_parser("replay", help="drive the simulator with a recorded or public trace")
    rep.add_argument("trace", type=Path, help="a trace file (Azure LLM CSV, CSV, JSONL)")
    rep.add_argument("--scenario", default="homelab", help="the cluster to replay it on")
    rep.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    rep.add_argument("--duration", type=float, metavar="S",
                     help="simulated seconds (default: last request + deadline)")  # fmt: skip
    rep.add_argument("--sessions", choices=("timestamp", "closed-loop"),
                     help="how a session's requests are sent: at their timestamps, or "
                          "closed-loop, each the trace's gap after the previous answer (needs "
                          "a session column)")  # fmt: skip
    add_overrides(rep)
    add_trace_options(rep, "")
    add_run_options(rep)
    add_inject(rep, INJECT_SIM)
    rep.set_defaults(func=cmd_replay)
    ctl = sub.add_parser("controllers", help="list the built-in controllers by Task")
    ctl.add_argument(
        "--params", action="store_true", help="also their tunable parameters (for swarmsim tune)"
    )
    ctl.set_defaults(func=cmd_controllers)


def cmd_scenarios(_args: argparse.Namespace) -> int:
    from swarmsim.scenario_files import builtin_scenarios

    scenarios = builtin_scenarios()
    width = max(map(len, scenarios))
    for name, line in scenarios.items():
        print(f"{name:<{width}}  {line}")
    return 0


def cmd_controllers(args: argparse.Namespace) -> int:
    from controllers.registry import controller_names, controller_params

    params = controller_params()
    for task, entries in controller_names().items():
        print(task)
        width = max(map(len, entries), default=0)
        for name, summary in entries.items():
            print(f"  {name:<{width}}  {summary}")
            tunables = params[task].get(name, ()) if args.params else ()
            if tunables:
                print(f"  {'':<{width}}  tune: {'  '.join(map(str, tunables))}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from swarmsim.scenario_files import load_scenario

    overrides = list(args.overrides)
    if args.duration is not None:
        overrides += duration_overrides(args.scenario, args.duration)
    scenario = with_injected(load_scenario(args.scenario, overrides), args.inject)
    base = Path(args.scenario).parent if Path(args.scenario).is_file() else None
    return _simulate(args, scenario, base)


def cmd_replay(args: argparse.Namespace) -> int:
    from ..replay import replay_scenario

    replay = trace_replay(args, args.trace)
    sessions = [] if args.sessions is None else [f"workload.sessions.mode={args.sessions}"]
    if args.sessions == "closed-loop":  # before --set, which may choose another think time
        sessions.append("workload.sessions.think=trace")
    overrides = [*sessions, *args.overrides]
    scenario = with_injected(
        replay_scenario(replay, args.scenario, overrides, args.duration), args.inject
    )
    base = Path(args.scenario).parent if Path(args.scenario).is_file() else None
    return _simulate(args, scenario, base)


def _simulate(args: argparse.Namespace, scenario: Scenario, base: Path | None) -> int:
    """Run ``scenario`` with ``args.controllers`` attached; print (and record) the summary."""
    from swarmsim.metrics import write_timeline

    from ..evaluate import controller_stats
    from ..render import render_summary
    from ..replay import prepare

    if args.trace_out is not None and not args.trace_out.parent.is_dir():
        raise SwarmError(f"--trace-out: directory {args.trace_out.parent} does not exist")
    sim, attached = prepare(scenario, args.seed, args.controllers, args.trace_out is not None,
                            base)  # fmt: skip
    summary = _run_with_progress(sim) if show_progress(args) else sim.run()
    if attached:
        summary["controllers"] = controller_stats(attached)
    if args.trace_out is not None:
        write_timeline(sim.recording(), args.trace_out)
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))
    return 0


def _run_with_progress(sim: Simulation) -> dict[str, Any]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("simulating"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("sim", total=1.0)
        return sim.run(progress=lambda frac: bar.update(task, completed=frac))

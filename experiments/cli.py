"""The ``swarmsim`` command.

User errors (a bad scenario file, an unknown name, a bad ``--set``) end with one line on
stderr naming the cause and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from swarmsim.errors import SwarmError

if TYPE_CHECKING:
    from .replay import TraceReplay

EXIT_USAGE = 2
DEFAULT_CONTROL = "tcp://127.0.0.1:5570"  # where live up listens for operators


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="swarmsim",
        description="Simulate a distributed RAG agent swarm; train and deploy its controllers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    sim.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="K=V",
        help="override a scenario parameter or dotted field; repeatable",
    )
    _add_run_options(sim)
    sim.set_defaults(func=cmd_simulate)
    rep = sub.add_parser("replay", help="drive the simulator with a recorded or public trace")
    rep.add_argument("trace", type=Path, help="a trace file (Azure LLM CSV, CSV, JSONL)")
    rep.add_argument("--scenario", default="homelab", help="the cluster to replay it on")
    rep.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    rep.add_argument("--duration", type=float, metavar="S",
                     help="simulated seconds (default: last request + deadline)")  # fmt: skip
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    _add_trace_options(rep, "")
    _add_run_options(rep)
    rep.set_defaults(func=cmd_replay)
    sub.add_parser("controllers", help="list the built-in controllers by Task").set_defaults(
        func=cmd_controllers
    )
    ev = sub.add_parser("eval", help="compare controllers over seeds (common random numbers)")
    ev.add_argument("scenario", help="a built-in scenario name or a scenario YAML file")
    ev.add_argument(
        "--controllers",
        required=True,
        metavar="A,B,...",
        help="NAME, TASK=NAME or a policy artifact directory, comma-separated",
    )
    ev.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds per controller")
    ev.add_argument("--seed-start", type=int, default=0, metavar="S", help="first seed")
    ev.add_argument("--duration", type=float, metavar="S", help="simulated seconds")
    ev.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    ev.add_argument("--json", action="store_true", help="print the comparison as JSON")
    ev.set_defaults(func=cmd_eval)
    tr = sub.add_parser("train", help="train a policy, save it, evaluate it, write a report")
    tr.add_argument("config", help="a training config YAML (see experiments/configs/)")
    tr.add_argument(
        "--out", type=Path, metavar="DIR", help="run directory (default results/runs/<name>)"
    )
    _add_progress(tr)
    tr.set_defaults(func=cmd_train)
    _add_live(sub)
    cal = sub.add_parser("calibrate", help="fit the simulator's service models to a recording")
    cal.add_argument("recording", type=Path, help="a timeline (live run --record) as JSONL")
    cal.add_argument("-o", "--out", type=Path, required=True, metavar="SCENARIO.yaml",
                     help="where the calibrated scenario goes")  # fmt: skip
    cal.add_argument("--scenario", default="homelab", help="the scenario the recording ran")
    cal.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    cal.set_defaults(func=cmd_calibrate)
    cmp = sub.add_parser(
        "compare", help="fidelity report of timeline B against timeline A (per stage, CDFs)"
    )
    cmp.add_argument("reference", type=Path, help="A: the reference timeline (JSONL)")
    cmp.add_argument("candidate", type=Path, help="B: the timeline judged against A (JSONL)")
    cmp.add_argument(
        "-o", "--out", type=Path, metavar="DIR", help="write fidelity.{json,md} and CDF plots"
    )
    cmp.add_argument(
        "--warmup", type=float, default=0.0, metavar="S", help="leave out arrivals before S"
    )
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp.set_defaults(func=cmd_compare)
    qs = sub.add_parser(
        "quickstart", help="train a routing policy, evaluate it, attach it to a live swarm"
    )
    qs.add_argument(
        "--out",
        type=Path,
        default=Path("results/runs/quickstart"),
        metavar="DIR",
        help="where the report goes (default results/runs/quickstart)",
    )
    qs.add_argument("--steps", type=int, default=20_000, help="training steps (default 20000)")
    qs.add_argument(
        "--live-duration",
        type=float,
        default=90.0,
        metavar="S",
        help="seconds of load per live run (default 90)",
    )
    _add_progress(qs)
    qs.set_defaults(func=cmd_quickstart)
    return parser


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """What simulate and replay share: controllers, output and progress."""
    p.add_argument("--controller", dest="controllers", action="append", default=[],
                   metavar="TASK=NAME|PATH",
                   help="a controller or policy artifact for its Task; repeatable")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--trace-out", type=Path, metavar="FILE", help="write the per-query timeline as JSONL"
    )
    _add_progress(p)


def _add_trace_options(p: argparse.ArgumentParser, prefix: str) -> None:
    """How a trace is read and replayed; live run names them --trace-* beside its own."""
    from swarmsim.traces import FORMATS

    p.add_argument(f"--{prefix}format", dest="trace_format", default="auto",
                   choices=FORMATS, help="trace format")  # fmt: skip
    p.add_argument(f"--{prefix}map", dest="trace_map", action="append", default=[],
                   metavar="COLUMN=FIELD",
                   help="the file's COLUMN holds FIELD (timestamp, input_tokens, "
                        "output_tokens); repeatable")  # fmt: skip
    p.add_argument(f"--{prefix}time-scale", dest="trace_time_scale", type=float, default=1.0,
                   metavar="X", help="arrival times x X (0.5: twice as fast)")  # fmt: skip
    p.add_argument(f"--{prefix}rate-scale", dest="trace_rate_scale", type=float, default=1.0,
                   metavar="X", help="X times as many requests at the same times")  # fmt: skip
    p.add_argument(f"--{prefix}window", dest="trace_window", metavar="START:END",
                   help="replay the trace's seconds START to END only")  # fmt: skip


def _add_live(sub) -> None:
    live = sub.add_parser("live", help="run and operate the swarm for real: processes over ZeroMQ")
    verbs = live.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser(
        "run", help="start a local swarm, drive the load, attach controllers, print the summary"
    )
    _add_swarm_options(run)
    run.add_argument("--duration", type=float, metavar="S", help="seconds of load")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--trace", type=Path, metavar="FILE",
                     help="replay a request trace as the load (as replay does)")  # fmt: skip
    _add_trace_options(run, "trace-")
    _add_progress(run)
    run.set_defaults(func=cmd_live_run)

    up = verbs.add_parser(
        "up", help="start a long-running swarm, print its control address, serve until Ctrl-C"
    )
    _add_swarm_options(up)
    up.add_argument("--bind", default=DEFAULT_CONTROL, metavar="ADDR",
                    help=f"control address for status, attach, detach, report "
                    f"(default {DEFAULT_CONTROL})")  # fmt: skip
    up.add_argument("--query-bind", default="tcp://127.0.0.1:0", metavar="ADDR",
                    help="where clients send queries (default: a free port, printed)")  # fmt: skip
    up.add_argument("--no-load", dest="load", action="store_false",
                    help="start no load generator: clients send to the query address")  # fmt: skip
    up.add_argument("--duration", type=float, metavar="S",
                    help="seconds of generated load (default: until stopped)")  # fmt: skip
    up.add_argument("--heartbeat", type=float, metavar="S",
                    help="heartbeat interval, as --set failures.heartbeat_interval_s=S; a "
                    "failing controller is detached at the next one (default: the "
                    "scenario's, 1)")  # fmt: skip
    up.add_argument("--json", action="store_true",
                    help="print the addresses and, at exit, the summary as JSON lines")  # fmt: skip
    up.set_defaults(func=cmd_live_up)

    status = verbs.add_parser("status", help="workers, queues, controllers of a running swarm")
    status.add_argument("address", metavar="ADDR", help="the control address live up printed")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(func=cmd_live_status)

    attach = verbs.add_parser(
        "attach", help="attach a controller to a Task of a running swarm (verified first)"
    )
    attach.add_argument("address", metavar="ADDR", help="the control address live up printed")
    attach.add_argument("--controller", required=True, metavar="TASK=NAME|PATH",
                        help="a registered controller or a policy artifact directory")  # fmt: skip
    how = attach.add_mutually_exclusive_group()
    how.add_argument("--shadow", action="store_true",
                     help="decide beside the acting controller, log, apply nothing")  # fmt: skip
    how.add_argument("--split", type=float, metavar="P",
                     help="A/B: route a fraction P of the queries with it")  # fmt: skip
    attach.set_defaults(func=cmd_live_attach)

    detach = verbs.add_parser("detach", help="return a Task of a running swarm to its heuristic")
    detach.add_argument("address", metavar="ADDR", help="the control address live up printed")
    detach.add_argument("task", metavar="TASK", help="e.g. shard-routing")
    detach.add_argument("--candidate", action="store_true",
                        help="end only the shadow or A/B candidate")  # fmt: skip
    detach.set_defaults(func=cmd_live_detach)

    report = verbs.add_parser(
        "report", help="shadow agreement and A/B arms with 95%% intervals, live or recorded"
    )
    report.add_argument("source", metavar="ADDR|RECORDING",
                        help="a running swarm's control address or a --record file")  # fmt: skip
    report.add_argument("--against", metavar="TASK=NAME|PATH",
                        help="offline, on a recording: how often this controller would have "
                        "chosen the applied action on the logged observations")  # fmt: skip
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(func=cmd_live_report)


def _add_swarm_options(p: argparse.ArgumentParser) -> None:
    """What live run and live up share: the swarm, its controllers and its recording."""
    p.add_argument("scenario", help="a built-in scenario name or a scenario YAML file")
    p.add_argument(
        "--controller",
        dest="controllers",
        action="append",
        default=[],
        metavar="TASK=NAME|PATH",
        help="attach a controller (a registered name or a policy artifact); repeatable",
    )
    p.add_argument("--workers", type=int, metavar="N", help="total worker processes")
    p.add_argument("--seed", type=int, default=0, help="workload seed (as in simulate)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    p.add_argument("--record", type=Path, metavar="FILE",
                   help="per-query timeline, controller events and decisions (JSONL)")  # fmt: skip
    p.add_argument("--log-fraction", type=float, default=0.1, metavar="P",
                   help="routing decisions recorded with their observation, by query-id "
                   "hash (default 0.1; interval decisions are all recorded)")  # fmt: skip
    p.add_argument(
        "--corpus", type=Path, metavar="DIR", help="docs.jsonl + questions.jsonl: real-text RAG"
    )
    p.add_argument(
        "--synth",
        choices=("emulated", "openai"),
        default="emulated",
        help="synthesizer backend: emulated (profile timings) or an OpenAI-compatible endpoint",
    )
    p.add_argument("--openai-url", default="", metavar="URL", help="e.g. http://127.0.0.1:11434")
    p.add_argument("--openai-model", default="", metavar="NAME")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="emulated stage times are the profile's times x X (default 1)",
    )
    p.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics (0: any port)"
    )


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def _show_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() if args.progress is None else args.progress


def cmd_scenarios(_args: argparse.Namespace) -> int:
    from swarmsim.scenario import builtin_scenarios

    scenarios = builtin_scenarios()
    width = max(map(len, scenarios))
    for name, line in scenarios.items():
        print(f"{name:<{width}}  {line}")
    return 0


def cmd_controllers(_args: argparse.Namespace) -> int:
    from controllers.base import controller_names

    for task, entries in controller_names().items():
        print(task)
        width = max(map(len, entries), default=0)
        for name, summary in entries.items():
            print(f"  {name:<{width}}  {summary}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from swarmsim.scenario import load_scenario

    from .evaluate import evaluate
    from .render import render_comparison

    if args.seeds < 1:
        raise SwarmError(f"--seeds: expected at least 1, got {args.seeds}")
    overrides = list(args.overrides)
    if args.duration is not None:
        overrides += _duration_overrides(args.scenario, args.duration)
    scenario = load_scenario(args.scenario, overrides)
    specs = [s.strip() for s in args.controllers.split(",") if s.strip()]
    seeds = list(range(args.seed_start, args.seed_start + args.seeds))
    result = evaluate(scenario, specs, seeds)
    print(json.dumps(result, indent=2) if args.json else render_comparison(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .train import load_config, train

    cfg = load_config(args.config)
    out = args.out or Path("results") / "runs" / cfg.name
    result = train(cfg, out, progress=_show_progress(args))
    verdict = result["verdict"]
    print(f"policy: {out / 'policy'}\nreport: {out / 'report.md'}\nverdict: {verdict}")
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import quickstart

    if args.steps < 64:
        raise SwarmError(f"--steps: expected at least 64, got {args.steps}")
    if args.live_duration <= 0:
        raise SwarmError(f"--live-duration: expected a positive number, got {args.live_duration}")
    result = quickstart(args.out, args.steps, args.live_duration, _show_progress(args))
    print(result["report"].read_text())
    print(f"report: {result['report']}\npolicy: {result['policy']}")
    return 0


def cmd_live_run(args: argparse.Namespace) -> int:
    from live.runner import run_live

    from .render import render_summary

    overrides, duration = list(args.overrides), args.duration
    if args.trace is not None:
        replay = _trace_replay(args, args.trace)
        overrides = [*replay.overrides(), *overrides]
        duration = duration or replay.load_duration_s()
    summary = run_live(_live_run(args, overrides, duration))
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))
    return 0


def _live_run(args: argparse.Namespace, overrides: list[str], duration: float | None, **extra):
    """The ``LiveRun`` that live run's and live up's shared options describe, checked."""
    from live.config import LiveConfig
    from live.runner import LiveRun

    if duration is not None and duration <= 0:
        raise SwarmError(f"--duration: expected a positive number of seconds, got {duration}")
    if args.record is not None and not args.record.parent.is_dir():
        raise SwarmError(f"--record: directory {args.record.parent} does not exist")
    if args.corpus is not None and not args.corpus.is_dir():
        raise SwarmError(f"--corpus: {args.corpus} is not a directory")
    if args.synth == "openai" and not (args.openai_url and args.openai_model):
        raise SwarmError("--synth openai needs --openai-url and --openai-model")
    if not 0 <= args.log_fraction <= 1:
        raise SwarmError(f"--log-fraction: expected a fraction in [0, 1], got {args.log_fraction}")
    config = {"route_log_fraction": args.log_fraction, **extra.pop("config", {})}
    return LiveRun(
        scenario=args.scenario,
        overrides=tuple(overrides),
        controllers=tuple(args.controllers),
        duration_s=duration,
        workers=args.workers,
        seed=args.seed,
        corpus=args.corpus,
        synth_backend=args.synth,
        openai_url=args.openai_url,
        openai_model=args.openai_model,
        metrics_port=args.metrics_port,
        record=args.record,
        config=LiveConfig(time_scale=args.time_scale, **config),
        **extra,
    )


def cmd_live_up(args: argparse.Namespace) -> int:
    from live.runner import serve

    from .render import render_summary

    overrides = list(args.overrides)
    if args.heartbeat is not None:
        if not args.heartbeat > 0:
            raise SwarmError(
                f"--heartbeat: expected a positive number of seconds, got {args.heartbeat}"
            )
        overrides.append(f"failures.heartbeat_interval_s={args.heartbeat}")
    run = _live_run(
        args,
        overrides,
        args.duration,
        control_bind=args.bind,
        query_bind=args.query_bind,
    )

    def announce(up: dict) -> None:
        if args.json:
            print(json.dumps({"up": up}), flush=True)
            return
        load = "the scenario's load" if up["load"] else "no load generator"
        print(f"swarm up: {up['scenario']}, {up['workers']} workers, {load}", flush=True)
        print(f"  control  {up['control']}   (swarmsim live status {up['control']})", flush=True)
        print(f"  queries  {up['queries']}", flush=True)
        if up["metrics_port"] is not None:
            print(f"  metrics  http://127.0.0.1:{up['metrics_port']}/metrics", flush=True)
        if up["record"]:
            print(f"  record   {up['record']}", flush=True)
        print("Ctrl-C stops it.", flush=True)

    signal.signal(signal.SIGTERM, _interrupt)  # stopped by a supervisor: shut down cleanly
    summary = serve(run, announce, load=args.load)
    print(json.dumps({"summary": summary}) if args.json else render_summary(summary), flush=True)
    return 0


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def cmd_live_status(args: argparse.Namespace) -> int:
    from live.operator import request

    from .render import render_status

    st = request(args.address, "STATUS")
    print(json.dumps(st, indent=2) if args.json else render_status(st))
    return 0


def cmd_live_attach(args: argparse.Namespace) -> int:
    from controllers.spec import resolve
    from live.operator import artifact_hash, request

    task = resolve(args.controller).task  # a bad name, parameter or artifact stops here
    head, *params = args.controller.split(":")
    name = head.partition("=")[2] if "=" in head else head
    ref = label = ":".join([name, *params])
    if Path(name).is_dir():  # the coordinator reads the same files: give it an absolute path
        ref = ":".join([str(Path(name).resolve()), *params])
    mode = "shadow" if args.shadow else "split" if args.split is not None else "acting"
    payload = {"task": task, "controller": ref, "label": label, "mode": mode,
               "split": args.split or 0.0}  # fmt: skip
    payload["sha256"] = artifact_hash(ref)
    body = request(args.address, "ATTACH", payload)
    digest = f" (sha256 {body['sha256'][:12]}, verified)" if body["sha256"] else ""
    what = {"acting": "acting", "shadow": "as a shadow", "split": f"on a {args.split} split"}
    print(f"{task}: {label} attached {what[mode]}{digest}")
    return 0


def cmd_live_detach(args: argparse.Namespace) -> int:
    from live.operator import request

    which = "candidate" if args.candidate else "acting"
    body = request(args.address, "DETACH", {"task": args.task, "which": which})
    for e in body["events"]:
        print(f"{e['task']}: {e['controller']} {e['change']}")
    if which == "acting":
        print(f"{args.task}: back on its heuristic")
    return 0


def cmd_live_report(args: argparse.Namespace) -> int:
    from .live_report import against, from_recording, from_swarm, render, render_against

    path = Path(args.source)
    if args.against is not None:
        if not path.is_file():
            raise SwarmError(f"--against replays a recording; {args.source} is not a file")
        result = against(path, args.against)
        print(json.dumps(result, indent=2) if args.json else render_against(result))
        return 0
    if path.is_file():
        report = from_recording(path)
    elif args.source.startswith(("tcp://", "ipc://")):
        report = from_swarm(args.source)
    else:
        raise SwarmError(f"{args.source}: neither a recording file nor a tcp:// address")
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate, write_scenario

    if not args.out.parent.is_dir():
        raise SwarmError(f"--out: directory {args.out.parent} does not exist")
    result = calibrate(args.recording, args.scenario, tuple(args.overrides))
    sets = [f"--set {o}" for o in args.overrides]
    command = " ".join(["swarmsim calibrate", str(args.recording), "-o", str(args.out),
                        "--scenario", args.scenario, *sets])  # fmt: skip
    write_scenario(result, args.out, command)
    for name, fit in result["fits"].items():
        slopes = f"+{fit['per_input_token_s']:.3g}/in +{fit['per_output_token_s']:.3g}/out"
        if fit["model"] == "profile":
            slopes = f"x{fit['scale']:.4g} profile"
        print(f"{name:14s} n={fit['records']:<6d} base {fit['base_s']:.4g} s {slopes}"
              f"  sigma {fit['residual_sigma']:.3f}"
              f"  overhead {fit['overhead_s']:.4g} s")  # fmt: skip
    for name, kinds in result["lifecycle"].items():
        text = ", ".join(f"{k} {v['median_s']:.3g} s (n={v['n']})" for k, v in kinds.items())
        print(f"{name:14s} ready after {text}")
    print(f"scenario: {args.out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .fidelity import compare, read_recording, render, write_report

    a = read_recording(args.reference, args.warmup)
    b = read_recording(args.candidate, args.warmup)
    result = compare(a, b) if args.out is None else write_report(a, b, args.out)
    print(json.dumps(result, indent=2) if args.json else render(result), end="")
    if args.out is not None and not args.json:
        print(f"report: {args.out / 'fidelity.md'}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from swarmsim.scenario import load_scenario

    overrides = list(args.overrides)
    if args.duration is not None:
        overrides += _duration_overrides(args.scenario, args.duration)
    scenario = load_scenario(args.scenario, overrides)
    base = Path(args.scenario).parent if Path(args.scenario).is_file() else None
    return _simulate(args, scenario, base)


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay_scenario

    replay = _trace_replay(args, args.trace)
    scenario = replay_scenario(replay, args.scenario, args.overrides, args.duration)
    base = Path(args.scenario).parent if Path(args.scenario).is_file() else None
    return _simulate(args, scenario, base)


def _trace_replay(args: argparse.Namespace, path: Path) -> TraceReplay:
    from .replay import TraceReplay

    return TraceReplay(path, args.trace_format, tuple(args.trace_map), args.trace_time_scale,
                       args.trace_rate_scale, args.trace_window)  # fmt: skip


def _simulate(args: argparse.Namespace, scenario, base: Path | None) -> int:
    """Run ``scenario`` with ``args.controllers`` attached; print (and record) the summary."""
    from swarmsim.metrics import write_timeline

    from .evaluate import controller_stats
    from .render import render_summary
    from .replay import prepare

    if args.trace_out is not None and not args.trace_out.parent.is_dir():
        raise SwarmError(f"--trace-out: directory {args.trace_out.parent} does not exist")
    sim, attached = prepare(scenario, args.seed, args.controllers, args.trace_out is not None,
                            base)  # fmt: skip
    summary = _run_with_progress(sim) if _show_progress(args) else sim.run()
    if attached:
        summary["controllers"] = controller_stats(attached)
    if args.trace_out is not None:
        write_timeline(sim.recording(), args.trace_out)
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary))
    return 0


def _duration_overrides(ref: str, duration: float) -> list[str]:
    from swarmsim.scenario import load_scenario

    if duration <= 0:
        raise SwarmError(f"--duration: expected a positive number of seconds, got {duration}")
    warmup = load_scenario(ref).warmup_s
    return [f"duration_s={duration}", f"warmup_s={min(warmup, duration / 10)}"]


def _run_with_progress(sim) -> dict:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swarmsim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SwarmError as err:
        print(f"swarmsim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        print(f"swarmsim: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("swarmsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

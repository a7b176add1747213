"""``swarmsim live``: run a swarm for real (processes over ZeroMQ) and operate it."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from live.keys import ROLE_DIRS
from swarmsim.errors import SwarmError
from swarmsim.faults import parse_fault, parse_faults

from .options import (
    add_progress,
    add_swarm_options,
    add_trace_options,
    show_progress,
    trace_replay,
)

if TYPE_CHECKING:
    from live.runner import LiveRun

DEFAULT_CONTROL = "tcp://127.0.0.1:5570"  # where live up listens for operators
INJECT_HELP = (
    "inject a fault, KIND:TARGET@T[+D][=VALUE] (repeatable; added to the scenario's faults:). "
    "Live, T is seconds since the load started and: kill = SIGKILL; pause = SIGSTOP, SIGCONT "
    "after D; hang = the worker's loop stops (no polling, serving or heartbeats) while its "
    "process and sockets live; slow = its jobs take X times as long; delay, drop, partition "
    "= a fault layer on the coordinator's worker socket that holds messages MS±J ms, loses "
    "each with probability P (seeded by --seed), or loses all to and from the node's "
    "workers; coordinator:restart = the coordinator crashes and a new one binds the same "
    "addresses (workers re-register, clients resend); controller:MODE = acting controllers "
    "raise, overrun their deadline, or return NaN or invalid actions (guardrails fall back)"
)
EXIT_INTERRUPTED = 130  # live run stopped by SIGTERM or Ctrl-C (128 + SIGINT, as shells do)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``live`` and its verbs: run, up, status, attach, detach, report, inject."""
    live = sub.add_parser("live", help="run and operate the swarm for real: processes over ZeroMQ")
    verbs = live.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser(
        "run", help="start a local swarm, drive the load, attach controllers, print the summary"
    )
    add_swarm_options(run)
    run.add_argument("--duration", type=float, metavar="S", help="seconds of load")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--trace", type=Path, metavar="FILE",
                     help="replay a request trace as the load (as replay does)")  # fmt: skip
    add_trace_options(run, "trace-")
    run.add_argument("--inject", action="append", default=[], metavar="SPEC", help=INJECT_HELP)
    run.add_argument("--worker-bind", default="tcp://127.0.0.1:0", metavar="ADDR",
                     help="where workers report (default: a free loopback port; workers on "
                     "other hosts need e.g. tcp://0.0.0.0:PORT, with --keys)")  # fmt: skip
    _add_launcher(run)
    add_progress(run)
    run.set_defaults(func=cmd_live_run, exit_at_once=True)

    up = verbs.add_parser(
        "up", help="start a long-running swarm, print its control address, serve until Ctrl-C"
    )
    add_swarm_options(up)
    up.add_argument("--bind", default=DEFAULT_CONTROL, metavar="ADDR",
                    help=f"control address for status, attach, detach, report "
                    f"(default {DEFAULT_CONTROL})")  # fmt: skip
    up.add_argument("--query-bind", default="tcp://127.0.0.1:0", metavar="ADDR",
                    help="where clients send queries (default: a free port, printed)")  # fmt: skip
    up.add_argument("--worker-bind", default="tcp://127.0.0.1:0", metavar="ADDR",
                    help="where workers report (default: a free loopback port)")  # fmt: skip
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
    up.add_argument("--inject", action="append", default=[], metavar="SPEC", help=INJECT_HELP)
    _add_launcher(up)
    up.add_argument("--http", metavar="HOST:PORT",
                    help="serve an OpenAI-compatible front door there (POST /v1/chat/"
                    "completions, /v1/completions; GET /v1/models, /healthz), e.g. "
                    "127.0.0.1:8000 (port 0: any free one)")  # fmt: skip
    up.add_argument("--http-timeout", type=float, default=30.0, metavar="S",
                    help="a front-door request's deadline in the swarm; past it: 504 "
                    "(default 30)")  # fmt: skip
    up.set_defaults(func=cmd_live_up, exit_at_once=True)

    ask = verbs.add_parser(
        "ask", help="ask a running swarm one question on its query port; print the answer"
    )
    ask.add_argument("address", metavar="ADDR", help="the query address live up printed")
    ask.add_argument("question", nargs="?", metavar="QUESTION",
                     help="a free-text question (none: a pool query of --tokens)")  # fmt: skip
    ask.add_argument("--tokens", type=int, metavar="N",
                     help="prompt tokens (default: the question's, 4 chars a token)")  # fmt: skip
    ask.add_argument("--max-tokens", type=int, metavar="N",
                     help="tokens to generate (default 256)")  # fmt: skip
    ask.add_argument("--class", dest="qclass", type=int, default=0, metavar="I",
                     help="the query class index in the swarm's scenario (default 0)")  # fmt: skip
    ask.add_argument("--pool", type=int, metavar="N", help="the corpus pool query to ask")
    ask.add_argument("--timeout", type=float, default=30.0, metavar="S",
                     help="give up after S seconds (default 30)")  # fmt: skip
    ask.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    _add_keys(ask)
    ask.set_defaults(func=cmd_live_ask)

    inject = verbs.add_parser(
        "inject", help="apply one fault to a running swarm (its time counted from now)"
    )
    inject.add_argument("address", metavar="ADDR", help="the control address live up printed")
    inject.add_argument("spec", metavar="SPEC", help="KIND:TARGET@T[+D][=VALUE], e.g. "
                        "kill:retriever#1@0, delay:*@5+30=200±50 (live up --help)")  # fmt: skip
    _add_keys(inject)
    inject.set_defaults(func=cmd_live_inject)

    status = verbs.add_parser("status", help="workers, queues, controllers of a running swarm")
    status.add_argument("address", metavar="ADDR", help="the control address live up printed")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    _add_keys(status)
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
    _add_keys(attach)
    attach.set_defaults(func=cmd_live_attach)

    detach = verbs.add_parser("detach", help="return a Task of a running swarm to its heuristic")
    detach.add_argument("address", metavar="ADDR", help="the control address live up printed")
    detach.add_argument("task", metavar="TASK", help="e.g. shard-routing")
    detach.add_argument("--candidate", action="store_true",
                        help="end only the shadow or A/B candidate")  # fmt: skip
    _add_keys(detach)
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
    _add_keys(report)
    report.set_defaults(func=cmd_live_report)

    keys = verbs.add_parser(
        "keys", help="make CURVE key pairs for a swarm across machines (--keys DIR)"
    )
    keys.add_argument("directory", type=Path, metavar="DIR",
                      help="made if absent; keys already in it are kept")  # fmt: skip
    for role, plural in ROLE_DIRS.items():
        keys.add_argument(f"--{plural}", type=int, default=1, metavar="N",
                          help=f"{role} key pairs (default 1)")  # fmt: skip
    keys.set_defaults(func=cmd_live_keys)


def _add_launcher(p: argparse.ArgumentParser) -> None:
    p.add_argument("--launcher", choices=("local", "ray"), default="local",
                   help="where workers run: local subprocesses (default) or Ray actors, "
                   "placed by CPU, GPU and swarmsim-node:NODE resources (README)")  # fmt: skip
    p.add_argument("--ray-address", metavar="ADDR",
                   help="the Ray cluster to join, HOST:PORT (default: start a local Ray "
                   "instance sized for the swarm)")  # fmt: skip
    p.add_argument("--replace-dead", action=argparse.BooleanOptionalAction,
                   help="start a new worker in place of one whose process is gone (default: "
                   "on with --launcher ray, off with local, where a kill is for good as in "
                   "the simulator)")  # fmt: skip


def _launcher_options(args: argparse.Namespace) -> dict[str, Any]:
    """``LiveRun``'s launcher fields, checked (Ray is looked for, not imported)."""
    import importlib.util

    if args.ray_address is not None and args.launcher != "ray":
        raise SwarmError("--ray-address needs --launcher ray")
    if args.launcher == "ray" and importlib.util.find_spec("ray") is None:
        raise SwarmError("--launcher ray: Ray is not installed (pip install -e '.[ray]')")
    if args.ray_address is not None:
        from live.ray_launcher import probe_address

        probe_address(args.ray_address)  # one line, before any output or process
    replace = args.replace_dead if args.replace_dead is not None else args.launcher == "ray"
    return {"launcher": args.launcher, "ray_address": args.ray_address, "replace_dead": replace}


def _add_keys(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keys", type=Path, metavar="DIR",
                   help="a swarm's key directory: send as its first operator key")  # fmt: skip


def cmd_live_run(args: argparse.Namespace) -> int:
    from live.runner import run_live
    from live.shutdown import Stop

    from ..progress import Stages
    from ..render import render_summary

    overrides, duration = list(args.overrides), args.duration
    if args.trace is not None:
        replay = trace_replay(args, args.trace)
        overrides = [*replay.overrides(), *overrides]
        duration = duration or replay.load_duration_s()
    run = _live_run(args, overrides, duration, worker_bind=args.worker_bind)
    load = "the scenario's duration" if duration is None else f"{duration:g} s"
    with Stages(1, show_progress(args)).stage(f"live run: {args.scenario}, {load} of load",
                                              ticks=10) as stage:  # fmt: skip

        def update(fraction: float) -> None:  # tenths of a second in a short run
            digits = 1 if duration is not None and duration < 60 else 0
            at = "" if duration is None else f"{fraction * duration:.{digits}f}/{duration:g} s"
            stage.update(fraction, f"{at} of load" if at else "")

        with Stop.installed() as stop:  # SIGTERM or Ctrl-C: wind down, print what ran, 130
            summary = run_live(run, update, stop)
        stage.result = _live_result(summary)
    print(json.dumps(summary, indent=2) if args.json else render_summary(summary), flush=True)
    if stop():
        print("swarmsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _live_result(summary: dict[str, Any]) -> str:
    """The closing line of live run's stage: queries completed of submitted, and the p99."""
    q, p99 = summary["queries"], summary["latency_s"]["p99"]
    shown = "n/a" if p99 is None else f"{p99:.3g} s"
    return f"{q['completed']}/{q['submitted']} queries completed, p99 {shown}"


def _live_run(
    args: argparse.Namespace, overrides: list[str], duration: float | None, **extra: Any
) -> LiveRun:
    """The ``LiveRun`` that live run's and live up's shared options describe, checked."""
    from controllers.spec import resolve_live
    from live.auth import check_exposure
    from live.config import LiveConfig
    from live.keys import check_swarm_keys
    from live.runner import LiveRun

    if duration is not None and duration <= 0:
        raise SwarmError(f"--duration: expected a positive number of seconds, got {duration}")
    if args.record is not None and not args.record.parent.is_dir():
        raise SwarmError(f"--record: directory {args.record.parent} does not exist")
    if args.corpus is not None and not args.corpus.is_dir():
        raise SwarmError(f"--corpus: {args.corpus} is not a directory")
    if args.synth == "openai" and not (args.openai_url and args.openai_model):
        raise SwarmError("--synth openai needs --openai-url and --openai-model")
    if args.synth == "openai" and not args.openai_url.startswith(("http://", "https://")):
        raise SwarmError(f"--openai-url: expected http://HOST:PORT, got {args.openai_url!r}")
    if not args.openai_timeout > 0:
        raise SwarmError(f"--openai-timeout: expected seconds > 0, got {args.openai_timeout}")
    if not 0 <= args.log_fraction <= 1:
        raise SwarmError(f"--log-fraction: expected a fraction in [0, 1], got {args.log_fraction}")
    for spec in args.controllers:  # a bad or reference controller: one line, before any other
        resolve_live(spec)
    binds = [extra.get(f"{k}_bind", "tcp://127.0.0.1:0") for k in ("control", "query", "worker")]
    check_exposure(binds, args.keys is not None, args.insecure)  # one line, before any process
    if args.keys is not None:
        parties = ["worker"]
        if getattr(args, "load", True) or extra.get("http"):
            parties.append("client")
        if extra.get("http"):
            parties.append("operator")  # the front door's /healthz asks for STATUS
        check_swarm_keys(args.keys, tuple(parties))
    from live.admission import AdmissionConfig
    from live.guard import GuardConfig

    if args.client_rate is not None and not args.client_rate > 0:
        raise SwarmError(f"--client-rate: expected queries per second > 0, got {args.client_rate}")
    rate = args.client_rate
    guard = GuardConfig() if rate is None else GuardConfig(rate_qps=rate, burst=math.ceil(rate))
    if not 0 <= args.spin <= 1:
        raise SwarmError(f"--spin: expected seconds in [0, 1], got {args.spin}")
    config = {"route_log_fraction": args.log_fraction, "admission": AdmissionConfig(args.admission),
              "guard": guard, "spin_s": args.spin, **extra.pop("config", {})}  # fmt: skip
    inject = tuple(args.inject)
    parse_faults(inject, "--inject")  # a bad spec: one line, before any process starts
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
        openai_timeout_s=args.openai_timeout,
        metrics_port=args.metrics_port,
        record=args.record,
        config=LiveConfig(
            time_scale=args.time_scale, supervisors=getattr(args, "supervisors", False), **config
        ),
        inject=inject,
        keys=args.keys,
        insecure=args.insecure,
        **_launcher_options(args),
        **extra,
    )


def cmd_live_up(args: argparse.Namespace) -> int:
    from live.runner import serve
    from live.shutdown import Stop

    from ..render import render_summary

    overrides = list(args.overrides)
    if args.heartbeat is not None:
        if not args.heartbeat > 0:
            raise SwarmError(
                f"--heartbeat: expected a positive number of seconds, got {args.heartbeat}"
            )
        overrides.append(f"failures.heartbeat_interval_s={args.heartbeat}")
    if args.http is not None:
        from live.frontdoor import parse_bind

        try:
            parse_bind(args.http)
        except ValueError as err:
            raise SwarmError(str(err)) from None
    if not args.http_timeout > 0:
        raise SwarmError(f"--http-timeout: expected seconds > 0, got {args.http_timeout}")
    run = _live_run(
        args,
        overrides,
        args.duration,
        control_bind=args.bind,
        query_bind=args.query_bind,
        worker_bind=args.worker_bind,
        http=args.http,
        http_timeout_s=args.http_timeout,
    )

    def announce(up: dict[str, Any]) -> None:
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
        if up["http"]:
            print(f"  http     {up['http']}/v1   (OpenAI-compatible; GET /healthz)", flush=True)
        if up["keys"]:
            print(f"  keys     {up['keys']}   (operators: --keys DIR)", flush=True)
        print("Ctrl-C or SIGTERM stops it.", flush=True)

    if args.insecure and args.keys is None:
        print("swarmsim: warning: --insecure: anyone who reaches the swarm's addresses may "
              "join, query and steer it", file=sys.stderr)  # fmt: skip
    # SIGTERM (a supervisor) or Ctrl-C (also when started with SIGINT ignored, as a shell's
    # background job is): wind down within 2 s; a second signal cuts it short
    with Stop.installed() as stop:
        summary = serve(run, announce, load=args.load, stop=stop)
    print(json.dumps({"summary": summary}) if args.json else render_summary(summary), flush=True)
    return 0


def cmd_live_ask(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from live.client import Client
    from live.errors import LiveError

    if args.question is None and args.tokens is None:
        raise SwarmError("live ask: give a QUESTION or --tokens N")
    if not args.timeout > 0:
        raise SwarmError(f"--timeout: expected seconds > 0, got {args.timeout}")
    if not args.address.startswith(("tcp://", "ipc://")):
        raise SwarmError(f"{args.address!r} is not a swarm address (tcp://HOST:PORT, the "
                         "query address live up prints)")  # fmt: skip
    try:
        with Client(args.address, args.timeout, args.keys) as client:
            answer = client.ask(args.question, tokens=args.tokens, qclass=args.qclass,
                                max_tokens=args.max_tokens, pool=args.pool)  # fmt: skip
    except LiveError as err:
        raise SwarmError(str(err)) from None
    if args.json:
        print(json.dumps(asdict(answer)))
    elif answer.ok:
        print(answer.answer)
        stages = ", ".join(f"{s.get('layer')} {s.get('service_s', 0):.3f}s" for s in answer.stages)
        print(f"-- completed in {answer.latency_s:.3f} s; docs {answer.docs[:10]}; "
              f"recall {answer.recall}; {stages}", file=sys.stderr)  # fmt: skip
    else:
        detail = f" ({answer.detail})" if answer.detail else ""
        print(f"swarmsim: the swarm {answer.outcome} the query: {answer.reason}{detail}",
              file=sys.stderr)  # fmt: skip
    return 0 if answer.ok else 1


def cmd_live_status(args: argparse.Namespace) -> int:
    from live.operator import request

    from ..render import render_status

    st = request(args.address, "STATUS", keys=args.keys)
    print(json.dumps(st, indent=2) if args.json else render_status(st))
    return 0


def cmd_live_attach(args: argparse.Namespace) -> int:
    from controllers.spec import resolve_live
    from live.operator import artifact_hash, request

    task = resolve_live(args.controller).task  # a bad name, parameter or artifact stops here
    head, *params = args.controller.split(":")
    name = head.partition("=")[2] if "=" in head else head
    ref = label = ":".join([name, *params])
    if Path(name).is_dir():  # the coordinator reads the same files: give it an absolute path
        ref = ":".join([str(Path(name).resolve()), *params])
    mode = "shadow" if args.shadow else "split" if args.split is not None else "acting"
    payload = {"task": task, "controller": ref, "label": label, "mode": mode,
               "split": args.split or 0.0}  # fmt: skip
    payload["sha256"] = artifact_hash(ref)
    body = request(args.address, "ATTACH", payload, keys=args.keys)
    digest = f" (sha256 {body['sha256'][:12]}, verified)" if body["sha256"] else ""
    what = {"acting": "acting", "shadow": "as a shadow", "split": f"on a {args.split} split"}
    print(f"{task}: {label} attached {what[mode]}{digest}")
    return 0


def cmd_live_inject(args: argparse.Namespace) -> int:
    from live.operator import request

    fault = parse_fault(args.spec, "inject")  # a bad spec stops here, before any request
    body = request(args.address, "INJECT", {"spec": fault.text}, keys=args.keys)
    print(f"{body['fault']}: scheduled at {body['at']:.3f} s (swarm time now {body['now']:.3f} s)")
    return 0


def cmd_live_detach(args: argparse.Namespace) -> int:
    from live.operator import request

    which = "candidate" if args.candidate else "acting"
    body = request(args.address, "DETACH", {"task": args.task, "which": which}, keys=args.keys)
    for e in body["events"]:
        print(f"{e['task']}: {e['controller']} {e['change']}")
    if which == "acting":
        print(f"{args.task}: back on its heuristic")
    return 0


def cmd_live_report(args: argparse.Namespace) -> int:
    from ..live_report import against, from_recording, from_swarm, render, render_against

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
        report = from_swarm(args.source, keys=args.keys)
    else:
        raise SwarmError(f"{args.source}: neither a recording file nor a tcp:// address")
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def cmd_live_keys(args: argparse.Namespace) -> int:
    from live.keys import make_keys

    counts = {role: getattr(args, plural) for role, plural in ROLE_DIRS.items()}
    written = make_keys(args.directory, counts)
    for path in written:
        print(path)
    kept = "" if written else " (all of them were there already: kept)"
    private = args.directory / "private"
    print(f"{args.directory}: {len(written) // 2} key pairs made{kept}; give each machine "
          f"the public directories and only its own files of {private}")  # fmt: skip
    return 0

"""The options several commands share, declared once: scenario overrides, run options
(simulate, replay), trace options (replay, live run), swarm options (live run, live up) and
the progress bar."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from swarmsim.errors import SwarmError

if TYPE_CHECKING:
    from swarmsim.scenario import Scenario

    from ..replay import TraceReplay

# swarmsim.traces.FORMATS, written out so that building the parser imports no numpy (a test
# checks the two agree)
TRACE_FORMATS = ("auto", "azure-llm", "csv", "jsonl")


def add_overrides(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--set K=V``, repeatable, collected in ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V",
                   help=help)  # fmt: skip


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )


def show_progress(args: argparse.Namespace) -> bool:
    """Whether to draw a progress bar: ``--progress``/``--no-progress``, else a terminal."""
    return sys.stderr.isatty() if args.progress is None else args.progress


def add_run_options(p: argparse.ArgumentParser) -> None:
    """What simulate and replay share: controllers, output and progress."""
    p.add_argument("--controller", dest="controllers", action="append", default=[],
                   metavar="TASK=NAME|PATH",
                   help="a controller or policy artifact for its Task; repeatable")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--trace-out", type=Path, metavar="FILE", help="write the per-query timeline as JSONL"
    )
    add_progress(p)


INJECT_SIM = """\
--inject KIND:TARGET@T[+D][=VALUE], repeatable, appended to the scenario's faults:
  kill:ROLE[#i]@T         the agent crashes for good; declared dead after the heartbeat
                          timeout, its work retried (or failed past max_attempts)
  pause:ROLE[#i]@T+D      no service, no heartbeats for D; past the timeout it is declared
                          dead, its work retried, its late answers discarded; it rejoins
  hang:ROLE[#i]@T[+D]     the same, connected but stuck (without D: for good)
  slow:ROLE[#i]@T+D=X     its work progresses X times slower for D
  delay:LINK@T+D=MS[±J]   coordinator<->agent messages and heartbeats MS ± J ms later
                          (LINK: ROLE[#i], or * for every agent)
  drop:LINK@T+D=P         each such message lost with probability P: its query fails at
                          its deadline; lost heartbeats can declare a serving agent dead
  partition:NODE@T+D      the node's agents lose every message to or from the coordinator
                          (drop=1): declared dead, their work retried; rejoin after healing
  coordinator:restart@T   queries in flight fail (coordinator_restart) and their clients
                          resend them a deadline + heartbeat timeout after sending; the
                          agents rejoin a heartbeat timeout + 1 s later
  controller:MODE@T[+D]   MODE crash|hang|nan|invalid: attached controllers misbehave, and
                          their guardrails use the heuristic instead
ROLE is a layer or role name; #i its i-th agent in id order (#* all). The summary gains a
faults section (what was applied, false deaths, discarded answers, drops, availability)."""


def add_inject(p: argparse.ArgumentParser, epilog: str) -> None:
    """``--inject SPEC`` (repeatable), with ``epilog`` saying how each kind is realised."""
    p.add_argument("--inject", action="append", default=[], metavar="SPEC",
                   help="inject a fault (see below); repeatable")  # fmt: skip
    p.epilog = epilog
    p.formatter_class = argparse.RawDescriptionHelpFormatter


def with_injected(scenario: Scenario, specs: Sequence[str]) -> Scenario:
    """``scenario`` with the ``--inject`` faults appended to its ``faults:`` list; a bad spec
    raises a ``ConfigError`` naming it."""
    from swarmsim.faults import parse_fault

    if not specs:
        return scenario
    for spec in specs:
        parse_fault(spec, "--inject")
    return dataclasses.replace(scenario, faults=(*scenario.faults, *specs))


def add_trace_options(p: argparse.ArgumentParser, prefix: str) -> None:
    """How a trace is read and replayed; live run names them --trace-* beside its own."""
    p.add_argument(f"--{prefix}format", dest="trace_format", default="auto",
                   choices=TRACE_FORMATS, help="trace format")  # fmt: skip
    p.add_argument(f"--{prefix}map", dest="trace_map", action="append", default=[],
                   metavar="COLUMN=FIELD",
                   help="the file's COLUMN holds FIELD (timestamp, input_tokens, "
                        "output_tokens, blocks, session); repeatable")  # fmt: skip
    p.add_argument(f"--{prefix}time-unit", dest="trace_time_unit", default="auto",
                   choices=("s", "ms", "us", "auto"),
                   help="unit of numeric timestamps (default auto: seconds, unless whole "
                        "numbers read as seconds give under 0.05 requests/s and ms or us give "
                        "a plausible rate; the unit used is printed)")  # fmt: skip
    p.add_argument(f"--{prefix}block-tokens", dest="trace_block_tokens", type=int,
                   metavar="N", help="tokens per prefix block of the blocks field")  # fmt: skip
    p.add_argument(f"--{prefix}time-scale", dest="trace_time_scale", type=float, default=1.0,
                   metavar="X", help="arrival times x X (0.5: twice as fast)")  # fmt: skip
    p.add_argument(f"--{prefix}rate-scale", dest="trace_rate_scale", type=float, default=1.0,
                   metavar="X", help="X times as many requests at the same times")  # fmt: skip
    p.add_argument(f"--{prefix}window", dest="trace_window", metavar="START:END",
                   help="replay the trace's seconds START to END only")  # fmt: skip


def trace_replay(args: argparse.Namespace, path: Path) -> TraceReplay:
    """The trace at ``path`` read as the trace options in ``args`` say."""
    from ..replay import TraceReplay

    replay = TraceReplay(path, args.trace_format, tuple(args.trace_map), args.trace_time_scale,
                         args.trace_rate_scale, args.trace_window, args.trace_time_unit,
                         args.trace_block_tokens)  # fmt: skip
    print(f"swarmsim: {replay.summary()}", file=sys.stderr, flush=True)
    return replay


def duration_overrides(ref: str, duration: float) -> list[str]:
    """``--duration`` as scenario overrides; the warm-up is capped at a tenth of it."""
    from swarmsim.scenario_files import load_scenario

    if duration <= 0:
        raise SwarmError(f"--duration: expected a positive number of seconds, got {duration}")
    warmup = load_scenario(ref).warmup_s
    return [f"duration_s={duration}", f"warmup_s={min(warmup, duration / 10)}"]


def add_swarm_options(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--supervisors", action="store_true",
                   help="one node supervisor per scenario node: it starts and restarts that "
                   "node's workers and sends one heartbeat for all of them")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="workload seed (as in simulate)")
    add_overrides(p)
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
    p.add_argument("--openai-url", default="", metavar="URL",
                   help="the endpoint's base URL, without /v1: vLLM http://HOST:8000, "
                   "llama.cpp's llama-server http://HOST:8080, Ollama "
                   "http://HOST:11434")  # fmt: skip
    p.add_argument("--openai-model", default="", metavar="NAME",
                   help="the model name the endpoint serves (its GET /v1/models)")  # fmt: skip
    p.add_argument("--openai-timeout", type=float, default=60.0, metavar="S",
                   help="give up on one call after S seconds, or at its query's deadline if "
                   "sooner (default 60)")  # fmt: skip
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="emulated stage times (embedding, retrieval search, synthesis, judging) are "
        "the profile's times x X (default 1)",
    )
    p.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics (0: any port)"
    )
    p.add_argument("--keys", type=Path, metavar="DIR",
                   help="CURVE keys (swarmsim live keys DIR): encrypt every socket and admit "
                   "only the keys in DIR, each to its role's socket")  # fmt: skip
    p.add_argument("--insecure", action="store_true",
                   help="without --keys, allow binds other machines can reach (anyone who "
                   "reaches them may join, query and steer the swarm)")  # fmt: skip
    p.add_argument("--admission", choices=("deadline", "slo", "off"), default="deadline",
                   help="refuse at once a query predicted to miss its deadline (default), "
                   "to take more than half the SLO (slo: keeps goodput near its peak under "
                   "overload, results/reliability.md), or none before the backlog limit "
                   "(off)")  # fmt: skip
    p.add_argument("--spin", type=float, default=0.0, metavar="S",
                   help="after traffic, the coordinator polls without sleeping for S seconds "
                   "before it blocks: a steadier decision latency at light load for a busy "
                   "core (default 0: off; results/README.md, live runtime speed)")  # fmt: skip
    p.add_argument("--client-rate", type=float, metavar="Q/S",
                   help="queries per second one client may send (a second's worth at once) "
                   "before its queries are answered dropped/throttled (default 10000)")  # fmt: skip

"""Hostile peers against a live swarm (issue 17, items 6-9): a rogue process on every bound
socket, a flooding client, and overload past capacity, each beside honest load.

Each run starts a homelab swarm in this process (emulated stages at ``TIME_SCALE`` of the
profile's times), drives honest load from a separate ``live.load`` process, runs the
coordinator's loop here while watching the longest loop pass (a pass over ``HANG_S`` is a
hang) and this process's resident memory (``/proc/self/status``), and returns figures. The
default suite runs them small (tests/live/test_hostile.py); ``python -m experiments.hostile``
runs them at the issue's sizes and prints progress lines and one JSON result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from live.admission import AdmissionConfig
from live.config import LiveConfig
from live.guard import GuardConfig
from live.launcher import SINGLE_THREAD_ENV
from live.runner import LiveRun, Swarm
from swarmsim.query import AgentState

TIME_SCALE = 0.05  # emulated stage times: a twentieth of the profile's
SLO_S = 4.0  # homelab's 20 s SLO would be 1 s at this scale, below the large model's p99
# service (2 s): 4 s keeps an SLO a served query can meet
HANG_S = 1.0  # a coordinator loop pass taking more CPU than this is a hang (wall time is
# reported too, but on a shared machine it counts the time other processes ran)
ROOT = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    """This process's resident memory, MB (Linux /proc; no psutil)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _swarm(rate: float, config: LiveConfig, extra: tuple[str, ...] = ()) -> Swarm:
    overrides = (f"rate={rate}", f"slo_latency_s={SLO_S}", *extra)
    return Swarm(LiveRun("homelab", overrides=overrides, workers=8, config=config))


def _load(swarm: Swarm, rate: float, duration: float, drain: float) -> subprocess.Popen:
    """The honest load generator, a separate process."""
    cmd = [sys.executable, "-m", "live.load", "--address", swarm.coord.client_address,
           "--scenario", "homelab", "--duration", str(duration), "--drain", str(drain),
           "--pool", str(len(swarm.coord.files.queries)), "--set", f"rate={rate}"]  # fmt: skip
    env = {**os.environ, **SINGLE_THREAD_ENV, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def _rogue(swarm: Swarm, messages: int, rotate: int, flood: bool) -> subprocess.Popen:
    coord = swarm.coord
    addresses = [coord.worker_address, coord.client_address, coord.control_address]
    if flood:
        addresses = [coord.client_address]
    cmd = [sys.executable, "-m", "live.rogue", "--messages", str(messages), "--rotate",
           str(rotate), *[f"--address={a}" for a in addresses]]  # fmt: skip
    if flood:
        cmd.append("--flood")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def _serve(
    swarm: Swarm, done: Callable[[], bool], limit_s: float, progress: Callable[[], None]
) -> dict[str, float]:
    """Run the coordinator's loop until ``done()``: its longest pass (wall and CPU seconds)
    and peak memory."""
    coord, end = swarm.coord, time.monotonic() + limit_s
    longest = longest_cpu = 0.0
    peak, next_note = rss_mb(), time.monotonic() + 5
    while not done() and time.monotonic() < end:
        t, cpu = time.monotonic(), time.thread_time()
        coord.step(0.05)
        longest = max(longest, time.monotonic() - t)
        longest_cpu = max(longest_cpu, time.thread_time() - cpu)
        if t >= next_note:
            peak, next_note = max(peak, rss_mb()), t + 5
            progress()
    return {"longest_pass_s": longest, "longest_pass_cpu_s": longest_cpu,
            "rss_peak_mb": max(peak, rss_mb())}  # fmt: skip


def _json_line(proc: subprocess.Popen) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=30)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


@dataclass(frozen=True)
class Attack:
    """One rogue process: ``messages`` hostile frames to every bound socket (a fresh
    identity every ``rotate``), or with ``flood`` valid queries to the client socket."""

    messages: int
    rotate: int = 0
    flood: bool = False


def attack(
    attacks: tuple[Attack, ...], rate: float = 2.0, honest_s: float = 5.0,
    guard: GuardConfig | None = None, say: Callable[[str], None] = lambda s: None,
) -> dict[str, Any]:  # fmt: skip
    """``attacks`` one after another, beside honest load at ``rate`` for ``honest_s``, on
    one swarm: per attack, what the rogue saw and the guard did; in all, crashes, hangs,
    honest queries served and memory."""
    config = LiveConfig(time_scale=TIME_SCALE, guard=guard or GuardConfig())
    with _swarm(rate, config) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        rss0 = rss_mb()
        load = _load(swarm, rate, honest_s, drain=4 * SLO_S + 5)
        watches, runs = [], []
        try:

            def note() -> None:
                say(f"  t={coord.now():.0f}s received={coord.counts['received']} "
                    f"guard={coord.guard.counts} honest={coord.metrics.completed} "
                    f"rss={rss_mb():.0f}MB")  # fmt: skip

            for one in attacks:
                before = _guard_counts(coord)
                rogue = _rogue(swarm, one.messages, one.rotate, one.flood)
                try:
                    watches.append(_serve(swarm, lambda r=rogue: r.poll() is not None, 3600, note))
                    out = _json_line(rogue)
                finally:
                    _reap(rogue)
                after = _guard_counts(coord)
                runs.append({"rogue": out, **{k: after[k] - before[k] for k in after}})
            watches.append(_serve(swarm, lambda: load.poll() is not None and not coord.active,
                                  honest_s + 4 * SLO_S + 30, note))  # fmt: skip
            client = _json_line(load)
        finally:
            _reap(load)
        alive = [swarm.launcher.alive(a.id) for a in coord.agents.values()]
        running = [a.state == AgentState.RUNNING for a in coord.agents.values()]
        longest = max(w["longest_pass_cpu_s"] for w in watches)
        return {
            "attacks": runs,
            "crashes": len(alive) - sum(alive) + len(running) - sum(running),
            "hangs": int(longest > HANG_S),
            "longest_pass_cpu_s": longest,
            "longest_pass_s": max(w["longest_pass_s"] for w in watches),
            "worker_deaths": coord.counts["deaths"],
            "outcomes": dict(coord.metrics.reasons),
            "rss_start_mb": rss0,
            "rss_peak_mb": max(w["rss_peak_mb"] for w in watches),
            "honest": client,  # what the honest client sent and the answers it got
            "in_flight": len(coord.active),
        }


def _guard_counts(coord) -> dict[str, int]:
    m = coord.metrics
    return {"received": coord.counts["received"],
            "protocol_errors": sum(coord.protocol_errors.values()),
            **coord.guard.counts, "submitted": m.submitted,
            "throttled_dropped": m.reasons.get("throttled", 0)}  # fmt: skip


def _reap(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def overload(
    rate: float, objective: str, duration: float, say: Callable[[str], None] = lambda s: None
) -> dict[str, Any]:
    """Honest load at ``rate`` for ``duration`` with admission by ``objective``: goodput
    (completed within the SLO per second), the p99 of admitted queries (a failure counts as
    infinitely late), and how fast refusals were answered."""
    config = LiveConfig(time_scale=TIME_SCALE, admission=AdmissionConfig(objective=objective))
    with _swarm(rate, config, ("warmup_s=0",)) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        coord.record = True
        load = _load(swarm, rate, duration, drain=4 * SLO_S + 5)
        try:

            def note() -> None:
                m = coord.metrics
                say(f"  rate={rate} {objective} t={coord.now():.0f}s done={m.completed} "
                    f"dropped={m.dropped}")  # fmt: skip

            watch = _serve(swarm, lambda: load.poll() is not None and not coord.active,
                           duration + 4 * SLO_S + 30, note)  # fmt: skip
            client = _json_line(load)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        rows = coord.pipeline.timeline
    return {"rate": rate, "objective": objective, "duration_s": duration,
            **_goodput(rows, duration), "client": client, **watch}  # fmt: skip


def _goodput(rows: list[dict[str, Any]], duration: float) -> dict[str, Any]:
    admitted = [r for r in rows if r["reason"] not in ("would_miss_slo", "backlog_full")]
    late = [r["end"] - r["arrival"] if r["outcome"] == "completed" else math.inf for r in admitted]
    late.sort()
    good = sum(1 for x in late if x <= SLO_S)
    refused = [r["end"] - r["arrival"] for r in rows if r["reason"] == "would_miss_slo"]
    return {
        "queries": len(rows),
        "admitted": len(admitted),
        "refused": len(refused),
        "goodput_qps": good / duration,
        "admitted_p99_s": late[min(int(0.99 * len(late)), len(late) - 1)] if late else None,
        "refusal_max_s": max(refused, default=None),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.hostile", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    rogue = sub.add_parser("rogue", help="a rogue on every bound socket beside honest load")
    rogue.add_argument("--messages", type=int, default=1_000_000)
    rogue.add_argument("--rotate", type=int, default=100, help="a new identity every K")
    rogue.add_argument("--honest-s", type=float, default=60.0, help="honest load's duration")
    flood = sub.add_parser("flood", help="one client flooding valid queries")
    flood.add_argument("--messages", type=int, default=1_000_000)
    flood.add_argument("--honest-s", type=float, default=60.0, help="honest load's duration")
    over = sub.add_parser("overload", help="peak goodput, then goodput at 3x capacity")
    over.add_argument("--rates", default="4,6,8,10,12", help="rates searched for the peak")
    over.add_argument("--duration", type=float, default=30.0)
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.what == "overload":
        result = _overload_curve([float(r) for r in args.rates.split(",")], args.duration, say)
    else:
        one = Attack(args.messages, args.rotate if args.what == "rogue" else 0,
                     flood=args.what == "flood")  # fmt: skip
        guard = GuardConfig(rate_qps=100, burst=100) if one.flood else None
        result = attack((one,), honest_s=args.honest_s, guard=guard, say=say)
    print(json.dumps(result))
    return 0


def _overload_curve(rates: list[float], duration: float, say: Callable[[str], None]) -> dict:
    """Goodput over ``rates`` with admission by SLO (its peak and the rate there, taken as
    capacity), then at 3x that rate under each admission objective."""
    curve = []
    for rate in rates:
        curve.append(overload(rate, "slo", duration, say))
        say(f"rate {rate}: goodput {curve[-1]['goodput_qps']:.2f}/s")
    best = max(curve, key=lambda r: r["goodput_qps"])
    at3 = []
    for objective in ("slo", "deadline", "off"):
        at3.append(overload(3 * best["rate"], objective, duration, say))
        say(f"3x ({3 * best['rate']}/s) {objective}: goodput {at3[-1]['goodput_qps']:.2f}/s")
    return {"curve": curve, "peak_goodput_qps": best["goodput_qps"], "capacity_qps": best["rate"],
            "at_3x": at3}  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

"""Simulator speed against a bare SimPy loop measured in the same run.

Prints and writes ``results/sim_speed.json``:
- bare SimPy: events per wall-second of 100 processes looping on ``env.timeout``;
- escape-velocity at 50,000 queries/hour for one simulated hour: wall seconds, events per
  wall-second and its ratio to the bare loop (goal >= 0.5);
- agi-1000: simulated seconds per wall-second (goal >= 30x real time);
- the issue-15 scenarios and their control twins, each at its own duration with the
  simulator's default controllers: events per wall-second (no goal; they must not regress).

Run: ``python benchmarks/sim_speed.py [--profile] [--agi-duration S] [--note TEXT]``. Pinned to
one core.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import time
from pathlib import Path

import simpy

from swarmsim import Simulation, load_scenario

RESULTS = Path(__file__).resolve().parents[1] / "results" / "sim_speed.json"
ISSUE_15 = (  # each mechanism's scenario, then its control twin
    "prefix-cache",
    "prefix-cache-control",
    "hot-shards",
    "hot-shards-control",
    "diurnal",
    "diurnal-control",
    "shared-gpus",
    "shared-gpus-control",
)


def bare_simpy(n_events: int = 1_000_000, procs: int = 100) -> float:
    """Events per wall-second of a bare SimPy loop of timeouts."""
    env = simpy.Environment()

    def loop(env: simpy.Environment):
        while True:
            yield env.timeout(1.0)

    for _ in range(procs):
        env.process(loop(env))
    start = time.perf_counter()
    env.run(until=n_events / procs)
    return n_events / (time.perf_counter() - start)


def run(name: str, overrides: list[str], profile: bool = False) -> dict:
    sim = Simulation(load_scenario(name, overrides), seed=0)
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    cpu = time.process_time()
    summary = sim.run()
    cpu = time.process_time() - cpu
    if prof:
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)
    return {
        "scenario": name,
        "overrides": overrides,
        "sim_s": summary["duration_s"],
        "wall_s": summary["wall_s"],
        "cpu_s": cpu,  # this process's CPU seconds: less sensitive than wall to a shared machine
        "events": summary["events"],
        "events_per_s": summary["events"] / summary["wall_s"],
        "queries": summary["queries"]["submitted"],
        "realtime_x": summary["duration_s"] / summary["wall_s"],
        "latency_p50_s": summary["latency_s"]["p50"],
        "latency_p99_s": summary["latency_s"]["p99"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", action="store_true", help="cProfile escape-velocity")
    parser.add_argument("--agi-duration", type=float, default=300.0)
    parser.add_argument("--note", default="", help="written as the JSON's notes")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    bare = bare_simpy()
    print(f"bare SimPy timeouts: {bare:,.0f} events/s")
    rows = []
    row = run("escape-velocity", ["rate=13.8889"], args.profile)
    row["ratio_to_bare"] = row["events_per_s"] / bare
    rows.append(row)
    print(
        f"escape-velocity 1 h @ 50k q/h: {row['wall_s']:.2f} s wall ({row['cpu_s']:.2f} s CPU), "
        f"{row['events']:,} events, "
        f"{row['events_per_s']:,.0f} ev/s, ratio to bare {row['ratio_to_bare']:.2f}"
    )
    row = run("agi-1000", [f"duration_s={args.agi_duration}"])
    rows.append(row)
    print(
        f"agi-1000 {args.agi_duration:.0f} s: {row['wall_s']:.2f} s wall, "
        f"{row['realtime_x']:.1f}x real time, {row['events_per_s']:,.0f} ev/s"
    )
    for name in ISSUE_15:
        row = run(name, [])
        rows.append(row)
        print(
            f"{name} {row['sim_s']:.0f} s: {row['wall_s']:.2f} s wall, {row['events']:,} events, "
            f"{row['events_per_s']:,.0f} ev/s"
        )
    out = {
        "command": "python benchmarks/sim_speed.py",
        "notes": args.note,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, simpy {simpy.__version__}, pinned to one core",
        "bare_simpy_events_per_s": bare,
        "runs": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

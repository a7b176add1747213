"""The simulator at the large scale point: agi-1000 at 1,200, 10,000 and 50,000 agents, one core.

Prints one line per stage and writes ``results/scale_sim.json``. The agent count is agi-1000's
``nodes_per_pod`` parameter (5 pods of 8-GPU nodes, 80 agents a node): 3, 25 (the scenario as
written) and 125. Two query rates:

- ``fixed``: the scenario's 120 queries/s at every size, so the work per simulated second is
  the same and what grows with the cluster is per-agent overhead (the goal: >= 30x real time
  at 10,000 agents, memory per agent flat from 1k to 50k);
- ``proportional``: 120 q/s per 10,000 agents (14.4 and 600 q/s), the same load per agent,
  which measures throughput (events per second) on a bigger model.

Each measurement is a fresh child process pinned to the same core as this one, so memory
peaks do not mix: it imports swarmsim, builds the simulation (corpus, topology; timed apart),
then runs ``--duration`` simulated seconds (``Simulation.run``: placing the agents at time 0,
then the events) and reports wall and CPU seconds, events, and ``ru_maxrss`` after the run
less ``ru_maxrss`` before the build (peak resident memory the simulation added, which includes
the corpus build's transient). A second child per size measures, with ``tracemalloc``, the
bytes the model holds per agent once placed (build and placement only: tracemalloc slows a
run several times), then counts the Python function calls of a short run (cProfile): per
event, a figure load cannot disturb. Each run is repeated ``--repeats`` times and the one
with the least CPU time kept: on a shared machine CPU time is the figure load disturbs least,
and the least disturbed run is the closest to the code's own cost. A bare SimPy loop of
timeouts (the best of three, in this process, first) is the context for the events per
CPU-second. The cluster starts warm (every agent running at time 0), so no warm-up is
discarded from the timing; queues fill over the first seconds, and the metrics skip the first
sixth of the run.

Run: ``python benchmarks/sim_scale.py [--duration S] [--repeats N] [--note TEXT]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import simpy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "scale_sim.json"
NODES_PER_POD = (3, 25, 125)  # 1,200, 10,000 and 50,000 agents
AGENTS_PER_NODE, PODS, RATE = 80, 5, 120.0  # agi-1000 as written: 120 q/s on 10,000 agents
CALLS_S = 30.0  # simulated seconds of the function-call count


def bare_simpy(n_events: int = 1_000_000, procs: int = 100) -> tuple[float, float]:
    """Events per wall-second and per CPU-second of a bare SimPy loop of timeouts (as in
    sim_speed.py)."""
    env = simpy.Environment()

    def loop(env: simpy.Environment) -> Generator[simpy.Event, None, None]:
        while True:
            yield env.timeout(1.0)

    for _ in range(procs):
        env.process(loop(env))
    start, cpu = time.perf_counter(), time.process_time()
    env.run(until=n_events / procs)
    return n_events / (time.perf_counter() - start), n_events / (time.process_time() - cpu)


def overrides(nodes_per_pod: int, rate: float, duration: float) -> list[str]:
    return [
        f"nodes_per_pod={nodes_per_pod}",
        f"rate={rate}",
        f"duration_s={duration}",
        f"warmup_s={duration / 6}",
    ]


def child_run(nodes_per_pod: int, rate: float, duration: float) -> dict[str, Any]:
    """One timed run in this (fresh) process."""
    from swarmsim import Simulation, load_scenario

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    sim = Simulation(load_scenario("agi-1000", overrides(nodes_per_pod, rate, duration)), seed=0)
    build_s = time.perf_counter() - t
    cpu = time.process_time()
    summary = sim.run()
    cpu = time.process_time() - cpu
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    agents = len(sim.cluster.agents)
    added = (rss1 - rss0) * 1024  # ru_maxrss is KiB on Linux
    events = summary["events"]
    assert events is not None  # the simulator counts its events
    return {
        "nodes_per_pod": nodes_per_pod,
        "agents": agents,
        "rate_qps": rate,
        "sim_s": summary["duration_s"],
        "build_s": build_s,
        "wall_s": summary["wall_s"],
        "cpu_s": cpu,
        "events": events,
        "events_per_s": events / summary["wall_s"],
        "realtime_x": summary["duration_s"] / summary["wall_s"],
        "cpu_realtime_x": summary["duration_s"] / cpu,
        "queries": summary["queries"]["submitted"],
        "latency_p99_s": summary["latency_s"]["p99"],
        "peak_rss_added_mb": added / 2**20,
        "peak_rss_added_per_agent_kb": added / agents / 1024,
    }


def child_memory(nodes_per_pod: int) -> dict[str, Any]:
    """Bytes the model holds (tracemalloc) after the build and after placing the agents; then
    Python function calls per event over ``CALLS_S`` simulated seconds (cProfile): a count
    that load cannot disturb, and that would grow with the cluster if any event scanned it."""
    import cProfile
    import pstats
    import tracemalloc

    from swarmsim import Simulation, load_scenario

    tracemalloc.start()
    sim = Simulation(load_scenario("agi-1000", overrides(nodes_per_pod, RATE, CALLS_S)), seed=0)
    built = tracemalloc.get_traced_memory()[0]
    sim.start()
    placed = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    agents = len(sim.cluster.agents)
    profile = cProfile.Profile()
    profile.enable()
    summary = sim.run()
    profile.disable()
    calls: int = pstats.Stats(profile).total_calls  # type: ignore[attr-defined]
    events = summary["events"]
    assert events is not None  # the simulator counts its events
    return {
        "nodes_per_pod": nodes_per_pod,
        "agents": agents,
        "built_mb": built / 2**20,
        "placed_bytes_per_agent": (placed - built) / agents,
        "calls_sim_s": CALLS_S,
        "calls": calls,
        "calls_per_event": calls / events,
    }


def spawn(*args: str) -> dict[str, Any]:
    """Run this file as a child with ``args``; its one JSON line."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="simulated seconds a run")
    parser.add_argument("--repeats", type=int, default=2, help="runs a stage; least CPU kept")
    parser.add_argument("--note", default="", help="written as the JSON's notes")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, npp, rate = args.child[0], int(args.child[1]), float(args.child[2])
        result = child_run(npp, rate, args.duration) if kind == "run" else child_memory(npp)
        print(json.dumps(result))
        return
    if hasattr(os, "sched_setaffinity"):  # children inherit the one core
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    load_start = load()
    print(f"load average at the start: {load_start}", flush=True)
    bare_wall, bare = max(bare_simpy() for _ in range(3))  # the least disturbed of three
    print(
        f"bare SimPy: {bare:,.0f} events a CPU-second ({bare_wall:,.0f} a wall-second)", flush=True
    )
    runs, memory = [], []
    for npp in NODES_PER_POD:
        agents = npp * PODS * AGENTS_PER_NODE
        rates = {"fixed": RATE, "proportional": RATE * agents / 10_000}
        for kind, rate in rates.items():
            if kind == "proportional" and rate == RATE:
                continue  # the fixed run at 10,000 agents is this one
            tries = [
                spawn("run", str(npp), str(rate), f"--duration={args.duration}")
                for _ in range(args.repeats)
            ]
            row = {"rate_kind": kind, **min(tries, key=lambda r: r["cpu_s"])}
            row["cpu_s_all"] = [r["cpu_s"] for r in tries]
            row["ratio_to_bare"] = row["events"] / row["cpu_s"] / bare  # both per CPU-second
            runs.append(row)
            print(
                f"{row['agents']:>6,} agents, {kind} {rate:g} q/s, {row['sim_s']:.0f} s: "
                f"{row['wall_s']:.2f} s wall ({row['cpu_s']:.2f} s CPU), "
                f"{row['realtime_x']:.1f}x real time ({row['cpu_realtime_x']:.1f}x by CPU), "
                f"{row['events']:,} events, {row['events'] / row['cpu_s']:,.0f} a CPU-second "
                f"({row['ratio_to_bare']:.2f} of bare), build {row['build_s']:.2f} s, "
                f"peak RSS +{row['peak_rss_added_mb']:.0f} MB "
                f"({row['peak_rss_added_per_agent_kb']:.1f} KB/agent)",
                flush=True,
            )
        mem = spawn("memory", str(npp), str(RATE))
        memory.append(mem)
        print(
            f"{mem['agents']:>6,} agents: tracemalloc {mem['built_mb']:.1f} MB after the build, "
            f"+{mem['placed_bytes_per_agent']:,.0f} B/agent placed; {mem['calls']:,} Python calls "
            f"in {CALLS_S:.0f} simulated s, {mem['calls_per_event']:.2f} an event",
            flush=True,
        )
    load_end = load()
    print(f"load average at the end: {load_end}", flush=True)
    out = {
        "command": f"python benchmarks/sim_scale.py --duration {args.duration:g}",
        "notes": args.note,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"python {platform.python_version()}, simpy {simpy.__version__}, pinned to one core",
        "load_average": {"start": load_start, "end": load_end},
        "bare_simpy_events_per_cpu_s": bare,
        "bare_simpy_events_per_s": bare_wall,
        "runs": runs,
        "memory": memory,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}", flush=True)


if __name__ == "__main__":
    main()

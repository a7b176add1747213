"""Live runtime speed against raw pyzmq, measured in the same run (a benchmark, not a test).

1. Raw baseline: a ROUTER echo process and a DEALER client, msgpack header + payload frames
   of 100 B and 2 KiB: pipelined throughput (messages/s one way, and per CPU-second of the
   client), round-trip p50, and the same in lockstep (one message in flight, as most of the
   coordinator's exchanges with one worker are).
2. The coordinator's message throughput with zero-time backends (``time_scale=0``): homelab
   on 8 workers saturated by the load generator; messages/s through the coordinator divided
   by the raw echo's, per wall second (the 2 cores are shared by the coordinator, 8 workers
   and the load generator) and per CPU-second of the coordinator's own process, with that
   CPU split between its Python thread and ZeroMQ's I/O thread.
3. Added latency per query over a raw round trip, at light load (queries one at a time).
4. A routing decision in the live loop with the committed routing MLP artifact attached:
   ``choice_us`` is the view, the observation and the policy's act (the decision before it
   is applied), ``observe_us`` and ``decision_us`` its two parts; at light load (the loop
   idles between queries), with and without ``LiveConfig.spin_s``, and saturated.
5. The VM's cold-wake cost: the same act, and a trivial Python loop, called hot, after 10 ms
   asleep, after 2 ms of a busy loop and after reading 32 MB, in this process. What ran
   between two calls sets the next one's cost on this VM (its caches are shared with other
   tenants), which is what a decision in the live loop pays.

Run: ``python benchmarks/live_speed.py [--out results/live_speed.json]``. Profile the
saturated coordinator with ``py-spy record -f raw -o sat.txt -- python
benchmarks/live_speed.py --only saturated``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

from live.config import LiveConfig
from live.runner import LiveRun, run_live

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "results" / "training" / "routing-escape-velocity" / "policy"


def _echo(address: str, ready) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port(address)
    ready.put(port)
    while True:
        frames = sock.recv_multipart()
        if frames[1] == b"stop":
            break
        sock.send_multipart(frames)
    ctx.destroy(linger=0)


def raw_echo(size: int, n: int = 20_000, window: int = 500) -> dict[str, float]:
    """Pipelined echo throughput and one-at-a-time round trip between two processes."""
    queue = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_echo, args=("tcp://127.0.0.1", queue))
    proc.start()
    port = queue.get(timeout=30)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{port}")
    head = msgpack.packb({"v": 1, "type": "DATA", "action": "SEARCH", "task": "1.1.0.1"})
    body = b"x" * size
    try:
        rtts, cpu = [], time.process_time()
        for _ in range(2000):
            t = time.perf_counter()
            sock.send_multipart([head, body])
            sock.recv_multipart()
            rtts.append(time.perf_counter() - t)
        lockstep_cpu = time.process_time() - cpu
        start, cpu, sent, got = time.perf_counter(), time.process_time(), 0, 0
        while got < n:
            while sent < n and sent - got < window:
                sock.send_multipart([head, body])
                sent += 1
            sock.recv_multipart()
            got += 1
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        sock.send_multipart([b"stop", b""])
    finally:
        ctx.destroy(linger=0)
        proc.join(5)
        if proc.is_alive():
            proc.kill()
    return {
        "msgs_per_s": 2 * n / elapsed,
        "msgs_per_cpu_s": 2 * n / cpu,  # the client's CPU: it sends and receives each one
        "rtt_p50_us": float(np.median(rtts) * 1e6),
        # one message in flight at a time: each send wakes ZeroMQ's I/O thread
        "lockstep_msgs_per_s": 2 * len(rtts) / sum(rtts),
        "lockstep_msgs_per_cpu_s": 2 * len(rtts) / lockstep_cpu,
    }


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name (Linux /proc)."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                name = f.read().strip()
        except OSError:  # the thread ended meanwhile
            continue
        key = (
            "zmq_io"
            if name.startswith("ZMQbg/IO")
            else "python"
            if tid == str(os.getpid())
            else "other"
        )
        out[key] = out.get(key, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def live_saturated(duration: float) -> dict[str, float]:
    run = LiveRun(
        "homelab",
        overrides=("rate=3000",),
        duration_s=duration,
        workers=8,
        config=LiveConfig(time_scale=0.0, max_backlog=2000),
    )
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:  # the zmq I/O thread's CPU is read while the swarm still runs
        while not done.wait(0.2):
            seen.update(_thread_cpu())

    watcher = threading.Thread(target=watch, daemon=True)
    before = _thread_cpu()
    watcher.start()
    try:
        s = run_live(run)
    finally:
        done.set()
        watcher.join()
    msgs = s["messages"]["sent"] + s["messages"]["received"]
    return {
        "completed_qps": s["queries"]["completed"] / s["duration_s"],
        "coordinator_msgs_per_s": msgs / s["duration_s"],
        "coordinator_msgs_per_cpu_s": msgs / s["coordinator_cpu_s"],
        "coordinator_cpu_share": s["coordinator_cpu_s"] / s["duration_s"],
        # start-up included: the python thread also built the corpus and started workers
        "cpu_s_python_thread": seen.get("python", 0.0) - before.get("python", 0.0),
        "cpu_s_zmq_io_thread": seen.get("zmq_io", 0.0),
        "dropped": s["queries"]["dropped"],
        "failed": s["queries"]["failed"],
    }


def live_routed(duration: float, rate: float, spin_s: float = 0.0) -> dict[str, float]:
    """Queries at ``rate`` with the routing artifact attached: latency and decision cost."""
    run = LiveRun(
        "homelab",
        overrides=(f"rate={rate}",),
        duration_s=duration,
        workers=8,
        controllers=(f"shard-routing={POLICY}",),
        config=LiveConfig(time_scale=0.0, max_backlog=2000, spin_s=spin_s),
    )
    s = run_live(run)
    ctrl = s["controllers"]["shard-routing"]
    return {
        "rate": rate,
        "spin_s": spin_s,
        "query_p50_s": s["latency_s"]["p50"],
        "query_p99_s": s["latency_s"]["p99"],
        **{
            f"{k}_us_{p}": ctrl[f"{k}_us_{p}"]
            for k in ("choice", "observe", "decision")
            for p in ("p50", "p99")
        },
        "completed": s["queries"]["completed"],
        "dropped": s["queries"]["dropped"],
        "fallbacks": sum(ctrl["fallbacks"].values()),
    }


def cold_wake(calls: int = 300, idle_s: float = 0.01) -> dict[str, float]:
    """p50/p99 microseconds of the guarded routing decision and of a trivial Python loop,
    back to back, after ``idle_s`` asleep, after a 2 ms busy loop and after a 32 MB read."""
    from controllers.spec import resolve
    from envs.registry import make_task

    policy = resolve(str(POLICY)).build()
    space = make_task("shard-routing").observation_space
    obs = np.random.default_rng(0).uniform(0, 1, (calls, *space.shape)).astype(np.float32)

    def trivial(_o) -> int:
        return sum(range(200))

    def busy() -> int:  # 2 ms of a loop that touches almost no memory; its passes
        end, passes = time.perf_counter() + 0.002, 0
        while time.perf_counter() < end:
            passes += 1
        return passes

    sweep = np.ones(4_000_000)  # 32 MB: more than this VM's caches

    between = {
        "hot": lambda: None,
        "after_idle": lambda: time.sleep(idle_s),
        "after_busy_2ms": busy,
        "after_32mb_sweep": sweep.sum,
    }
    out: dict[str, float] = {}
    for name, fn in (("decision", policy.act), ("trivial", trivial)):
        for label, before in between.items():
            times = []
            for o in obs:
                before()
                t = time.perf_counter()
                fn(o)
                times.append((time.perf_counter() - t) * 1e6)
            out[f"{name}_{label}_us_p50"] = float(np.percentile(times, 50))
            out[f"{name}_{label}_us_p99"] = float(np.percentile(times, 99))
    return out


def _stage(name: str) -> None:
    print(f"[live_speed] {name}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--only", choices=("saturated",), help="one stage (for a profiler)")
    args = parser.parse_args()
    if args.only == "saturated":
        print(json.dumps(live_saturated(args.duration), indent=2))
        return
    _stage("raw pyzmq echo")
    raw = {size: raw_echo(size) for size in (100, 2048)}
    _stage("cold wake")
    wake = cold_wake()
    _stage("coordinator saturated")
    sat = live_saturated(args.duration)
    runs = {}
    for name, rate, spin in (("light", 20, 0.0), ("light_spin", 20, 0.002),
                             ("loaded", 150, 0.0), ("saturated", 3000, 0.0)):  # fmt: skip
        _stage(f"routing decisions: {name} ({rate} q/s, spin {spin} s)")
        runs[name] = live_routed(args.duration, rate, spin)
    # per query at light load: 1 embed + 4 searches (parallel) + 1 synth + 1 eval = 4
    # sequential worker round trips, plus the client's own round trip
    hops = 5
    added = runs["light"]["query_p50_s"] * 1e6 - hops * raw[100]["rtt_p50_us"]
    result = {
        "raw_echo": {str(k): v for k, v in raw.items()},
        "cold_wake": wake,
        "saturated": sat,
        "routing": runs,
        "ratio_coordinator_to_raw_100B": sat["coordinator_msgs_per_s"] / raw[100]["msgs_per_s"],
        "ratio_coordinator_to_raw_100B_per_cpu_s": sat["coordinator_msgs_per_cpu_s"]
        / raw[100]["msgs_per_cpu_s"],
        "ratio_coordinator_to_lockstep_100B_per_cpu_s": sat["coordinator_msgs_per_cpu_s"]
        / raw[100]["lockstep_msgs_per_cpu_s"],
        "added_latency_per_query_us": added,
        "load_average": os.getloadavg(),
        "command": "python benchmarks/live_speed.py --out results/live_speed.json",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Live runtime speed against raw pyzmq, measured in the same run (a benchmark, not a test).

1. Raw baseline: a ROUTER echo process and a DEALER client, msgpack header + payload frames
   of 100 B and 2 KiB: pipelined throughput (messages/s one way, and per CPU-second of the
   client) and round-trip p50.
2. The coordinator's message throughput with zero-time backends (``time_scale=0``): homelab
   on 8 workers saturated by the load generator; messages/s through the coordinator divided
   by the raw echo's, per wall second (the 2 cores are shared by the coordinator, 8 workers
   and the load generator) and per CPU-second of the coordinator's own process.
3. Added latency per query over a raw round trip, at light load (queries one at a time).
4. Controller decision latency in the live loop for the committed routing MLP artifact, at
   light load (the loop idles between queries) and under load (it does not).
5. The VM's cold-wake cost: the same decision, and a trivial Python loop, called hot and
   after 10 ms asleep, in this process. An idle loop's next call runs several times slower
   on this VM, which is what the light-load decision latency pays.

Run: ``python benchmarks/live_speed.py [--out results/live_speed.json]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
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
        rtts = []
        for _ in range(2000):
            t = time.perf_counter()
            sock.send_multipart([head, body])
            sock.recv_multipart()
            rtts.append(time.perf_counter() - t)
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
    }


def live_saturated(duration: float) -> dict[str, float]:
    run = LiveRun(
        "homelab",
        overrides=("rate=3000",),
        duration_s=duration,
        workers=8,
        config=LiveConfig(time_scale=0.0, max_backlog=2000),
    )
    s = run_live(run)
    msgs = s["messages"]["sent"] + s["messages"]["received"]
    return {
        "completed_qps": s["queries"]["completed"] / s["duration_s"],
        "coordinator_msgs_per_s": msgs / s["duration_s"],
        "coordinator_msgs_per_cpu_s": msgs / s["coordinator_cpu_s"],
        "dropped": s["queries"]["dropped"],
        "failed": s["queries"]["failed"],
    }


def live_routed(duration: float, rate: float) -> dict[str, float]:
    """Queries at ``rate`` with the routing artifact attached: latency and decision cost."""
    run = LiveRun(
        "homelab",
        overrides=(f"rate={rate}",),
        duration_s=duration,
        workers=8,
        controllers=(f"shard-routing={POLICY}",),
        config=LiveConfig(time_scale=0.0),
    )
    s = run_live(run)
    ctrl = s["controllers"]["shard-routing"]
    return {
        "rate": rate,
        "query_p50_s": s["latency_s"]["p50"],
        "query_p99_s": s["latency_s"]["p99"],
        "decision_us_p50": ctrl["decision_us_p50"],
        "decision_us_p99": ctrl["decision_us_p99"],
        "observe_us_p50": ctrl["observe_us_p50"],
        "observe_us_p99": ctrl["observe_us_p99"],
        "completed": s["queries"]["completed"],
        "fallbacks": sum(ctrl["fallbacks"].values()),
    }


def cold_wake(calls: int = 300, idle_s: float = 0.01) -> dict[str, float]:
    """p50/p99 microseconds of the guarded routing decision and of a trivial Python loop,
    back to back and each after ``idle_s`` asleep."""
    from controllers.spec import resolve
    from envs.registry import make_task

    policy = resolve(str(POLICY)).build()
    space = make_task("shard-routing").observation_space
    obs = np.random.default_rng(0).uniform(0, 1, (calls, *space.shape)).astype(np.float32)

    def trivial(_o) -> int:
        return sum(range(200))

    out: dict[str, float] = {}
    for name, fn in (("decision", policy.act), ("trivial", trivial)):
        for label, idle in (("hot", 0.0), ("after_idle", idle_s)):
            times = []
            for o in obs:
                if idle:
                    time.sleep(idle)
                t = time.perf_counter()
                fn(o)
                times.append((time.perf_counter() - t) * 1e6)
            out[f"{name}_{label}_us_p50"] = float(np.percentile(times, 50))
            out[f"{name}_{label}_us_p99"] = float(np.percentile(times, 99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    raw = {size: raw_echo(size) for size in (100, 2048)}
    wake = cold_wake()
    sat = live_saturated(args.duration)
    light = live_routed(args.duration, rate=20)
    loaded = live_routed(args.duration, rate=150)
    # per query at light load: 1 embed + 4 searches (parallel) + 1 synth + 1 eval = 4
    # sequential worker round trips, plus the client's own round trip
    hops = 5
    added = light["query_p50_s"] * 1e6 - hops * raw[100]["rtt_p50_us"]
    result = {
        "raw_echo": {str(k): v for k, v in raw.items()},
        "cold_wake": wake,
        "saturated": sat,
        "light": light,
        "loaded": loaded,
        "ratio_coordinator_to_raw_100B": sat["coordinator_msgs_per_s"] / raw[100]["msgs_per_s"],
        "ratio_coordinator_to_raw_100B_per_cpu_s": sat["coordinator_msgs_per_cpu_s"]
        / raw[100]["msgs_per_cpu_s"],
        "added_latency_per_query_us": added,
        "command": "python benchmarks/live_speed.py",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

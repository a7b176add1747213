"""Operating a running swarm, measured (a benchmark, not a test): what swaps, shadows and
splits cost the live loop, against baselines measured in the same run.

One homelab swarm (8 workers, emulated LLM stages at ``--time-scale`` of the profile; 0 by
default, so latencies are the runtime's own and not the synthesizers' queues) serves
``--rate`` q/s throughout, and the phases follow one another on it:

1. ``steady``: the committed routing MLP acting alone, for ``--phase`` seconds.
2. ``shadow``: the same, with round-robin shadowing it; 3. ``split``: round-robin taking half
   the queries. For each: the whole decision's cost in the loop (observe, act, shadow, log,
   apply; p50/p99 us) and the ratio to ``steady``; the shadow's agreement and costs, and the
   split's per-arm report.
4. ``swaps``: the acting controller swapped between the MLP and round-robin ``--swaps``
   times, one request every ``--swap-every`` seconds: each request's round trip (attach
   requests read and verify the artifact on the coordinator's loader thread), and the
   end-to-end latency and routing delay (embedding answered to first search sent) of the
   queries that arrived during the swaps against those of ``steady``. Every accepted query
   must be answered: the lost count is reported.

Run: ``python benchmarks/operate.py [--out results/operate.json]``.
"""

from __future__ import annotations

import argparse
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.live_report import build, from_swarm
from live.config import LiveConfig
from live.operator import request
from live.runner import LiveRun, serve

ROOT = Path(__file__).resolve().parents[1]
POLICY = str(ROOT / "results" / "training" / "routing-escape-velocity" / "policy")


def attach(address: str, spec: str, mode: str = "acting", split: float = 0.0) -> float:
    """One ATTACH round trip, in seconds."""
    t0 = time.perf_counter()
    payload = {"task": "shard-routing", "controller": spec, "mode": mode, "split": split}
    request(address, "ATTACH", payload)
    return time.perf_counter() - t0


def decide_cost(address: str) -> dict[str, float]:
    c = request(address, "STATUS")["controllers"]["shard-routing"]
    keys = [f"{part}_us_{q}" for part in ("decide", "observe", "decision") for q in ("p50", "p99")]
    return {k: c[k] for k in (*keys, "decisions")}


def window(rows: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """Latency p50/p99 of the queries that arrived in [start, end), and how many failed."""
    arrived = [r for r in rows if "event" not in r and start <= r["arrival"] < end]
    done = [r for r in arrived if r["outcome"] == "completed"]
    latency = [r["end"] - r["arrival"] for r in done]
    routed = [route_delay(r) for r in done]
    failed: dict[str, int] = {}
    for r in arrived:
        if r["outcome"] != "completed":
            failed[r["reason"]] = failed.get(r["reason"], 0) + 1
    return {"arrived": len(arrived), "p50_s": pct(latency, 50), "p99_s": pct(latency, 99),
            "route_delay_ms": {"p50": 1e3 * pct(routed, 50), "p99": 1e3 * pct(routed, 99)},
            "failed": failed}  # fmt: skip


def route_delay(query: dict[str, Any]) -> float:
    """From the embedding's answer to the first search sent: the coordinator's routing
    decision and dispatch, where a swap would stall a query."""
    embedded = max(st["end"] for st in query["stages"] if st["layer"] == "embedder")
    return min(st["sent"] for st in query["stages"] if st["layer"] == "retriever") - embedded


def split_report(rows: list[dict[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The A/B report of the queries that arrived during the split phase."""
    arrived = [r for r in rows if "event" not in r and start <= r["arrival"] < end]
    columns = {
        "arm": [r.get("arm", "") for r in arrived],
        "outcome": [r["outcome"] for r in arrived],
        "latency_s": [r["end"] - r["arrival"] for r in arrived],
        "recall": [r.get("recall") for r in arrived],
    }
    return build(columns, [], "split phase")


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--time-scale", type=float, default=0.0)
    parser.add_argument("--phase", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--swaps", type=int, default=40)
    parser.add_argument("--swap-every", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "operate.json")
    args = parser.parse_args()
    record = ROOT / "results" / "runs" / "operate.jsonl"
    record.parent.mkdir(parents=True, exist_ok=True)
    run = LiveRun("homelab", overrides=(f"rate={args.rate}",), workers=8, record=record,
                  config=LiveConfig(time_scale=args.time_scale))  # fmt: skip
    announced: queue.Queue = queue.Queue()
    stop, out = threading.Event(), {}

    def target() -> None:
        out["summary"] = serve(run, announced.put, stop=stop.is_set)

    thread = threading.Thread(target=target)
    thread.start()
    up = announced.get(timeout=120)
    addr, t0, marks = up["control"], time.monotonic(), {}
    try:
        time.sleep(5.0)  # warm-up: the first queries pay the workers' first-call costs
        phases: dict[str, dict[str, Any]] = {}
        for name, extra in (("steady", None), ("shadow", "shadow"), ("split", "split")):
            attach(addr, POLICY)  # a fresh slot's timings: the acting MLP alone
            if extra is not None:
                attach(addr, "round-robin", extra, 0.5 if extra == "split" else 0.0)
            marks[name] = time.monotonic() - t0
            before = request(addr, "STATUS")["controllers"]["shard-routing"]["decisions"]
            time.sleep(args.phase)
            phases[name] = {**decide_cost(addr), "decisions_in_phase": 0}
            phases[name]["decisions_in_phase"] = phases[name].pop("decisions") - before
            if name == "shadow":
                shadow_report = from_swarm(addr)["shadow"][0]
            request(addr, "DETACH", {"task": "shard-routing"})
        marks["swaps"] = time.monotonic() - t0
        trips = []
        for i in range(args.swaps):
            trips.append(attach(addr, POLICY if i % 2 == 0 else "round-robin"))
            time.sleep(args.swap_every)
        marks["end"] = time.monotonic() - t0
        time.sleep(args.phase / 2)  # the swap window's queries finish before the swarm stops
    finally:
        stop.set()
        thread.join()
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    # marks are on the swarm's clock to within milliseconds: it restarts as the load starts
    base = phases["steady"]
    result = {
        "command": "python benchmarks/operate.py",
        "setup": {
            "rate_qps": args.rate,
            "time_scale": args.time_scale,
            "phase_s": args.phase,
            "swaps": args.swaps,
            "swap_every_s": args.swap_every,
            "workers": 8,
        },
        "decide_us": phases,
        "ratio_to_steady": {
            name: {
                q: phases[name][f"decide_us_{q}"] / base[f"decide_us_{q}"] for q in ("p50", "p99")
            }
            for name in ("shadow", "split")
        },
        "shadow_report": shadow_report,
        "split_report": split_report(rows, marks["split"], marks["swaps"]),
        "swaps": {
            "attach_round_trip_ms": {"p50": 1e3 * float(np.median(trips)), "max": 1e3 * max(trips)},
            "queries": {
                "steady": window(rows, marks["steady"], marks["shadow"]),
                "swapping": window(rows, marks["swaps"], marks["end"]),
            },
        },
        "queries": out["summary"]["queries"],
        "outcomes": out["summary"]["outcomes"],
        "lost": out["summary"]["queries"]["submitted"] - sum(1 for r in rows if "event" not in r),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

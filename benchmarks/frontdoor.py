"""What the HTTP front door costs over the native query port, measured on one swarm in one run.

A homelab swarm with zero-time emulated stages (``time_scale=0``, so the figures are the
runtime's own: sockets, coordinator, workers, HTTP) and a front door. Sequential latency:
``--requests`` questions one at a time through the native ``live.client.Client``, plain
``httpx`` and the official ``openai`` client, interleaved (one of each per round, so background
load falls on all alike); the median and p99 of each, and each HTTP path's median over the
native one. Concurrent throughput: ``--concurrency`` questions in flight at once, natively
(``AsyncClient``) and over HTTP (``httpx.AsyncClient``), answers per second and their ratio.

Run: ``python benchmarks/frontdoor.py [--requests 200] [--concurrency 16]``; writes
``results/frontdoor.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import openai

from live.client import AsyncClient, Client, query_payload
from live.config import LiveConfig
from live.runner import LiveRun, serving

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "results" / "frontdoor.json"
QUESTIONS = [f"What does document {i} say about shard {i % 4}?" for i in range(64)]


def quantiles(xs: list[float]) -> dict[str, float]:
    return {"p50_ms": 1e3 * statistics.median(xs), "p99_ms": 1e3 * float(np.percentile(xs, 99))}


def sequential(up: dict, n: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {"native": [], "httpx": [], "openai": []}
    chat = f"{up['http']}/v1/chat/completions"
    ai = openai.OpenAI(base_url=f"{up['http']}/v1", api_key="unused", max_retries=0)
    with Client(up["queries"], timeout_s=30) as native, httpx.Client(timeout=30) as http:
        for i in range(n):
            q = QUESTIONS[i % len(QUESTIONS)]
            body = {"model": "routine", "messages": [{"role": "user", "content": q}],
                    "max_tokens": 32}  # fmt: skip
            t0 = time.perf_counter()
            assert native.ask(q, max_tokens=32).ok
            t1 = time.perf_counter()
            assert http.post(chat, json=body).status_code == 200
            t2 = time.perf_counter()
            ai.chat.completions.create(**body)
            t3 = time.perf_counter()
            times["native"].append(t1 - t0)
            times["httpx"].append(t2 - t1)
            times["openai"].append(t3 - t2)
    return {name: quantiles(xs) for name, xs in times.items()}


async def concurrent(up: dict, n: int, width: int) -> dict[str, float]:
    """Answers per second with ``width`` questions in flight, natively and over HTTP."""
    native = AsyncClient(up["queries"])
    sem = asyncio.Semaphore(width)

    async def one_native(i: int) -> None:
        async with sem:
            payload = query_payload(QUESTIONS[i % len(QUESTIONS)], max_tokens=32)
            answer = await native.ask(payload, 30.0)
            assert answer.ok, (answer.outcome, answer.reason, answer.detail)

    t0 = time.perf_counter()
    await asyncio.gather(*(one_native(i) for i in range(n)))
    native_s = time.perf_counter() - t0
    await native.close()
    limits = httpx.Limits(max_connections=width)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:

        async def one_http(i: int) -> None:
            async with sem:
                q = QUESTIONS[i % len(QUESTIONS)]
                body = {"model": "routine", "max_tokens": 32,
                        "messages": [{"role": "user", "content": q}]}  # fmt: skip
                r = await http.post(f"{up['http']}/v1/chat/completions", json=body)
                assert r.status_code == 200, r.text

        t0 = time.perf_counter()
        await asyncio.gather(*(one_http(i) for i in range(n)))
        http_s = time.perf_counter() - t0
    return {"native_qps": n / native_s, "http_qps": n / http_s,
            "ratio_http_to_native": native_s / http_s}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    run = LiveRun("homelab", workers=8, config=LiveConfig(time_scale=0.0), http="127.0.0.1:0")
    print("frontdoor: starting a homelab swarm with zero-time stages ...", flush=True)
    with serving(run) as up:
        print(f"frontdoor: {args.requests} sequential requests per path ...", flush=True)
        seq = sequential(up, args.requests)
        print(f"frontdoor: {args.requests} requests, {args.concurrency} in flight ...", flush=True)
        conc = asyncio.run(concurrent(up, args.requests, args.concurrency))
    base = seq["native"]["p50_ms"]
    out = {
        "command": "python benchmarks/frontdoor.py "
        f"--requests {args.requests} --concurrency {args.concurrency}",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg": os.getloadavg()[0],
        },
        "sequential": {
            name: {**q, "p50_ratio_to_native": q["p50_ms"] / base} for name, q in seq.items()
        },
        "concurrent": {"in_flight": args.concurrency, **conc},
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    for name, q in out["sequential"].items():
        print(f"  {name:7s} p50 {q['p50_ms']:6.2f} ms  p99 {q['p99_ms']:6.2f} ms  "
              f"x{q['p50_ratio_to_native']:.2f} of native")  # fmt: skip
    print(f"  {args.concurrency} in flight: native {conc['native_qps']:.0f} q/s, http "
          f"{conc['http_qps']:.0f} q/s (x{conc['ratio_http_to_native']:.2f})")  # fmt: skip
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

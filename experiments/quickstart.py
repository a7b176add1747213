"""``swarmsim quickstart``: the whole loop in a few minutes on a laptop.

Trains a small MaskablePPO routing policy on ``homelab`` in the simulator, evaluates it
against the routing heuristics (common random numbers), attaches the very same artifact to
a local live swarm (real processes over ZeroMQ, real faiss shards, emulated LLM stages),
does the same with the best heuristic, and writes a report with sim next to live.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from live.config import LiveConfig
from live.runner import LiveRun, run_live

from .plots import latency_cdf
from .train import EvalConfig, TrainConfig, train

SCENARIO = "homelab"
BASELINES = ("least-outstanding", "power-of-two", "round-robin", "search-all-shards")
LIVE_WORKERS = 8
METRICS = ("latency_s.p50", "latency_s.p99", "recall_at_k", "slo.violation_rate")


def quickstart_config(steps: int) -> TrainConfig:
    """A routing run small enough for a laptop (about a minute of training)."""
    return TrainConfig(
        name="quickstart-routing-homelab",
        task="shard-routing",
        scenario=SCENARIO,
        episode_s=3600,
        algo="MaskablePPO",
        total_timesteps=steps,
        n_steps=512,
        batch_size=128,
        net_arch=(64, 64),
        checkpoint_every=max(steps, 1),
        eval=EvalConfig(seeds=3, duration_s=1800, baselines=BASELINES, every_steps=0),
    )


def quickstart(
    out: Path, steps: int = 20_000, live_s: float = 90.0, progress: bool = False
) -> dict[str, Any]:
    """Train, evaluate, run live with the artifact and the best heuristic; write the report."""
    cfg = quickstart_config(steps)
    sim = train(cfg, out / "sim", progress=progress)
    policy = out / "sim" / "policy"
    best = _best_heuristic(sim)
    live: dict[str, dict[str, Any]] = {}
    for label, spec in (("learned", str(policy)), (best, best)):
        record = out / f"live-{label}.jsonl"
        run = LiveRun(SCENARIO, controllers=(f"shard-routing={spec}",), duration_s=live_s,
                      workers=LIVE_WORKERS, config=LiveConfig(), record=record)  # fmt: skip
        live[label] = run_live(run)
    (out / "live.json").write_text(json.dumps(live, indent=2))
    figure = latency_cdf(
        {f"live {k}": _latencies(out / f"live-{k}.jsonl") for k in live}, out / "live_latency.png"
    )
    report = out / "report.md"
    report.write_text(render(sim, live, best, figure, live_s))
    return {"report": report, "policy": policy, "sim": sim, "live": live}


def _best_heuristic(sim: dict[str, Any]) -> str:
    prefix = "shard-routing="
    arms = {
        k.removeprefix(prefix): v for k, v in sim["controllers"].items() if k.startswith(prefix)
    }
    return min(arms, key=lambda k: arms[k]["latency_s.p99"]["mean"] or float("inf"))


def _latencies(record: Path) -> list[float]:
    out = []
    for line in record.read_text().splitlines():
        q = json.loads(line)
        if q.get("outcome") == "completed":  # lifecycle rows have no outcome
            out.append(q["end"] - q["arrival"])
    return out


def render(
    sim: dict[str, Any], live: dict[str, dict[str, Any]], best: str, figure: Path, live_s: float
) -> str:
    """The report: the simulator's comparison over seeds, then the live runs side by side."""
    lines = ["# swarmsim quickstart: shard routing on homelab, sim next to live", ""]
    lines += [
        f"Simulator: {len(sim['seeds'])} seeds of 1800 s, mean and 95% interval. "
        f"Live: one run of {live_s:.0f} s of load on {LIVE_WORKERS} worker processes over "
        "ZeroMQ on loopback (real faiss shards; embedder, synthesizers and evaluator EMULATED "
        "with the device profiles' timings).",
        "",
        "| controller | where | " + " | ".join(METRICS) + " | queries |",
        "| --- | --- | " + " | ".join("---" for _ in METRICS) + " | --- |",
    ]
    for label, metrics in sim["controllers"].items():
        cells = [_ci(metrics.get(m)) for m in METRICS]
        n = metrics.get("queries.completed", {}).get("mean")
        lines.append(f"| {label} | sim | " + " | ".join(cells) + f" | {n:.0f} |")
    for label, summary in live.items():
        flat = {
            "latency_s.p50": summary["latency_s"]["p50"],
            "latency_s.p99": summary["latency_s"]["p99"],
            "recall_at_k": summary["recall_at_k"],
            "slo.violation_rate": summary["slo"]["violation_rate"],
        }
        cells = ["n/a" if flat[m] is None else f"{flat[m]:.4g}" for m in METRICS]
        n = summary["queries"]["completed"]
        name = "learned (same artifact)" if label == "learned" else label
        lines.append(f"| {name} | live | " + " | ".join(cells) + f" | {n} |")
    lines += ["", f"Best heuristic in the simulator by p99: {best}.", "",
              f"![live latency CDF]({figure.name})", ""]  # fmt: skip
    return "\n".join(lines)


def _ci(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.4g} [{lo:.4g}, {hi:.4g}]"

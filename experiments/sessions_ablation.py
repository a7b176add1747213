"""Timestamp against closed-loop session replay on ``prefix-cache``: how much an open-loop
replay of multi-turn sessions overstates latency at the same throughput.

Writes ``results/sessions_ablation.md`` and ``.json``; run
``python experiments/sessions_ablation.py`` (under a minute on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from experiments.stats import mean_ci
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation

SCENARIO = "prefix-cache"
SEEDS = range(5)
BASE = ("duration_s=3600", "warmup_s=300")
# closed-loop think times (s) bracketing the throughput of the timestamp run (1.2 q/s)
MODES = {
    "timestamp": (),
    "closed-loop, think 4 s": ("workload.sessions.mode=closed-loop", "workload.sessions.think_s=4"),
    "closed-loop, think 5 s": ("workload.sessions.mode=closed-loop", "workload.sessions.think_s=5"),
}
OUT = Path(__file__).resolve().parents[1] / "results" / "sessions_ablation"
COMMAND = "python experiments/sessions_ablation.py"


def run(mode: str, seed: int) -> dict[str, float]:
    """One hour of ``prefix-cache`` in ``mode``: throughput and latency figures."""
    s = Simulation(load_scenario(SCENARIO, (*BASE, *MODES[mode])), seed=seed).run()
    kv = s["kv_cache"] or {}
    return {
        "throughput_qps": s["throughput_qps"],
        "p50_s": s["latency_s"]["p50"],
        "p99_s": s["latency_s"]["p99"],
        "hit_rate": kv.get("hit_rate") or 0.0,
    }


def main() -> int:
    start = time.perf_counter()
    jobs = [(mode, seed) for mode in MODES for seed in SEEDS]
    rows: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    with ProcessPoolExecutor(2) as pool:
        for (mode, seed), row in zip(jobs, pool.map(run, *zip(*jobs, strict=True)), strict=True):
            rows[mode].append(row)
            print(f"{mode} seed {seed}: p99 {row['p99_s']:.2f} s", flush=True)
    figures = {mode: {k: mean_ci([r[k] for r in rs]) for k in rs[0]} for mode, rs in rows.items()}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    result = {
        "command": COMMAND,
        "commit": commit,
        "scenario": SCENARIO,
        "overrides": list(BASE),
        "seeds": list(SEEDS),
        "wall_s": round(time.perf_counter() - start, 1),
        "modes": figures,
        "runs": rows,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    OUT.with_suffix(".md").write_text(render(result))
    print(f"wrote {OUT}.md and .json", flush=True)
    return 0


def render(result: dict) -> str:
    """The ablation as a Markdown table: mean [95% interval] over seeds."""
    lines = [
        "# Session replay: timestamp against closed-loop",
        "",
        f"Command: `{result['command']}` (commit {result['commit']}, {result['wall_s']} s).",
        f"Scenario `{result['scenario']}`, {', '.join(result['overrides'])}, seeds "
        f"{result['seeds'][0]}..{result['seeds'][-1]}; the layer's own least-loaded dispatch "
        "routes. Mean over seeds [95% t-interval].",
        "",
        "| mode | throughput (q/s) | p50 (s) | p99 (s) | block hit rate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mode, f in result["modes"].items():
        cells = [_cell(f[k]) for k in ("throughput_qps", "p50_s", "p99_s", "hit_rate")]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Timestamp replay sends each turn at its Poisson time whatever the previous answer did;",
        "closed-loop sends a session's next turn a think time after its answer, so a busy swarm",
        "slows its own arrivals. Near saturation the open-loop replay overstates the tail.",
        "",
    ]
    return "\n".join(lines)


def _cell(ci: dict) -> str:
    lo, hi = (max(x, 0.0) for x in ci["ci95"])  # every figure here is non-negative
    return f"{ci['mean']:.3g} [{lo:.3g}, {hi:.3g}]"


if __name__ == "__main__":
    sys.exit(main())

"""The sim-to-real gap, measured: record a live run, calibrate, replay, compare; then rank the
routing heuristics by p99 in both.

1. A live homelab swarm (real processes over ZeroMQ, real faiss shards, EMULATED LLM stages
   at ``--stage-scale`` of the profile's time) serves a window of the Azure LLM conversation
   trace; the per-query timeline is recorded.
2. ``calibrate`` fits the simulator's per-layer service models and overheads to it.
3. The simulator replays the same trace window on the calibrated scenario.
4. ``compare`` reports the error of each figure (live is the reference) with CDF overlays.
5. Each routing heuristic runs ``--repeats`` times live and in the simulator (calibrated on
   the first of these live runs, which has a controller's decisions) on the same trace window,
   with seeds 0..N-1 on both sides: the workload is the same in every run, so the spread is the
   system's own (live: scheduling; sim: service, overhead and dispatch draws), which is what
   must be told apart from a difference between heuristics. The live runs go round the
   heuristics once per repeat, so slow drift in the machine's background load falls on all of
   them alike. Mean p99 with 95% intervals per side; the rankings agree when no pair whose
   intervals separate on both sides is ordered differently (``experiments.ranking``).

Run: ``python -m experiments.sim_to_real [--out results/sim_to_real] [--window 0:120]
[--repeats 3] [--reuse-live]``.
Live recordings go to ``results/runs/sim_to_real/``; the report, the fidelity figures and the
calibrated scenario to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from live.config import LiveConfig
from live.runner import LiveRun, run_live
from swarmsim.metrics import write_timeline

from .calibrate import calibrate, write_scenario
from .fidelity import Recording, read_recording, write_report
from .ranking import agreement
from .replay import TraceReplay, prepare, replay_scenario

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SWARMSIM_SHARED", ROOT.parent / "shared"))
TRACE = SHARED / "traces" / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
SCENARIO = "homelab"
HEURISTICS = ("round-robin", "least-outstanding", "power-of-two", "random")


def live_record(
    replay: TraceReplay, out: Path, stage_scale: float, controller: str = "", seed: int = 0
) -> dict:
    """One live run of the trace; the summary (the timeline goes to ``out``)."""
    run = LiveRun(
        SCENARIO,
        overrides=tuple(replay.overrides()),
        controllers=(f"shard-routing={controller}",) if controller else (),
        duration_s=replay.load_duration_s(),
        seed=seed,
        record=out,
        config=LiveConfig(time_scale=stage_scale),
    )
    return run_live(run)


def sim_record(
    replay: TraceReplay, scenario: Path, out: Path, controller: str = "", seed: int = 0
) -> dict:
    """The calibrated simulator on the same trace; the summary (the timeline goes to ``out``)."""
    resolved = replay_scenario(replay, str(scenario), (), None)
    sim, _ = prepare(resolved, seed, [f"shard-routing={controller}"] if controller else [], True)
    summary = sim.run()
    write_timeline(sim.recording(), out)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.sim_to_real")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "sim_to_real")
    parser.add_argument("--trace", type=Path, default=TRACE)
    parser.add_argument("--window", default="0:120", help="trace seconds START:END")
    parser.add_argument("--trace-time-scale", type=float, default=1.0)
    parser.add_argument("--stage-scale", type=float, default=0.05,
                        help="emulated LLM stage times x this in the live run")  # fmt: skip
    parser.add_argument("--no-ranking", action="store_true", help="skip step 5")
    parser.add_argument("--repeats", type=int, default=3, help="runs per heuristic and side")
    parser.add_argument("--reuse-live", action="store_true",
                        help="calibrate and simulate on the live recordings of an earlier run "
                        "of the same command instead of recording anew")  # fmt: skip
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    runs = ROOT / "results" / "runs" / "sim_to_real" / args.out.name
    runs.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    replay = TraceReplay(args.trace, time_scale=args.trace_time_scale, window=args.window)

    live_path, sim_path = runs / "live.jsonl", runs / "sim.jsonl"
    if not args.reuse_live:
        live_record(replay, live_path, args.stage_scale)
    calibrated = recalibrate(replay, live_path, args.out / "calibrated.yaml")
    sim_record(replay, calibrated, sim_path)
    live, sim = read_recording(live_path), read_recording(sim_path)
    fidelity = write_report(live, sim, args.out)
    ranking = {} if args.no_ranking else rank(replay, runs, args)
    report = {
        "command": " ".join(["python -m experiments.sim_to_real", *(argv or sys.argv[1:])]),
        "trace": str(args.trace.name),
        "window": args.window,
        "stage_scale": args.stage_scale,
        "live": _brief(live),
        "sim": _brief(sim),
        "fidelity": fidelity,
        "ranking": ranking,
    }
    (args.out / "sim_to_real.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("live", "sim", "ranking")}, indent=2))
    print(f"report: {args.out / 'fidelity.md'}")


def recalibrate(replay: TraceReplay, recording: Path, out: Path) -> Path:
    """``swarmsim calibrate`` of ``recording`` written to ``out``."""
    result = calibrate(recording, SCENARIO, tuple(replay.overrides()))
    write_scenario(result, out, f"swarmsim calibrate {recording.name} -o {out.name}")
    return out


def rank(replay: TraceReplay, runs: Path, args: argparse.Namespace) -> dict[str, Any]:
    """p99 of each routing heuristic over the repeats, live and in the simulator, with 95%
    intervals and whether the two rankings agree. A routing controller's decision runs on the
    live coordinator's loop before each retrieval (about 1 ms), which a run without one does
    not show, so the simulator is calibrated on the first live run with a controller attached
    (``calibrated-routed.yaml``), the same scenario for every heuristic."""
    if not args.reuse_live:
        for seed in range(args.repeats):  # round the heuristics once per repeat
            for name in HEURISTICS:
                live_record(
                    replay, runs / f"live-{name}-{seed}.jsonl", args.stage_scale, name, seed
                )
    first = runs / f"live-{HEURISTICS[0]}-0.jsonl"
    routed = recalibrate(replay, first, args.out / "calibrated-routed.yaml")
    p99: dict[str, dict[str, list[float]]] = {side: {h: [] for h in HEURISTICS}
                                              for side in ("live", "sim")}  # fmt: skip
    for seed in range(args.repeats):
        for name in HEURISTICS:
            sim_out = runs / f"sim-{name}-{seed}.jsonl"
            sim_record(replay, routed, sim_out, name, seed)
            for side, path in (("live", runs / f"live-{name}-{seed}.jsonl"), ("sim", sim_out)):
                p99[side][name].append(float(np.quantile(read_recording(path).latency_s, 0.99)))
    result = agreement(p99)
    means = result["mean_ci95"]
    error = {h: means["sim"][h]["mean"] / means["live"][h]["mean"] - 1 for h in HEURISTICS}
    return {"repeats": args.repeats, "seeds": list(range(args.repeats)),
            "calibrated_on": first.name, "p99_s": p99, "sim_vs_live_mean_p99": error,
            **result}  # fmt: skip


def _brief(rec: Recording) -> dict[str, Any]:
    """Counts, latency figures and throughput of a recording, the same way for both sides."""
    lat = rec.latency_s
    return {
        "queries": {"submitted": rec.submitted, "completed": rec.completed, "failed": rec.failed},
        "latency_s": {"mean": float(lat.mean()),
                      **{f"p{q}": float(np.quantile(lat, q / 100)) for q in (50, 95, 99)}},
        "throughput_qps": rec.throughput_qps,
    }  # fmt: skip


if __name__ == "__main__":
    main()

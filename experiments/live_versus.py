"""Does the live swarm rank the learned policy and the best tuned heuristic as the simulator
does (issue 16, section 3)? Per Task the committed policy and the heuristic run on the same
workload seeds in both: the simulator, and a live local swarm of real processes over ZeroMQ
(emulated stages, compressed time: ``experiments.compressed``) for the same scenario-seconds.
Per side the headline (p99 with failed and dropped queries at the deadline) per seed, the
paired difference learned - heuristic with its 95% interval, and the side's verdict; the
rankings agree unless one side finds the policy better and the other worse.

``python -m experiments.live_versus`` writes ``results/live_versus.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from live.runner import run_live
from swarmsim.scenario_files import load_scenario

from .compressed import compressed_run, measured_latencies
from .learned import COMPARISONS, LEARNED
from .learned_run import policy_dir, run_job
from .progress import Stages
from .spread_report import git_commit
from .spread_run import Job
from .stats import paired_diff_ci, quantile_ci

ROOT = Path(__file__).resolve().parents[1]
OUT = Path("results") / "live_versus"
SIDES = ("sim", "live")


@dataclass(frozen=True)
class Pairing:
    """One Task's live check: its policy against ``heuristic`` (the best tuned heuristic of
    results/learned_vs_tuned.md), ``queries`` measured per live run at ``time_scale``."""

    task: str
    heuristic: str
    time_scale: float
    queries: int

    @property
    def scenario(self) -> str:
        return COMPARISONS[self.task].scenario


PAIRINGS = {
    p.task: p
    for p in (
        # retrieval waits tens to hundreds of ms: compressing it further would leave the
        # coordinator's own per-hop cost (about a millisecond) a larger share of it
        Pairing("shard-routing", "least-outstanding", 1.0, 600),
        Pairing("llm-routing", "kv-overlap@tuned", 0.2, 300),  # as quickstart runs it
    )
}


def spec_of(task: str, heuristic: str) -> str:
    """``TASK=NAME[:k=v]`` of ``heuristic``, resolving ``NAME@tuned`` to its settings here
    so that both sides run exactly the same parameters."""
    from controllers.tuned import SUFFIX, tuned_params

    if not heuristic.endswith(SUFFIX):
        return f"{task}={heuristic}"
    name = heuristic.removesuffix(SUFFIX)
    params = tuned_params(COMPARISONS[task].scenario, task, name)
    return f"{task}={name}:" + ":".join(f"{k}={v}" for k, v in sorted(params.items()))


def run_pairing(p: Pairing, seeds: list[int], stages: Stages, scratch: Path) -> dict[str, Any]:
    """Both arms on both sides over ``seeds``: per side and arm the p99 per seed, the pooled
    p99 with its order-statistic interval and the queries measured; the paired verdicts."""
    policy = policy_dir(COMPARISONS[p.task].artifact_dir)
    if policy is None:
        raise SystemExit(f"{p.task}: no trained policy in {COMPARISONS[p.task].artifact_dir}")
    arms = {LEARNED: f"{p.task}={policy}", p.heuristic: spec_of(p.task, p.heuristic)}
    values: dict[str, dict[str, list[float]]] = {s: {a: [] for a in arms} for s in SIDES}
    pooled: dict[str, dict[str, list[float]]] = {s: {a: [] for a in arms} for s in SIDES}
    for seed in seeds:
        for label, spec in arms.items():
            record = scratch / f"{p.task}-{label.replace('@', '-')}-{seed}.jsonl"
            run, _ = compressed_run(p.scenario, (), spec, p.time_scale, p.queries, record, seed)
            title = f"{p.task} {label} seed {seed}: live {run.duration_s:.0f} s, then the sim"
            with stages.stage(title) as stage:
                run_live(run, stage.update)
                live = measured_latencies(record, run, p.time_scale)
                warmup = load_scenario(run.scenario, list(run.overrides)).warmup_s
                same = (f"duration_s={run.duration_s / p.time_scale:g}",
                        f"warmup_s={warmup / p.time_scale:g}")  # fmt: skip
                sim = run_job(Job(p.scenario, same, label, spec, seed))["latencies"]
                for side, lat in (("live", live), ("sim", sim)):
                    values[side][label].append(float(np.quantile(lat, 0.99)))
                    pooled[side][label].extend(lat)
                got = {side: values[side][label][-1] for side in SIDES}
                stage.result = f"p99 live {got['live']:.3g} s ({len(live)}), sim {got['sim']:.3g} s"
    sides = {}
    for side in SIDES:
        diff = paired_diff_ci(values[side][LEARNED], values[side][p.heuristic])
        sides[side] = {
            "p99_per_seed": values[side],
            "pooled_p99": {a: quantile_ci(v, 0.99) for a, v in pooled[side].items()},
            "queries": {a: len(v) for a, v in pooled[side].items()},
            "learned_minus_heuristic": diff,
            "verdict": verdict(diff),
        }
    return {"heuristic": p.heuristic, "specs": arms, "time_scale": p.time_scale,
            "queries_per_run": p.queries, "sides": sides,
            "agree": agree(sides["sim"]["verdict"], sides["live"]["verdict"])}  # fmt: skip


def verdict(diff: dict[str, Any]) -> str:
    """Which arm the paired interval favours: "learned better", "learned worse" or "tie"."""
    if diff["ci95"] is None:
        return "tie" if all(d == 0 for d in diff["diffs"]) else f"undetermined: {diff['note']}"
    lo, hi = diff["ci95"]
    return "learned better" if hi < 0 else "learned worse" if lo > 0 else "tie"


def agree(sim: str, live: str) -> bool:
    """The rankings agree unless one side finds the policy better and the other worse."""
    return {sim, live} != {"learned better", "learned worse"}


def render(result: dict[str, Any]) -> str:
    """The Markdown report: the command, provenance, one table per Task."""
    lines = [
        "# Live against simulated: does the live swarm rank the policy as the simulator does?",
        "",
        f"Regenerate: `{result['command']}`",
        "",
        f"Commit {result['commit']}; workload seeds {result['seeds']}; wall time "
        f"{result['wall_s']:.0f} s. Each arm runs on the same seeds on both sides: the live "
        "swarm (real processes over ZeroMQ on loopback; emulated synthesizers, embedders and "
        "retriever search times; compressed time, latencies read back in scenario seconds) "
        "and the simulator for the same scenario-seconds. Headline: p99 per run, failed and "
        "dropped queries at the deadline. Paired difference: learned - heuristic per seed, "
        "Student-t 95%. Pooled p99: every run's queries of the side, with its order-statistic "
        "interval. The rankings agree unless one side finds the policy better and the other "
        "worse.",
    ]
    for task, t in result["tasks"].items():
        h = t["heuristic"]
        lines += ["", f"## {task}: learned against {h} (`{t['specs'][h]}`)", "",
                  "| side | learned p99 per seed | heuristic p99 per seed | learned - heuristic "
                  "[95%] | pooled p99 learned | pooled p99 heuristic | queries | verdict |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for side, s in t["sides"].items():
            d = s["learned_minus_heuristic"]
            ci = "no interval" if d["ci95"] is None else f"[{d['ci95'][0]:.3g}, {d['ci95'][1]:.3g}]"
            per = {a: ", ".join(f"{v:.3g}" for v in s["p99_per_seed"][a]) for a in (LEARNED, h)}
            pool = {a: _q(s["pooled_p99"][a]) for a in (LEARNED, h)}
            lines.append(
                f"| {side} | {per[LEARNED]} | {per[h]} | {d['mean']:.3g} {ci} | {pool[LEARNED]} | "
                f"{pool[h]} | {s['queries'][LEARNED]} / {s['queries'][h]} | {s['verdict']} |"
            )
        lines += ["", f"Rankings agree: **{'yes' if t['agree'] else 'no'}**."]
    return "\n".join(lines) + "\n"


def _q(stat: dict[str, Any]) -> str:
    if stat["value"] is None:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"{stat['value']:.3g} [{lo:.3g}, {hi:.3g}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.live_versus",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("tasks", nargs="*", metavar="TASK",
                        help=f"default: {', '.join(PAIRINGS)}")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=3, help="workload seeds 0..N-1 (3)")
    parser.add_argument("--queries", type=int, default=None,
                        help="measured queries per live run (default: each Task's)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help="writes OUT.md and OUT.json")
    args = parser.parse_args(argv)
    args.tasks = args.tasks or list(PAIRINGS)
    unknown = sorted(set(args.tasks) - set(PAIRINGS))
    if unknown:
        parser.error(f"TASK: {', '.join(unknown)} not one of {', '.join(PAIRINGS)}")
    if args.seeds < 2:
        parser.error(f"--seeds: a paired interval needs at least 2, got {args.seeds}")
    start, seeds = time.perf_counter(), list(range(args.seeds))
    stages = Stages(len(args.tasks) * args.seeds * 2, bar=sys.stderr.isatty())
    with tempfile.TemporaryDirectory(prefix="live-versus-") as scratch:
        tasks = {}
        for t in args.tasks:
            p = PAIRINGS[t]
            if args.queries is not None:
                p = dataclasses.replace(p, queries=args.queries)
            tasks[t] = run_pairing(p, seeds, stages, Path(scratch))
    words = ["python", "-m", "experiments.live_versus", *args.tasks, "--seeds", str(args.seeds)]
    if args.queries is not None:
        words += ["--queries", str(args.queries)]
    result = {"command": shlex.join(words), "commit": git_commit(ROOT), "seeds": seeds,
              "wall_s": time.perf_counter() - start, "tasks": tasks}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The quickstart's report: one row per arm (simulator and live), ``report.md`` with the table
first, a latency CDF of sim next to live, and ``report.json`` with the same figures."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .learned import LEARNED
from .plots import latency_cdf
from .quickstart import QuickstartConfig
from .quickstart_defaults import HEURISTICS, SCENARIO, TASK
from .stats import bounded_mean_ci, paired_ratio_ci, quantile_ci

PLOT = "latency_cdf.png"


def sim_rows(sim: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per simulated arm: queries measured over all seeds, the mean over seeds of each seed's
    p50 and p99 with the Student-t interval (clipped at 0), and the gain over the best
    heuristic, ``1 - mean p99 / best's``, with Fieller's interval over the paired seeds."""
    result, runs = sim["result"], sim["runs"]
    best = result["best"]
    out = []
    for arm in sim["arms"]:
        label, rows = arm["label"], runs[arm["label"]]
        stats = result["arms"][label]
        p50 = bounded_mean_ci(float(np.percentile(r["latencies"], 50)) for r in rows.values())
        gpu, recall = stats["metrics"].get("gpu_hours"), stats["metrics"].get("recall_at_k")
        out.append({
            "side": "sim", "controller": label, "spec": arm["spec"], "note": arm["note"],
            "seeds": len(rows), "queries": sum(len(r["latencies"]) for r in rows.values()),
            "p50_s": p50["mean"], "p50_ci95": p50["ci95"],
            "p99_s": stats["objective"]["mean"], "p99_ci95": stats["objective"]["ci95"],
            "p99_note": stats["objective"]["note"],
            "recall": None if recall is None else recall["mean"],
            "gpu_hours": None if gpu is None else gpu["mean"],
            **_sim_gain(label, best, runs, result),
        })  # fmt: skip
    return out


def _sim_gain(label: str, best: str, runs: Mapping[str, Any], result: Mapping[str, Any]):
    if label == best:
        return {"gain_vs_best_heuristic": 0.0, "gain_ci95": None, "gain_note": "the best"}
    if label == LEARNED:
        gain = result["learned_vs_best"]["gain_pct"]
        ci = gain["ci95"]
        return {"gain_vs_best_heuristic": None if gain["pct"] is None else gain["pct"] / 100,
                "gain_ci95": None if ci is None else [c / 100 for c in ci],
                "gain_note": gain["note"]}  # fmt: skip
    seeds = sorted(runs[best])
    ratio = paired_ratio_ci([runs[label][s]["objective"] for s in seeds],
                            [runs[best][s]["objective"] for s in seeds])  # fmt: skip
    ci = ratio["ci95"]
    return {"gain_vs_best_heuristic": None if ratio["ratio"] is None else 1 - ratio["ratio"],
            "gain_ci95": None if ci is None else [1 - ci[1], 1 - ci[0]],
            "gain_note": ratio["note"]}  # fmt: skip


def live_rows(
    live: Mapping[str, Mapping[str, Any]], best: str, time_scale: float
) -> list[dict[str, Any]]:
    """Per live arm (one run each): queries measured, p50 and p99 with their order-statistic
    intervals, in scenario seconds; GPU-hours likewise; the gain over the best heuristic's
    run (no interval: one run each, their queries not paired)."""
    p99 = {label: quantile_ci(arm["latencies"], 0.99) for label, arm in live.items()}
    out = []
    for label, arm in live.items():
        p50, summary = quantile_ci(arm["latencies"], 0.5), arm["summary"]
        base, mine = p99[best]["value"], p99[label]["value"]
        gain = None if not base or mine is None else 1 - mine / base
        out.append({
            "side": "live", "controller": label, "spec": arm["spec"], "note": "",
            "seeds": 1, "queries": len(arm["latencies"]),
            "p50_s": p50["value"], "p50_ci95": p50["ci95"],
            "p99_s": mine, "p99_ci95": p99[label]["ci95"], "p99_note": None,
            "recall": summary["recall_at_k"], "gpu_hours": summary["gpu_hours"] / time_scale,
            "gain_vs_best_heuristic": 0.0 if label == best else gain, "gain_ci95": None,
            "gain_note": "the best in the simulator" if label == best
            else "one run each: no interval",
        })  # fmt: skip
    return out


def write_report(
    out: Path,
    cfg: QuickstartConfig,
    policy: Mapping[str, Any],
    sim: Mapping[str, Any],
    live: Mapping[str, Mapping[str, Any]],
    wall_s: float,
) -> dict[str, Any]:
    """``report.json``, ``report.md`` and the plot in ``out``; the report's data."""
    result = sim["result"]
    best = result["best"]
    rows = [*sim_rows(sim), *live_rows(live, best, cfg.time_scale)]
    pooled = {f"sim {lb}": [x for r in sim["runs"][lb].values() for x in r["latencies"]]
              for lb in (LEARNED, best)}  # fmt: skip
    pooled |= {f"live {lb}": arm["latencies"] for lb, arm in live.items()}
    latency_cdf(pooled, out / PLOT, "end-to-end latency (s, scenario time)")
    report = {
        "command": command(cfg),
        "scenario": SCENARIO,
        "task": TASK,
        "policy": {k: str(v) if isinstance(v, Path) else v for k, v in policy.items()},
        "seeds": sim["seeds"],
        "overrides": list(cfg.overrides),
        "best_heuristic": best,
        "best_rule": result["best_rule"],
        "goal": result["learned_vs_best"]["goal"],
        "ranking_agrees": ranking_agrees(rows, best),
        "time_scale": cfg.time_scale,
        "live": {
            lb: {k: arm[k] for k in ("rate_qps", "duration_s", "scenario_duration_s")}
            for lb, arm in live.items()
        },
        "wall_s": wall_s,
        "rows": rows,
        "sim": result,
        "live_summaries": {lb: arm["summary"] for lb, arm in live.items()},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render(report))
    return report


def ranking_agrees(rows: Sequence[Mapping[str, Any]], best: str) -> bool | None:
    """Whether the live runs order the policy and the best heuristic by p99 as the simulator
    does (None where a p99 is missing)."""
    p99 = {(r["side"], r["controller"]): r["p99_s"] for r in rows}
    pairs = [(p99.get((side, LEARNED)), p99.get((side, best))) for side in ("sim", "live")]
    if any(a is None or b is None for a, b in pairs):
        return None
    (sl, sb), (ll, lb) = pairs
    return (sl < sb) == (ll < lb)


def command(cfg: QuickstartConfig) -> str:
    """The ``swarmsim quickstart`` command line that reruns ``cfg``."""
    words = ["swarmsim", "quickstart"]
    words += ["--train", "--steps", str(cfg.train_steps)] if cfg.train else []
    words += ["--policy", str(cfg.policy)] if cfg.policy else []
    words += ["--seeds", str(cfg.seeds), "--live-queries", str(cfg.live_queries),
              "--time-scale", f"{cfg.time_scale:g}"]  # fmt: skip
    words += [w for o in cfg.overrides for w in ("--set", o)]
    return shlex.join(words)


def render(report: Mapping[str, Any]) -> str:
    """``report.md``: the table first, then what it measured and how."""
    rows, best = report["rows"], report["best_heuristic"]
    learned_sim = next(r for r in rows if r["side"] == "sim" and r["controller"] == LEARNED)
    lines = [
        f"# swarmsim quickstart: a learned LLM router on {SCENARIO}, sim next to live",
        "",
        f"Learned policy vs the best heuristic ({best}) on p99: "
        f"{_gain(learned_sim)} in the simulator; goal (>= 20% better, interval excluding 0): "
        f"{report['goal']}. Live ranking agrees with the simulator's: "
        f"{_yes(report['ranking_agrees'])}.",
        "",
        "| controller | side | queries | p50 s | p99 s [95%] | recall | GPU-hours "
        "| gain vs best heuristic (p99) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *(_row(r) for r in rows),
        "",
        f"![latency CDF, sim next to live]({PLOT})",
        "",
        *_notes(report),
    ]
    return "\n".join(lines) + "\n"


def _row(r: Mapping[str, Any]) -> str:
    ci = r["p99_ci95"]
    p99 = _num(r["p99_s"]) + (
        f" [{_num(ci[0])}, {_num(ci[1])}]" if ci else f" ({r['p99_note'] or 'no interval'})"
    )
    cells = [r["controller"], r["side"], str(r["queries"]), _num(r["p50_s"]), p99,
             _num(r["recall"]), _num(r["gpu_hours"]), _gain(r)]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _gain(r: Mapping[str, Any]) -> str:
    g, ci = r["gain_vs_best_heuristic"], r["gain_ci95"]
    if g is None:
        return f"n/a ({r['gain_note']})"
    if ci is None:
        return f"{100 * g:+.1f}% ({r['gain_note'] or 'no interval'})"
    return f"{100 * g:+.1f}% [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def _yes(flag: bool | None) -> str:
    return "n/a" if flag is None else "yes" if flag else "no"


def _notes(report: Mapping[str, Any]) -> list[str]:
    policy, seeds, s = report["policy"], report["seeds"], report["time_scale"]
    live = next(iter(report["live"].values()))
    settings = {r["controller"]: r["note"] for r in report["rows"] if r["side"] == "sim"}
    return [
        "## How this was measured",
        "",
        f"- Policy: `{policy['path']}` ({policy['source']}"
        + (
            f", {policy['train_steps']} PPO steps: weaker than the committed policy"
            if policy["train_steps"]
            else ""
        )
        + f"; weights sha256 {policy['sha256'][:16]}).",
        f"- Simulator: each controller on the held-out seeds {seeds[0]}..{seeds[-1]} "
        f"({len(seeds)} seeds, the same arrivals for every controller on a seed). p50 and p99 "
        "are the mean over seeds of each run's quantile of its post-warm-up queries (a failed "
        "or dropped query counts as the deadline), with the Student-t 95% interval over seeds, "
        "clipped at 0. The gain is `1 - mean p99 / best heuristic's`, with Fieller's 95% "
        "interval over the paired seeds (`swarmsim versus`'s statistics). Best heuristic: "
        f"{report['best_heuristic']} ({report['best_rule']}).",
        f"- Heuristics: {', '.join(HEURISTICS)}; "
        + "; ".join(f"{k}: {v}" for k, v in settings.items() if k != LEARNED)
        + ".",
        f"- Live: one run per arm on a local swarm (a coordinator, 4 synthesizer worker "
        "processes over ZeroMQ on loopback, emulated synthesizers with prefix caches, a load "
        f"generator), seed 0, in compressed time: time scale {s:g} (stage times x {s:g}; "
        f"arrivals at {live['rate_qps']:.3g} queries/s, SLO and warm-up x {s:g}), "
        f"{live['duration_s']:.0f} s of load per arm = {live['scenario_duration_s']:.0f} s of "
        f"the scenario. Latencies and GPU-hours are divided by {s:g} (scenario seconds). "
        "p50 and p99 come with their distribution-free order-statistic 95% intervals over the "
        "run's post-warm-up queries; the live gain has no interval (one run each).",
        "- Recall is n/a: prefix-cache has no retrieval stage (synthesizers only). GPU-hours: "
        "the replicas' hours (live: billed from each worker's start, its few seconds of start-up "
        "included).",
        f"- Rerun: `{report['command']}` ({report['wall_s']:.0f} s wall).",
    ]

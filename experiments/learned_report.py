"""``learned_vs_tuned.md``: the learned-vs-tuned result as Markdown: the command that
regenerates it, provenance, the verdict per Task and scenario, and every arm's figures."""

from __future__ import annotations

from typing import Any

from .learned import COMPARISONS, GOAL_GAIN, LEARNED
from .objectives import OBJECTIVES
from .spread import REPLAYS
from .stats import DEGENERATE, TOO_FEW

METHODS = (
    "Held-out seeds (experiments/seeds.py), the same for every arm (common random numbers). "
    "Headline: the Task's objective as `swarmsim tune` minimises it (experiments/objectives.py; "
    "failed, dropped and overdue queries count at the deadline's latency). Per arm: mean over "
    "seeds with a Student-t 95% interval clipped to the quantity's range (never a negative "
    "bound); `p99 pooled`: the p99 of every seed's queries pooled, with its distribution-free "
    "order-statistic interval. Best tuned heuristic: chosen on this scenario's same seeds (which "
    "favours the heuristics). Paired difference: learned minus best per seed, mean and "
    "Student-t 95% interval. Gain: 1 - mean(learned) / mean(best), with Fieller's 95% interval "
    "for the ratio of paired means. Side condition: met unless its paired interval lies wholly "
    f"on the worse side of zero. Goal: gain >= {GOAL_GAIN:.0%}, paired interval below zero, side "
    "condition met. On a control twin the policy should tie (paired interval includes zero). "
    "A reference row (autoscaling's oracle, told the run's future arrivals) is scored like "
    "the policy against the same best heuristic: the gain there was to take. "
    f'Where seeds are too few or every seed agrees, no interval is printed ("{TOO_FEW}").'
)
REFERENCE_VERDICT = "what a controller that knows the future gains (not deployable)"
SHORT = {DEGENERATE: "same on every seed"}  # notes as table cells show them
ROLES = {"scenario": "scenario", "twin": "control twin", "trace": "trace"}


def render(result: dict[str, Any]) -> str:
    """The whole report: header, the verdict table, then one section per compared Task."""
    seeds = result["seeds"]
    lines = [
        "# Learned policies against tuned heuristics (issue 16)",
        "",
        f"Regenerate: `{result['command']}`",
        "",
        f"Commit {result['commit']}; seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per arm); wall "
        f"time {result['wall_s']:.0f} s on {result['workers']} worker processes.",
        "",
        METHODS,
        "",
        "| Task | on | headline | learned | best tuned heuristic | learned - best [95%] | "
        "gain % [95%] | side: learned - best [95%] | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for task, t in result["tasks"].items():
        lines += _verdict_rows(task, t)
    for task, t in result["tasks"].items():
        if t["status"] == "compared":
            lines += ["", *_section(task, t)]
    return "\n".join(lines) + "\n"


def _verdict_rows(task: str, t: dict[str, Any]) -> list[str]:
    if t["status"] != "compared":
        return [f"| {task} | | | {t['status']} (`{t['artifact']}`) | | | | | |"]
    rows, metric = [], OBJECTIVES[task].metric
    for role, name in t["scenarios"].items():
        if name is None:
            rows.append(f"| {task} | trace: none | | | | | | | {t['no_trace']} |")
            continue
        r = t["results"][role]
        v = r["learned_vs_best"]
        verdict = v["tie"] if role == "twin" else v["goal"]
        side = "n/a (not measured)" if v["side_diff"] is None else _mean(v["side_diff"])
        rows.append(
            f"| {task} | {ROLES[role]}: {name} | {metric} | "
            f"{_mean(r['arms'][LEARNED]['objective'])} | {r['best']} "
            f"({_num(r['arms'][r['best']]['objective']['mean'])}) | {_mean(v['diff'])} | "
            f"{_gain(v['gain_pct'])} | {side} | {verdict} |"
        )
        for label, ref in r.get("references_vs_best", {}).items():
            side = "n/a (not measured)" if ref["side_diff"] is None else _mean(ref["side_diff"])
            rows.append(
                f"| {task} | {ROLES[role]}: {name} | {metric} | reference {label}: "
                f"{_mean(r['arms'][label]['objective'])} | {r['best']} | {_mean(ref['diff'])} | "
                f"{_gain(ref['gain_pct'])} | {side} | the bound: {REFERENCE_VERDICT} |"
            )
    return rows


def _section(task: str, t: dict[str, Any]) -> list[str]:
    c, notes = COMPARISONS[task], {a["label"]: a["note"] for a in t["arms"]}
    lines = [f"## {task}", "", f"Policy: `{t['artifact']}`. Side condition: `{c.side.metric}`."]
    for role, name in t["scenarios"].items():
        if name is None:
            lines += ["", f"Trace: none. {t['no_trace']}."]
            continue
        r = t["results"][role]
        replay = REPLAYS.get(name)
        origin = "" if replay is None else f" (`{replay.path}` replayed on `{replay.scenario}`)"
        crn = "identical" if r["same_arrivals"] else "NOT identical"
        metrics = list(next(iter(r["arms"].values()))["metrics"])
        lines += [
            "",
            f"### {ROLES[role]}: {name}{origin}",
            "",
            f"Best: {r['best']} ({r['best_rule']}). Submitted queries per seed: {crn} across "
            "arms." + (" One trace: seeds differ only in service times." if replay else ""),
            "",
            f"| arm | settings | {OBJECTIVES[task].metric} (headline) | {c.side.metric} | "
            "p99 pooled | " + " | ".join(metrics) + " | wall s/run |",
            "| --- |" + " --- |" * (len(metrics) + 5),
        ]
        for label, a in r["arms"].items():
            side = "not measured" if a["side"] is None else _mean(a["side"])
            cells = [_mean(a["metrics"][m]) if m in a["metrics"] else "n/a" for m in metrics]
            lines.append(
                f"| {label} | {notes[label]} | {_mean(a['objective'])} | {side} | "
                f"{_quantile(a['pooled_p99'])} | "
                + " | ".join(cells)
                + f" | {a['wall_s_per_run']:.2f} |"
            )
    return lines


def _mean(stat: dict[str, Any]) -> str:
    if stat["ci95"] is None:
        return f"{_num(stat['mean'])} ({SHORT.get(stat['note'], stat['note'])})"
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.4g} [{lo:.4g}, {hi:.4g}]"


def _gain(gain: dict[str, Any]) -> str:
    if gain["pct"] is None:
        return "n/a"
    if gain["ci95"] is None:
        return f"{gain['pct']:.1f} ({gain['note']})"
    lo, hi = gain["ci95"]
    return f"{gain['pct']:.1f} [{lo:.1f}, {hi:.1f}]"


def _quantile(stat: dict[str, Any]) -> str:
    if stat["value"] is None:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"{stat['value']:.4g} [{lo:.4g}, {hi:.4g}]"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"

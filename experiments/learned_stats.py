"""The statistics of the learned-vs-tuned comparison: per arm the objective, side condition
and pooled tail; the best tuned heuristic (as ``swarmsim tune`` judges: the objective, within
the guard's level where the Task has one); and the policy's paired difference to it, the
gain with Fieller's interval and the verdict against the goal."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .learned import COMPARISONS, GOAL_GAIN, LEARNED, Side
from .objectives import OBJECTIVES
from .spread import FRACTIONS
from .stats import bounded_mean_ci, paired_diff_ci, paired_ratio_ci, quantile_ci

Rows = Mapping[int, dict[str, Any]]  # seed -> one run's row (learned_run.run_job)


def scenario_result(
    task: str, runs: Mapping[str, Rows], references: Sequence[str] = ()
) -> dict[str, Any]:
    """One scenario of ``task``: every arm's statistics, the check of common random numbers,
    the best tuned heuristic (never one of ``references``), the learned policy against it,
    and each reference against it (how much there was to gain)."""
    side = COMPARISONS[task].side
    seeds = sorted(runs[LEARNED])
    submitted = {s: sorted({rows[s]["submitted"] for rows in runs.values()}) for s in seeds}
    rivals = {lb: r for lb, r in runs.items() if lb != LEARNED and lb not in references}
    best, rule = best_heuristic(task, rivals)
    return {
        "arms": {label: arm_stats(rows, side) for label, rows in runs.items()},
        "same_arrivals": all(len(c) == 1 for c in submitted.values()),
        "best": best,
        "best_rule": rule,
        "learned_vs_best": versus(runs[LEARNED], runs[best], side),
        "references_vs_best": {lb: versus(runs[lb], runs[best], side) for lb in references},
    }


def arm_stats(rows: Rows, side: Side) -> dict[str, Any]:
    """Mean and clipped interval over seeds of the objective, the side metric (None where the
    scenario does not measure it) and the metrics beside; the order-statistic interval of the
    p99 of every seed's queries pooled; the per-seed values; wall seconds per run."""
    runs = [rows[s] for s in sorted(rows)]
    measured = all(r["side_measured"] for r in runs)
    pooled = [x for r in runs for x in r["latencies"]]
    beside = {m: [r["metrics"][m] for r in runs] for m in runs[0]["metrics"]}
    return {
        "objective": bounded_mean_ci(r["objective"] for r in runs),
        "side": bounded_mean_ci((r["side"] for r in runs), high=1.0) if measured else None,
        "pooled_p99": quantile_ci(pooled, 0.99),
        "metrics": {
            m: bounded_mean_ci(v, high=1.0 if m in FRACTIONS else None)
            for m, v in beside.items()
            if None not in v
        },
        "per_seed": {
            "objective": [r["objective"] for r in runs],
            "side": [r["side"] for r in runs] if measured else None,
        },
        "wall_s_per_run": sum(r["wall_s"] for r in runs) / len(runs),
    }


def best_heuristic(task: str, runs: Mapping[str, Rows]) -> tuple[str, str]:
    """The heuristic with the lowest mean objective, among those whose mean guard is within
    its level when the Task's objective has a guard (the least outside it if none is)."""
    objective = OBJECTIVES[task]

    def mean(rows: Rows, key: str) -> float:
        return float(sum(r[key] for r in rows.values())) / len(rows)

    means = {label: mean(rows, "objective") for label, rows in runs.items()}
    guard = objective.guard
    if guard is None:
        return min(means, key=means.__getitem__), f"lowest mean {objective.metric}"
    excess = {label: guard.excess(mean(rows, "side"), guard.level) for label, rows in runs.items()}
    within = [label for label in means if excess[label] <= 0]
    rule = (f"lowest mean {objective.metric} with mean {guard.metric} "
            f"{'<=' if guard.upper else '>='} {guard.level}")  # fmt: skip
    if within:
        return min(within, key=means.__getitem__), rule
    return min(excess, key=excess.__getitem__), f"{rule}: none is, so the least outside it"


def versus(learned: Rows, best: Rows, side: Side) -> dict[str, Any]:
    """The learned policy minus the best heuristic per seed (lower is better): the paired
    difference, the gain ``1 - mean(learned) / mean(best)`` in % with Fieller's interval, the
    side condition's paired difference and whether it is met, and the verdicts."""
    seeds = sorted(learned)
    lo_, be = [learned[s]["objective"] for s in seeds], [best[s]["objective"] for s in seeds]
    diff = paired_diff_ci(lo_, be)
    ratio = paired_ratio_ci(lo_, be)
    gain = {
        "pct": None if ratio["ratio"] is None else 100 * (1 - ratio["ratio"]),
        "ci95": None if ratio["ci95"] is None else [100 * (1 - r) for r in ratio["ci95"][::-1]],
        "note": ratio["note"],
    }
    measured = all(r["side_measured"] for r in (*learned.values(), *best.values()))
    side_diff = (
        paired_diff_ci([learned[s]["side"] for s in seeds], [best[s]["side"] for s in seeds])
        if measured
        else None
    )
    met = side_met(side_diff, side)
    return {
        "diff": diff,
        "gain_pct": gain,
        "side_diff": side_diff,
        "side_met": met,
        "goal": goal_verdict(diff, gain, met),
        "tie": tie_verdict(diff),
    }


def side_met(diff: dict[str, Any] | None, side: Side) -> bool | None:
    """Whether the policy is not shown worse on the side metric than the best heuristic (its
    paired interval does not lie wholly on the worse side of zero); True where it is not
    measured (nothing to lose) or equal on every seed; None without an interval."""
    if diff is None or all(d == 0 for d in diff["diffs"]):
        return True
    if diff["ci95"] is None:
        return None
    lo, hi = diff["ci95"]
    return bool(hi >= 0 if side.higher_is_better else lo <= 0)


def goal_verdict(diff: dict[str, Any], gain: dict[str, Any], met: bool | None) -> str:
    """Met when the gain is at least GOAL_GAIN, the paired interval lies below zero and the
    side condition holds; else the first reason it is not."""
    goal = f">= {GOAL_GAIN:.0%} better"
    if diff["ci95"] is None:
        return f"undetermined: {diff['note']}"
    if gain["pct"] is None or gain["pct"] < 100 * GOAL_GAIN:
        return f"not met: gain below {GOAL_GAIN:.0%}"
    if diff["ci95"][1] >= 0:
        return "not met: the paired interval includes zero"
    if met is None:
        return "undetermined: no interval for the side condition"
    return f"met ({goal})" if met else "not met: worse on the side condition"


def tie_verdict(diff: dict[str, Any]) -> str:
    """On a control twin the policy should tie: "tie" when the paired interval includes
    zero (or the runs are identical), else which side it falls on."""
    if all(d == 0 for d in diff["diffs"]):
        return "tie (identical on every seed)"
    if diff["ci95"] is None:
        return f"undetermined: {diff['note']}"
    lo, hi = diff["ci95"]
    if lo <= 0 <= hi:
        return "tie (the paired interval includes zero)"
    return "learned better" if hi < 0 else "learned worse"

"""The statistics of the decision-spread experiment: intervals of non-negative metrics, the
paired differences to the best arm and the spread between the best and worst sensible arms."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from .spread import FRACTIONS, HIGHER_IS_BETTER, TaskPlan
from .stats import LEVEL, mean_ci

BOOTSTRAP_RESAMPLES = 2000

PerSeed = Mapping[int, float | None]  # one arm's metric on each seed (None: not measured)


def interval(values: Sequence[float], metric: str) -> dict[str, Any]:
    """Mean and Student-t 95% interval over seeds, clipped to the metric's range: every metric
    here is non-negative, fractions are at most 1, so no bound is printed outside them."""
    stat = mean_ci(values)
    lo, hi = stat["ci95"]
    if lo is not None:
        top = 1.0 if metric in FRACTIONS else math.inf
        stat["ci95"] = [min(max(lo, 0.0), top), min(max(hi, 0.0), top)]
    return stat


def paired(arm: PerSeed, best: PerSeed) -> dict[str, Any]:
    """Mean and Student-t 95% interval of ``arm - best`` over the seeds both measured."""
    return mean_ci(
        a - b for s, a in arm.items() if a is not None and (b := best.get(s)) is not None
    )


def ratio_ci(top: Sequence[float], bottom: Sequence[float]) -> list[float | None]:
    """95% percentile-bootstrap interval of mean(top) / mean(bottom), resampling seeds paired
    (the same seeds in both); None where a resample divides by zero or there is one seed."""
    if len(top) < 2 or min(bottom) <= 0:
        return [None, None]
    res = stats.bootstrap(
        (np.asarray(top), np.asarray(bottom)),
        lambda a, b, axis: np.mean(a, axis=axis) / np.mean(b, axis=axis),
        paired=True,
        vectorized=True,
        confidence_level=LEVEL,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [lo, hi] if math.isfinite(lo) and math.isfinite(hi) else [None, None]


def headline_block(metric: str, arms: Mapping[str, PerSeed], plan: TaskPlan) -> dict[str, Any]:
    """On one lower-is-better headline metric: the best and worst sensible arms (by mean),
    the spread worst / best with its interval, each arm's paired difference to the best, and
    whether the best is the "do nothing" arm and beats it (paired interval above zero)."""
    if metric in HIGHER_IS_BETTER:
        raise ValueError(f"headline metrics are lower-is-better, got {metric}")
    means = {
        label: float(np.mean(v))
        for label, seeds in arms.items()
        if label not in plan.unsensible and (v := [x for x in seeds.values() if x is not None])
    }
    if not means:
        return {"best": None, "worst": None, "spread": None}
    best, worst = min(means, key=means.__getitem__), max(means, key=means.__getitem__)
    pairs = [
        (w, b)
        for s, b in arms[best].items()
        if b is not None and (w := arms[worst].get(s)) is not None
    ]
    diffs = {label: paired(seeds, arms[best]) for label, seeds in arms.items()}
    base = diffs.get(plan.baseline)
    return {
        "best": best,
        "worst": worst,
        "best_mean": means[best],
        "worst_mean": means[worst],
        "spread": means[worst] / means[best] if means[best] > 0 else None,
        "spread_ci95": ratio_ci([w for w, _ in pairs], [b for _, b in pairs]),
        "best_is_baseline": best == plan.baseline,
        "baseline_worse": None if base is None else _above_zero(base),
        "paired_to_best": diffs,
    }


def _above_zero(diff: dict[str, Any]) -> bool | None:
    """Whether a paired difference's interval lies above zero (None: no interval)."""
    lo = diff["ci95"][0]
    return None if lo is None else lo > 0

"""Means and 95% confidence intervals over seeds (Student t), intervals for proportions
(Wilson) and quantiles (distribution-free, from order statistics), paired comparisons over
seeds (the difference per seed; the ratio of means by Fieller), and flattening of summaries.
Where seeds are too few for an interval, the interval is None and a note says why."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from scipy import stats

LEVEL = 0.95


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return float(stats.t.ppf(0.975, df))


def mean_ci(values: Iterable[float]) -> dict[str, Any]:
    """``{"mean", "ci95": [lo, hi], "n"}`` of ``values``; a single value has a zero-width CI."""
    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "ci95": [None, None], "n": 0}
    mean = float(x.mean())
    half = t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size) if x.size > 1 else 0.0
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": int(x.size)}


def proportion_ci(hits: int, n: int) -> dict[str, Any]:
    """``{"rate", "ci95", "n"}`` of ``hits`` out of ``n`` with the Wilson score interval
    (sound near 0 and 1, where the normal approximation is not)."""
    if n == 0:
        return {"rate": None, "ci95": [None, None], "n": 0}
    ci = stats.binomtest(hits, n).proportion_ci(confidence_level=LEVEL, method="wilson")
    return {"rate": hits / n, "ci95": [max(float(ci.low), 0.0), min(float(ci.high), 1.0)], "n": n}


def quantile_ci(values: Iterable[float], q: float) -> dict[str, Any]:
    """``{"value", "ci95", "n"}``: the ``q`` quantile (0 < q < 1) and a distribution-free 95%
    interval between order statistics, their ranks from the Binomial(n, q) count of values
    below the quantile (exact, conservative; clipped to the sample at the extremes)."""
    x = np.sort(np.asarray(list(values), dtype=np.float64))
    if x.size == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    n, tail = x.size, (1 - LEVEL) / 2
    lo = max(int(stats.binom.ppf(tail, n, q)) - 1, 0)  # P(count <= lo) < 2.5%
    hi = min(int(stats.binom.ppf(1 - tail, n, q)), n - 1)  # P(count <= hi) >= 97.5%
    value = float(np.percentile(x, 100 * q))
    return {"value": value, "ci95": [float(x[lo]), float(x[hi])], "n": int(n)}


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a nested summary under dotted names (``latency_s.p99``)."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


TOO_FEW = "too few seeds for an interval"
DEGENERATE = "no interval: every seed gave the same value"


def bounded_mean_ci(
    values: Iterable[float], low: float | None = 0.0, high: float | None = None
) -> dict[str, Any]:
    """``{"mean", "ci95", "n", "note"}``: the Student-t 95% interval of the mean clipped to
    the quantity's range [``low``, ``high``] (non-negative by default, so no negative bound
    is printed); ``ci95`` None with the reason in ``note`` below two values or when every
    value is the same (a zero-width interval would claim certainty that seeds cannot give)."""
    x = np.asarray(list(values), dtype=np.float64)
    out: dict[str, Any] = {"mean": float(x.mean()) if x.size else None, "ci95": None,
                           "n": int(x.size), "note": None}  # fmt: skip
    if x.size < 2:
        out["note"] = TOO_FEW
        return out
    if np.ptp(x) == 0:
        out["note"] = DEGENERATE
        return out
    half = t975(x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    lo, hi = out["mean"] - half, out["mean"] + half
    lo, hi = (lo, hi) if low is None else (max(lo, low), max(hi, low))
    out["ci95"] = [lo, hi] if high is None else [min(lo, high), min(hi, high)]
    return out


def paired_diff_ci(arm: Iterable[float], base: Iterable[float]) -> dict[str, Any]:
    """The per-seed difference ``arm - base`` (common random numbers: the same seed gives
    both): its mean and Student-t 95% interval, unclipped (a difference may be negative),
    ``note`` saying why there is none, and ``diffs`` per seed."""
    d = [a - b for a, b in zip(arm, base, strict=True)]
    out = bounded_mean_ci(d, low=None)
    if out["note"] == DEGENERATE:
        out["note"] = "no interval: the difference is the same on every seed"
    return {**out, "diffs": d}


def paired_ratio_ci(top: Iterable[float], bottom: Iterable[float]) -> dict[str, Any]:
    """``mean(top) / mean(bottom)`` over paired seeds with Fieller's 95% interval: the values
    of R where ``mean(top - R * bottom)`` is within its Student-t interval of zero (exact for
    normal pairs, no resampling). None, with the reason, below two seeds, when the pairs do
    not vary, or when ``mean(bottom)`` is not clearly above zero (the set is then unbounded).
    Both quantities are non-negative here, so the lower bound is clipped at 0."""
    y, x = np.asarray(list(top), np.float64), np.asarray(list(bottom), np.float64)
    n = x.size
    ratio = float(y.mean() / x.mean()) if n and x.mean() > 0 else None
    out: dict[str, Any] = {"ratio": ratio, "ci95": None, "n": int(n), "note": None}
    if n < 2:
        out["note"] = TOO_FEW
        return out
    if np.ptp(y - x) == 0 and np.ptp(x) == 0:
        out["note"] = DEGENERATE
        return out
    t2 = t975(n - 1) ** 2
    c = np.cov(y, x, ddof=1) / n
    a = x.mean() ** 2 - t2 * c[1, 1]
    b = x.mean() * y.mean() - t2 * c[0, 1]
    disc = b * b - a * (y.mean() ** 2 - t2 * c[0, 0])
    if a <= 0 or disc < 0:
        out["note"] = "no bounded interval: the base's mean is not clearly above zero"
        return out
    root = math.sqrt(disc)
    out["ci95"] = [max((b - root) / a, 0.0), (b + root) / a]
    return out

"""Means and 95% confidence intervals over seeds (Student t), intervals for proportions
(Wilson) and quantiles (distribution-free, from order statistics), and flattening of
summaries."""

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

"""Means and 95% confidence intervals over seeds (Student t), intervals for proportions
(Wilson) and quantiles (distribution-free, from order statistics), and flattening of
summaries."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

# Two-sided 95% Student t quantiles t(0.975, df) for df = 1..30; the normal 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


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
    z, p = 1.96, hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return {"rate": p, "ci95": [max(centre - half, 0.0), min(centre + half, 1.0)], "n": n}


def quantile_ci(values: Iterable[float], q: float) -> dict[str, Any]:
    """``{"value", "ci95", "n"}``: the ``q`` quantile (0 < q < 1) and a distribution-free 95%
    interval between the order statistics at ranks ``n q -/+ 1.96 sqrt(n q (1 - q))``."""
    x = np.sort(np.asarray(list(values), dtype=np.float64))
    if x.size == 0:
        return {"value": None, "ci95": [None, None], "n": 0}
    n, half = x.size, 1.96 * math.sqrt(x.size * q * (1 - q))
    lo, hi = max(math.floor(n * q - half), 0), min(math.ceil(n * q + half), n - 1)
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

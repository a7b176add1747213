"""The report's plots (matplotlib, PNG): latency CDFs, replicas against load, cost against SLO."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def latency_cdf(
    samples: Mapping[str, Sequence[float]], path: Path, xlabel: str = "end-to-end latency (s)"
) -> Path:
    """Empirical CDF of latency, one line per controller or recording (log x axis)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, values in samples.items():
        x = np.sort(np.asarray(values))
        if x.size:
            ax.step(x, np.arange(1, x.size + 1) / x.size, where="post", label=label)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of queries")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def replicas_over_time(series: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Live replicas (all layers) over time per controller, above the offered load."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for label, s in series.items():
        top.plot(s["t"], s["replicas"], label=label)
    first = next(iter(series.values()), None)
    if first is not None:
        bottom.plot(first["t"], first["arrival_rate"], color="grey")
    top.set_ylabel("live replicas")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel("arrivals (queries/s)")
    bottom.set_xlabel("simulated time (s)")
    bottom.grid(alpha=0.3)
    return _save(fig, path)


def cost_vs_slo(result: Mapping[str, Any], path: Path, cost: str = "gpu_hours") -> Path:
    """Mean cost against mean SLO-violation rate per controller, with 95% intervals."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, m in result["controllers"].items():
        x, y = m.get("slo.violation_rate"), m.get(cost)
        if not x or not y or x["mean"] is None or y["mean"] is None:
            continue
        xerr = [[x["mean"] - x["ci95"][0]], [x["ci95"][1] - x["mean"]]]
        yerr = [[y["mean"] - y["ci95"][0]], [y["ci95"][1] - y["mean"]]]
        ax.errorbar(x["mean"], y["mean"], xerr=xerr, yerr=yerr, fmt="o", capsize=3, label=label)
    ax.set_xlabel("SLO violation rate")
    ax.set_ylabel(cost.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

"""The simulator against queueing theory: writes ``results/queueing_validation.md``.

Runs the ``mmc`` scenario (central dispatch = M/M/c; random dispatch = c independent
M/M/1 queues) and the ``tandem`` scenario at several loads up to ρ = 0.9 and compares the
mean sojourn time with the closed form, with a 95% confidence interval from 20 batch means.

Run: ``python -m experiments.queueing_validation``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from swarmsim import Simulation, load_scenario

from .stats import t975
from .theory import mm1_sojourn, mmc_sojourn, tandem_sojourn

OUT = Path(__file__).resolve().parents[1] / "results" / "queueing_validation.md"
SEED = 1
BATCHES = 20


def measure(name: str, overrides: list[str]) -> tuple[float, float, int]:
    """Mean post-warm-up sojourn, its 95% half-width from batch means, and the sample size."""
    sim = Simulation(load_scenario(name, overrides), seed=SEED)
    sim.run()
    lat = np.asarray(sim.metrics.latencies)
    per = len(lat) // BATCHES
    means = lat[: per * BATCHES].reshape(BATCHES, per).mean(axis=1)
    half = t975(BATCHES - 1) * float(means.std(ddof=1)) / math.sqrt(BATCHES)
    return float(lat.mean()), half, len(lat)


def rows() -> list[tuple[str, float, float, float, float, int]]:
    out = []
    c, mu = 4, 1.0
    for rho, duration in [(0.5, 40_000), (0.7, 40_000), (0.8, 80_000), (0.9, 200_000)]:
        lam = rho * c * mu
        base = [f"arrival_rate={lam}", f"servers={c}", f"duration_s={duration}"]
        mean, hw, n = measure("mmc", [*base, "dispatch=central"])
        out.append((f"M/M/4 central, ρ={rho}", rho, mmc_sojourn(lam, mu, c), mean, hw, n))
        mean, hw, n = measure("mmc", [*base, "dispatch=random"])
        out.append((f"4 × M/M/1 random, ρ={rho}", rho, mm1_sojourn(lam / c, mu), mean, hw, n))
    mu1, mu2 = 1.0, 0.8
    for rho, duration in [(0.5, 40_000), (0.7, 80_000), (0.9, 300_000)]:
        lam = rho * mu2  # the slower station sets ρ
        over = [f"arrival_rate={lam}", f"rate_1={mu1}", f"rate_2={mu2}", f"duration_s={duration}"]
        mean, hw, n = measure("tandem", over)
        out.append(
            (f"tandem μ=(1, 0.8), ρ₂={rho}", rho, tandem_sojourn(lam, [mu1, mu2]), mean, hw, n)
        )
    return out


def render(table: list[tuple[str, float, float, float, float, int]]) -> str:
    lines = [
        "# Queueing validation",
        "",
        "Command: `python -m experiments.queueing_validation` (seed 1; warm-up excluded;",
        "95% intervals from 20 batch means of the post-warm-up sojourns).",
        "",
        "| model | theory W (s) | simulated W (s) | 95% CI | rel. error | theory in CI | queries |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, _rho, theory, mean, hw, n in table:
        inside = "yes" if abs(mean - theory) <= hw else "no"
        lines.append(
            f"| {name} | {theory:.4f} | {mean:.4f} | ±{hw:.4f} | {(mean - theory) / theory:+.2%}"
            f" | {inside} | {n:,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    text = render(rows())
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

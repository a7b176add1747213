"""Queueing validation: the simulator against closed forms (M/M/c, M/M/1, Jackson tandem).

Every run fixes its seed. Each mean is compared with its closed form to within
``Z = 4`` standard errors, the standard error coming from batch means: the post-warm-up
sojourn times, in completion order, are cut into ``N_BATCHES = 20`` consecutive batches
and the spread of the batch means gives the standard error of the overall mean. Batches
are thousands of seconds long, many times the relaxation time of the queue (about
``1 / (mu (1 - sqrt(rho))^2)``: 380 s for an M/M/1 at rho = 0.9), so batch means are close
to independent; with 19 degrees of freedom P(|t| > 4) < 0.001. Run lengths are chosen
so that the relative standard error is a few percent (Whitt 1989, "Planning queueing
simulations": the time-average queue of an M/M/1 has asymptotic variance
``2 rho (1 + rho) / (1 - rho)^4`` per unit time, so rho = 0.9 needs runs 5x longer than
rho = 0.5 for the same precision); ``MAX_REL_SE`` checks that this holds, so that the
4-SE band stays narrow enough for the test to fail on a wrong model.
"""

from __future__ import annotations

import math
from collections.abc import Generator

import numpy as np
import pytest
import simpy

from experiments.theory import mm1_sojourn, mm1_sojourn_quantile, mmc_sojourn, tandem_sojourn
from swarmsim import Simulation, load_scenario

N_BATCHES = 20
Z = 4.0
MAX_REL_SE = 0.05  # every run below is sized for a relative SE of about 1-3.6 %
SEED = 1


def batch_means(x: list[float], fn=np.mean, n: int = N_BATCHES) -> tuple[float, float]:
    """``fn`` of the batch-mean of ``x`` and its standard error, from ``n`` consecutive batches."""
    m = len(x) // n
    batches = np.asarray(x[: m * n]).reshape(n, m)
    per_batch = np.array([fn(b) for b in batches])
    return float(per_batch.mean()), float(per_batch.std(ddof=1) / math.sqrt(n))


def run(name: str, overrides: list[str]) -> tuple[dict, list[float]]:
    """Run a built-in validation scenario; return the summary and the post-warm-up sojourns."""
    sim = Simulation(load_scenario(name, overrides), seed=SEED)
    summary = sim.run()
    return summary, sim.metrics.latencies


def assert_close(latencies: list[float], summary: dict, expected: float) -> None:
    """The mean sojourn is within Z batch-means SEs of ``expected``, and the SE is small."""
    _, se = batch_means(latencies)
    assert se < MAX_REL_SE * expected, f"run too short: SE {se:.4f} for W {expected:.4f}"
    assert summary["latency_s"]["mean"] == pytest.approx(float(np.mean(latencies)))
    assert abs(summary["latency_s"]["mean"] - expected) < Z * se, (
        f"mean sojourn {summary['latency_s']['mean']:.4f} vs W {expected:.4f} (SE {se:.4f})"
    )


# (rho, duration_s): heavier load, longer run (see the module docstring).
LOADS = [(0.5, 20_000), (0.7, 20_000), (0.9, 100_000)]
C = 4


@pytest.mark.parametrize(("rho", "duration"), LOADS)
def test_central_dispatch_is_mmc(rho: float, duration: float) -> None:
    """One FIFO at the coordinator feeding c exponential servers: Erlang C mean sojourn."""
    lam, mu = rho * C, 1.0
    summary, latencies = run(
        "mmc", [f"arrival_rate={lam}", f"servers={C}", "dispatch=central", f"duration_s={duration}"]
    )
    expected = mmc_sojourn(lam, mu, C)
    assert_close(latencies, summary, expected)


@pytest.mark.parametrize(("rho", "duration"), LOADS)
def test_random_dispatch_is_c_independent_mm1(rho: float, duration: float) -> None:
    """Uniform random dispatch splits the Poisson stream: c M/M/1 queues at rate lambda/c."""
    lam, mu = rho * C, 1.0
    summary, latencies = run(
        "mmc", [f"arrival_rate={lam}", f"servers={C}", "dispatch=random", f"duration_s={duration}"]
    )
    assert_close(latencies, summary, mm1_sojourn(lam / C, mu))


# (arrival rate, duration_s) for the tandem's rates 1.0 and 0.8: rho_2 = 0.5, 0.7, 0.9.
TANDEM_LOADS = [(0.4, 40_000), (0.56, 80_000), (0.72, 200_000)]


@pytest.mark.parametrize(("lam", "duration"), TANDEM_LOADS)
def test_tandem_is_sum_of_mm1_sojourns(lam: float, duration: float) -> None:
    """Two exponential stations in series (Jackson / Burke): W = 1/(mu1-lambda) + 1/(mu2-lambda)."""
    mu1, mu2 = 1.0, 0.8
    summary, latencies = run(
        "tandem",
        [f"arrival_rate={lam}", f"rate_1={mu1}", f"rate_2={mu2}", f"duration_s={duration}"],
    )
    assert_close(latencies, summary, tandem_sojourn(lam, [mu1, mu2]))


def test_mm1_sojourn_quantiles_are_exponential() -> None:
    """An M/M/1 sojourn time is exponential with rate mu - lambda: p50 = ln 2 / (mu - lambda),
    p95 = ln 20 / (mu - lambda). Tolerance: Z batch SEs of the per-batch quantiles (about 70,000
    queries, 3,500 per batch: the quantiles' relative SE is about 2-3 %)."""
    lam, mu = 0.7, 1.0
    summary, latencies = run(
        "mmc", [f"arrival_rate={lam}", "servers=1", "dispatch=central", "duration_s=100000"]
    )
    for key, q in (("p50", 0.50), ("p95", 0.95)):
        expected = mm1_sojourn_quantile(lam, mu, q)
        _, se = batch_means(latencies, fn=lambda b, q=q: np.quantile(b, q))
        assert se < MAX_REL_SE * expected
        assert abs(summary["latency_s"][key] - expected) < Z * se, (key, summary["latency_s"])


def test_littles_law_and_utilisation() -> None:
    """The number in system, sampled every 0.5 s, averages to lambda * W (Little's law on the
    sample path); utilisation is lambda / (c mu); throughput is lambda.

    Both sides of Little's law come from the same sample path, so they differ only by edge
    effects and the sampling grid (a relative error of about 0.1 % here); 1 % catches a
    latency or an in-flight count measured from the wrong event. Utilisation and throughput
    are sums over about 56,000 queries: relative SEs of sqrt(2/n) = 0.6 % and 1/sqrt(n) =
    0.4 %, so 3 % and 2 % are 5 SEs.
    """
    lam, mu, duration = 2.8, 1.0, 20_000.0
    scenario = load_scenario(
        "mmc", [f"arrival_rate={lam}", f"servers={C}", "dispatch=central", f"duration_s={duration}"]
    )
    sim = Simulation(scenario, seed=SEED)
    samples: list[int] = []

    def sampler() -> Generator[simpy.Event, None, None]:
        yield sim.env.timeout(scenario.warmup_s)
        while True:
            samples.append(sim.metrics.in_flight)
            yield sim.env.timeout(0.5)

    sim.env.process(sampler())
    summary = sim.run()
    window = duration - scenario.warmup_s
    lam_hat = (len(sim.metrics.latencies) + summary["queries"]["in_flight"]) / window
    assert np.mean(samples) == pytest.approx(lam_hat * summary["latency_s"]["mean"], rel=0.01)
    assert summary["utilisation"]["server"] == pytest.approx(lam / (C * mu), rel=0.03)
    assert summary["throughput_qps"] == pytest.approx(lam, rel=0.02)

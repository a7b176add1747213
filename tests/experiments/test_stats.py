"""The interval estimators of experiments.stats: coverage on known distributions, fixed seeds.

Each coverage is measured over 2,000 repetitions, so its standard error is about 0.5
percentage points; the bands below are about three of them around the nominal (or, for the
discrete intervals, the exact) coverage.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.stats import (
    DEGENERATE,
    TOO_FEW,
    bounded_mean_ci,
    mean_ci,
    paired_diff_ci,
    paired_ratio_ci,
    proportion_ci,
    quantile_ci,
    t975,
)

REPS = 2_000


def test_t_quantile_is_students_past_thirty_degrees_of_freedom():
    assert t975(31) == pytest.approx(stats.t.ppf(0.975, 31), rel=1e-12)
    assert t975(31) == pytest.approx(2.039513, abs=1e-6)  # the old table's 1.96 was 4% short
    assert t975(1) == pytest.approx(12.706205, abs=1e-6)
    with pytest.raises(ValueError, match="got 0"):
        t975(0)


def test_t_interval_covers_the_mean_of_ten_normal_samples_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(REPS):
        lo, hi = mean_ci(rng.normal(3.0, 2.0, 10))["ci95"]
        covered += lo <= 3.0 <= hi
    assert 0.935 <= covered / REPS <= 0.965


def test_wilson_interval_covers_p_01_at_n_50():
    rng = np.random.default_rng(1)
    covered = 0
    for hits in rng.binomial(50, 0.1, REPS):
        lo, hi = proportion_ci(int(hits), 50)["ci95"]
        covered += lo <= 0.1 <= hi
    assert 0.955 <= covered / REPS <= 0.985  # exact coverage at p = 0.1, n = 50: 0.970


def test_wilson_interval_is_scipys():
    ci = stats.binomtest(7, 40).proportion_ci(confidence_level=0.95, method="wilson")
    assert proportion_ci(7, 40)["ci95"] == pytest.approx([ci.low, ci.high], rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 0.9])
def test_quantile_interval_covers_exponential_quantiles_at_least_95_percent(q):
    rng = np.random.default_rng(2)
    true = -np.log(1 - q)  # of an exponential of mean 1
    covered = 0
    for _ in range(REPS):
        lo, hi = quantile_ci(rng.exponential(1.0, 100), q)["ci95"]
        covered += lo <= true <= hi
    assert 0.94 <= covered / REPS <= 0.995  # exact ranks: at least 95%, up to 98% at n = 100


def test_quantile_interval_ranks_are_the_binomial_ones():
    x = np.arange(100.0)  # the order statistics are their own ranks (0-based)
    assert quantile_ci(x, 0.5)["ci95"] == [39.0, 60.0]  # Binomial(100, 0.5): 2.5% / 97.5%
    assert quantile_ci(x, 0.99)["ci95"] == [96.0, 99.0]  # clipped to the largest value


# The paired estimators on ten seeds, as `swarmsim compare` uses them: 1,000 repetitions
# (standard error of a coverage ~0.7 points), each a seed's baseline lognormal and the arm a
# correlated lognormal 25% below it, like p99 latencies of two controllers on common seeds.
# (On strongly skewed differences ten seeds are too few for t: exponential ones give ~90%.)
PAIRED_REPS, SEEDS = 1_000, 10


def paired_sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    base = 10.0 * rng.lognormal(0.0, 0.3, SEEDS)
    return 0.75 * base * rng.lognormal(-0.02, 0.2, SEEDS), base  # E[noise] = 1


def test_paired_difference_interval_covers_the_mean_difference():
    rng = np.random.default_rng(3)
    true = 10.0 * np.exp(0.3**2 / 2) * (0.75 - 1.0)
    covered = 0
    for _ in range(PAIRED_REPS):
        lo, hi = paired_diff_ci(*paired_sample(rng))["ci95"]
        covered += lo <= true <= hi
    assert 0.92 <= covered / PAIRED_REPS <= 0.975


def test_fieller_interval_covers_the_ratio_of_means():
    rng = np.random.default_rng(4)
    covered = 0
    for _ in range(PAIRED_REPS):
        ci = paired_ratio_ci(*paired_sample(rng))["ci95"]
        covered += ci is not None and ci[0] <= 0.75 <= ci[1]
    assert 0.92 <= covered / PAIRED_REPS <= 0.975


def test_clipped_mean_interval_covers_a_lognormal_mean_and_is_never_negative():
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(PAIRED_REPS):
        stat = bounded_mean_ci(rng.lognormal(-3.0, 0.3, 30), high=1.0)  # a small rate
        lo, hi = stat["ci95"]
        assert 0.0 <= lo <= hi <= 1.0
        covered += lo <= np.exp(-3.0 + 0.3**2 / 2) <= hi
    assert 0.92 <= covered / PAIRED_REPS <= 0.975
    assert bounded_mean_ci([0.0, 0.0, 0.3])["ci95"][0] == 0.0  # plain t: [-0.33, 0.53]


def test_p99_interval_of_pooled_queries_covers_the_lognormal_p99():
    rng = np.random.default_rng(6)
    true = np.exp(2.326348 * 0.8)  # lognormal(0, 0.8): exp(sigma * z_0.99)
    covered = 0
    for _ in range(PAIRED_REPS):
        lo, hi = quantile_ci(rng.lognormal(0.0, 0.8, 2_000), 0.99)["ci95"]
        covered += lo <= true <= hi
    assert 0.94 <= covered / PAIRED_REPS <= 0.985  # exact ranks: at least 95%


def test_too_few_or_identical_seeds_give_no_interval_and_say_so():
    assert bounded_mean_ci([3.0]) == {"mean": 3.0, "ci95": None, "n": 1, "note": TOO_FEW}
    assert bounded_mean_ci([2.0, 2.0])["note"] == DEGENERATE
    same = paired_diff_ci([3.0, 4.0], [2.0, 3.0])
    assert same["ci95"] is None and same["mean"] == 1.0 and "same on every seed" in same["note"]
    assert paired_ratio_ci([1.0], [2.0])["note"] == TOO_FEW
    unbounded = paired_ratio_ci([1.0, 2.0, 1.5], [0.1, -0.1, 0.05])
    assert unbounded["ci95"] is None and "not clearly above zero" in unbounded["note"]


def test_paired_difference_and_fieller_match_hand_computations():
    arm, base = [8.0, 9.0, 7.0], [10.0, 12.0, 9.0]
    d = np.array(arm) - np.array(base)
    half = t975(2) * d.std(ddof=1) / np.sqrt(3)
    assert paired_diff_ci(arm, base)["ci95"] == pytest.approx([d.mean() - half, d.mean() + half])
    lo, hi = paired_ratio_ci(arm, base)["ci95"]
    for r in (lo, hi):  # on each bound, mean(arm - r base) is exactly t standard errors off 0
        e = np.array(arm) - r * np.array(base)
        assert abs(e.mean()) == pytest.approx(t975(2) * e.std(ddof=1) / np.sqrt(3))
    assert lo < 8.0 / 10.3333 < hi

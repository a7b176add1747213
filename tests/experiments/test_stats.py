"""The interval estimators of experiments.stats: coverage on known distributions, fixed seeds.

Each coverage is measured over 2,000 repetitions, so its standard error is about 0.5
percentage points; the bands below are about three of them around the nominal (or, for the
discrete intervals, the exact) coverage.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from experiments.stats import mean_ci, proportion_ci, quantile_ci, t975

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

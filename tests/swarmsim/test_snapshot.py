"""The view's statistics: the p95 stage latency equals numpy's percentile bit for bit."""

from __future__ import annotations

import random

import numpy as np
import pytest

from swarmsim.snapshot import p95


def test_p95_equals_numpy_percentile_bit_for_bit() -> None:
    """Sizes around the interpolation's cases (one value, n - 1 a multiple of 20, ties,
    magnitudes from microseconds to hours): the same float, not just a close one."""
    rng = random.Random(11)
    for trial in range(4000):
        n = rng.choice([1, 2, 3, 20, 21, 22, 41, 100, 101, rng.randint(1, 500)])
        if trial % 3 == 0:
            values = [float(rng.randint(0, 3)) * 0.1 for _ in range(n)]
        else:
            values = [rng.lognormvariate(0, 2) * 10 ** rng.randint(-6, 3) for _ in range(n)]
        assert repr(p95(values)) == repr(float(np.percentile(values, 95)))
    with pytest.raises(ValueError, match="no values"):
        p95([])

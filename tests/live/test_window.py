"""The live coordinator's load window keeps the arrival history the autoscaling Task reads."""

from __future__ import annotations

import pytest

from live.window import LoadWindow
from swarmsim.view import ARRIVAL_HISTORY


def test_each_closed_interval_adds_its_rate_oldest_first_and_old_ones_fall_off():
    window = LoadWindow(["embedder"])
    rates = []
    for k in range(ARRIVAL_HISTORY + 2):  # 15 s intervals with k + 1 jobs each
        for _ in range(k + 1):
            window.arrive("embedder")
        window.reset(15.0 * (k + 1))
        rates.append((k + 1) / 15.0)
    assert window.history("embedder") == pytest.approx(tuple(rates[-ARRIVAL_HISTORY:]))
    assert window.arrivals == {"embedder": 0} and window.start == 15.0 * (ARRIVAL_HISTORY + 2)

"""The SLO metric counts queries starved in flight, so a controller cannot hide violations."""

from __future__ import annotations

import pytest

from swarmsim import Simulation

STARVED = """
slo_latency_s: 5.0
fabric: {enabled: false}
layers:
  server: {role: synthesizer, service: {kind: deterministic, rate: 0.025}}
stages: [{layer: server}]
nodes:
  - name: host
    agents: [{layer: server}]
"""


def test_queries_in_flight_past_the_slo_are_violations(story):
    """A 40-second server gets queries at 0, 1 and 48; at t=50 the first is done (late),
    the second has waited 49 s (overdue), the third 2 s (not yet late)."""
    sim = Simulation(story(STARVED, arrivals=[0, 1, 48], duration_s=50.0), seed=0)
    summary = sim.run()
    assert summary["queries"]["completed"] == 1 and summary["queries"]["in_flight"] == 2
    assert summary["slo"]["overdue_in_flight"] == 1
    assert summary["slo"]["violation_rate"] == pytest.approx(2 / 2)
    assert sim.view().totals.slo_violations == 2  # the late one, and the overdue one, once each


def test_goodput_counts_post_warm_up_queries_within_the_slo_per_measured_second(story):
    """A 4-second server, warm-up 5 s, run 25 s: the query at 0 is warm-up; the one at 10
    ends at 14 (4 s, within the SLO), the one at 11 waits and ends at 18 (7 s, late)."""
    scenario = story(STARVED, arrivals=[0, 10, 11], duration_s=25.0,
                     overrides=["warmup_s=5", "layers.server.service.rate=0.25"])  # fmt: skip
    summary = Simulation(scenario, seed=0).run()
    assert summary["queries"]["completed"] == 3
    assert summary["slo"]["violation_rate"] == pytest.approx(1 / 2)
    assert summary["slo"]["goodput_qps"] == pytest.approx(1 / (25 - 5))

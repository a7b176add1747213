"""Autoscaling heuristics against worked examples of the systems they reproduce."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import layer, view

from controllers.registry import make_controller
from envs.scaling import HOLD, AutoscalingTask, decode, scale_target

TASK = AutoscalingTask()


def obs(**stats) -> np.ndarray:
    """An observation of one layer (the synthesizers) with the given LayerStats fields."""
    return TASK.observe(view([], layers={"synth": layer("synthesizer", **stats)}))


def target(controller, observation, live: int) -> int:
    return scale_target(live, int(controller.act(observation)[0]))


def test_static_never_scales():
    ctl = make_controller("autoscaling", "static")
    assert (ctl.act(obs(running=4, utilisation=1.0)) == HOLD).all()


def test_hpa_doubles_when_the_metric_is_twice_the_target():
    """Kubernetes docs: current 200m against a 100m target doubles the replicas."""
    ctl = make_controller("autoscaling", "hpa", target_utilization=0.5)
    assert target(ctl, obs(running=4, utilisation=1.0), 4) == 8


def test_hpa_ignores_ratios_within_the_10_percent_tolerance():
    ctl = make_controller("autoscaling", "hpa", target_utilization=0.5)
    assert ctl.act(obs(running=10, utilisation=0.54))[0] == HOLD  # ratio 1.08
    assert target(ctl, obs(running=10, utilisation=0.6), 10) == 12  # ratio 1.2 -> ceil(12)


def test_hpa_scales_down_only_to_the_highest_recommendation_of_the_last_300_s():
    """Recommendations 8 then 4: the 300 s window keeps 8 (20 syncs of 15 s) before 4."""
    ctl = make_controller("autoscaling", "hpa", target_utilization=0.5)
    assert ctl.act(obs(running=8, utilisation=0.5))[0] == HOLD  # recommends 8
    for _ in range(19):
        assert ctl.act(obs(running=8, utilisation=0.25))[0] == HOLD  # recommends 4, held
    assert target(ctl, obs(running=8, utilisation=0.25), 8) == 4  # the 8 left the window


def test_hpa_caps_scale_up_at_max_of_double_or_plus_four():
    ctl = make_controller("autoscaling", "hpa", target_utilization=0.1)
    # desired ceil(1 * 1.0 / 0.1) = 10, capped at max(2, 1 + 4) = 5; the action space's
    # largest step from 1 replica is x2
    assert target(ctl, obs(running=1, utilisation=1.0), 1) == 2
    assert target(ctl, obs(running=8, utilisation=1.0), 8) == 16  # cap 16 = 2x, step x2


def test_kpa_sizes_to_concurrency_over_target_times_utilisation():
    """200 ongoing / (100 x 0.7) = ceil(2.86) = 3 replicas, from 3: hold."""
    ctl = make_controller("autoscaling", "kpa")
    assert ctl.act(obs(running=3, in_flight=200))[0] == HOLD


def test_kpa_panics_at_twice_the_capacity_and_does_not_scale_down_while_panicking():
    ctl = make_controller("autoscaling", "kpa", target_concurrency=1.0, target_utilization=1.0)
    assert target(ctl, obs(running=2, in_flight=8), 2) == 4  # panic: 8/2 >= 2x, up (x2 max)
    # load vanishes: the stable window still averages it, and panic forbids scaling down
    assert ctl.act(obs(running=4, in_flight=0))[0] == HOLD


def test_ray_serve_waits_30_s_before_scaling_up_and_600_s_before_down():
    ctl = make_controller("autoscaling", "ray-serve")
    busy = obs(running=2, in_flight=8)  # 8 ongoing / 2 per replica = 4 wanted
    assert ctl.act(busy)[0] == HOLD  # 15 s of evidence
    assert target(ctl, busy, 2) == 4  # 30 s: up
    idle = obs(running=4, in_flight=0)
    actions = [ctl.act(idle)[0] for _ in range(40)]
    first_down = actions.index(next(a for a in actions if a != HOLD))
    assert (first_down + 1) * 15 == 600


def test_controllers_are_registered_with_summaries():
    from controllers.registry import controller_names

    names = controller_names()["autoscaling"]
    assert {"static", "hpa", "kpa", "ray-serve"} <= set(names)
    assert all(len(summary) > 10 for summary in names.values())


# --- predictive: forecast one start-up ahead / measured capacity ---------------------------

RISING = dict(running=4, utilisation=0.5, throughput=8.0, arrival_rate=8.0,
              arrival_history=(4.0, 5.0, 6.0, 7.0))  # fmt: skip


def test_predictive_scales_up_for_the_rate_one_start_up_ahead():
    """Rates 4, 5, 6, 7, 8 jobs/s: +1 per 15 s interval, so 120 s ahead (8 intervals) 16/s.
    A replica's service time is 0.5 busy x 4 replicas / 8 jobs/s = 0.25 s: 16 x 0.25 / 0.7 =
    5.7, so 6 replicas, while HPA (utilisation 0.5 under its 0.7 target) scales down to 3."""
    ctl = make_controller("autoscaling", "predictive")
    assert ctl.predicted_rate(0, decode(obs(**RISING))[0]) == pytest.approx(16.0, rel=1e-5)
    ctl.reset()
    assert target(ctl, obs(**RISING), 4) == 6
    hpa = make_controller("autoscaling", "hpa")
    assert target(hpa, obs(**RISING), 4) == 3


def test_predictive_follows_a_flat_rate_and_its_lead_time():
    """Flat at 8 jobs/s: 8 x 0.25 / 0.7 = 2.9, so 3 replicas (the stabilisation window holds
    only this first recommendation); with no lead the rising rate is predicted at its fitted
    last value, 8/s: 3 replicas as well."""
    flat = {**RISING, "arrival_history": (8.0, 8.0, 8.0, 8.0)}
    assert target(make_controller("autoscaling", "predictive"), obs(**flat), 4) == 3
    assert target(make_controller("autoscaling", "predictive", lead_s=0.0), obs(**RISING), 4) == 3


def test_predictive_smooths_rate_and_capacity_across_intervals():
    """Holt's smoothing (alpha 0.5, beta 0.2) from level 8, trend 1 per interval; each later
    interval's rate is 8 again. Capacity: 0.25 s per job once measured, kept while idle."""
    ctl = make_controller("autoscaling", "predictive")
    idle = {**RISING, "throughput": 0.0, "utilisation": 0.0}
    assert ctl.act(obs(**idle))[0] == HOLD  # nothing answered yet: no capacity known
    # level 0.5 x 8 + 0.5 x (8 + 1) = 8.5, trend 0.2 x 0.5 + 0.8 x 1 = 0.9: 8.5 + 8 x 0.9 =
    # 15.7/s, x 0.25 / 0.7 = 5.6 -> 6
    assert target(ctl, obs(**RISING), 4) == 6
    assert ctl.memory(0)["level"] == pytest.approx(8.5, rel=1e-5)
    assert ctl.memory(0)["trend"] == pytest.approx(0.9, rel=1e-5)
    assert target(ctl, obs(**idle), 4) == 6  # 14.8/s x the kept 0.25 s / 0.7 = 5.3 -> 6
    slower = {**RISING, "utilisation": 1.0}  # 0.5 s per job, smoothed to 0.375 s
    # 13.6/s x 0.375 / 0.7 = 7.3 -> 8
    assert target(ctl, obs(**slower), 4) == 8


def test_predictive_scales_down_only_to_the_highest_count_of_its_window():
    """HPA's 300 s stabilisation: after asking for 6, 6 replicas at a flat 8/s (0.375 s per
    job: 8 x 0.375 / 0.7 = 4.3 -> 5) hold at 6."""
    ctl = make_controller("autoscaling", "predictive", alpha=1.0, beta=1.0)
    assert target(ctl, obs(**RISING), 4) == 6
    flat = {**RISING, "arrival_history": (8.0,) * 4, "running": 6}
    assert ctl.act(obs(**flat))[0] == HOLD

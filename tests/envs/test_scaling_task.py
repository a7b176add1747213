"""AutoscalingTask on hand-built views: the documented observation and the scale calls."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import layer, totals, view

from envs.scaling import (
    HOLD,
    LAYER_FEATURES,
    MAX_LAYERS,
    RATIOS,
    TREND,
    AutoscalingTask,
    ScalingReward,
    arrival_trend,
    choice_for,
    decode,
    scale_target,
)

LAYERS = {
    "embedder": layer("embedder", running=2, arrival_rate=10.0, in_flight=12, backlog=4,
                      queue=16, utilisation=0.25, p95_latency_s=5.0, cost_rate=20.0,
                      throughput=10.0),
    "synth": layer("synthesizer", running=18, starting=2),
}  # fmt: skip


def test_observation_follows_the_documented_layout():
    task = AutoscalingTask()
    obs = task.observe(view([], layers=LAYERS))
    assert obs.shape == (MAX_LAYERS * LAYER_FEATURES,) and task.observation_space.contains(obs)
    emb = obs[:LAYER_FEATURES]
    assert emb[:10] == pytest.approx([1, 0.5, 0.5, 0.5, 0.25, 0.5, 2 / 18, 0, 0.5, 0.5])
    # no earlier interval yet: each repeats the last one (10 jobs/s), and there is no trend
    assert emb[10:] == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5])
    synth = obs[LAYER_FEATURES : 2 * LAYER_FEATURES]
    assert (
        synth[0] == 1 and synth[6] == pytest.approx(18 / 34) and synth[7] == pytest.approx(2 / 18)
    )
    assert obs[2 * LAYER_FEATURES :] == pytest.approx(0.0)


def test_decode_inverts_encode():
    raw = decode(AutoscalingTask().observe(view([], layers=LAYERS)))
    assert raw[0, :10] == pytest.approx([1, 10, 16, 16, 0.25, 5, 2, 0, 20, 10], rel=1e-5)
    assert raw[0, 10:] == pytest.approx([10, 10, 10, 10, 0], rel=1e-5, abs=1e-6)
    assert raw[1, 6:8] == pytest.approx([18, 2], rel=1e-5)


@pytest.mark.parametrize(
    ("history", "last", "earlier", "trend"),
    [
        # a steady climb of 1 job/s per interval: 1, 2, 3, 4 then 5
        ((1.0, 2.0, 3.0, 4.0), 5.0, [4, 3, 2, 1], 1.0),
        # a burst arriving: flat at 2, then 10 (slope of 0, 0, 0, 0, 8 over x = -2..2: 16/10)
        ((2.0, 2.0, 2.0, 2.0), 10.0, [2, 2, 2, 2], 1.6),
        # two intervals into the run: the missing ones repeat the oldest; slope over 3 and 6
        ((3.0,), 6.0, [3, 3, 3, 3], 3.0),
        # more history than kept: only the 4 most recent count; a fall of 2 per interval
        ((99.0, 12.0, 10.0, 8.0, 6.0), 4.0, [6, 8, 10, 12], -2.0),
    ],
)
def test_arrival_history_and_trend_on_hand_made_intervals(history, last, earlier, trend):
    st = layer("synthesizer", arrival_rate=last, arrival_history=history)
    assert arrival_trend(st) == pytest.approx(trend)
    obs = AutoscalingTask().observe(view([], layers={"synth": st}))
    assert obs[10:14] == pytest.approx([r / (r + 10) for r in earlier])
    assert obs[TREND] == pytest.approx(0.5 + 0.5 * trend / (abs(trend) + 2))
    raw = decode(obs)[0]
    assert raw[1] == pytest.approx(last, rel=1e-5)
    assert raw[10:14] == pytest.approx(earlier, rel=1e-5)
    assert raw[TREND] == pytest.approx(trend, rel=1e-5)


@pytest.mark.parametrize(
    ("live", "choice", "target"),
    [(20, 8, 40), (20, 0, 10), (20, 5, 22), (2, 5, 3), (2, 3, 1), (1, 0, 0), (0, 6, 1)],
)
def test_targets_scale_the_live_replicas_and_always_move_at_least_one(live, choice, target):
    assert scale_target(live, choice) == target


def test_choice_for_picks_the_nearest_target():
    assert choice_for(20, 20) == HOLD
    assert RATIOS[choice_for(20, 40)] == 2.0
    assert RATIOS[choice_for(20, 100)] == 2.0  # beyond the largest step: the largest
    assert scale_target(20, choice_for(20, 15)) == 16  # log-nearest of 13, 16, 18
    assert scale_target(20, choice_for(20, 17)) == 18
    assert scale_target(4, choice_for(4, 3)) == 3


def test_actions_become_scale_calls(plane):
    task = AutoscalingTask()
    task.observe(view([], layers=LAYERS))
    action = np.full(MAX_LAYERS, HOLD)
    action[0], action[1] = 8, 0  # x2 and x0.5
    assert task.act(action, plane) == 0
    assert plane.calls == [("scale", "embedder", 4), ("scale", "synth", 10)]


def test_choices_for_absent_layers_are_counted_invalid(plane):
    task = AutoscalingTask()
    task.observe(view([], layers=LAYERS))
    action = np.full(MAX_LAYERS, HOLD)
    action[5] = 7
    assert task.act(action, plane) == 1 and plane.calls == []


def test_heuristic_holds_and_reward_prices_cost_and_violations():
    task = AutoscalingTask(ScalingReward(cost=1.0, slo=0.5))
    assert (task.heuristic(view([], layers=LAYERS)) == HOLD).all()
    before, after = totals(cost_usd=10.0), totals(cost_usd=10.8, slo_violations=4)
    assert task.reward(before, after, 15.0) == pytest.approx(-0.8 - 2.0)

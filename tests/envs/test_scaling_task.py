"""AutoscalingTask on hand-built views: the documented observation and the scale calls."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import layer, totals, view

from envs.scaling import DOWN, HOLD, LAYER_FEATURES, MAX_LAYERS, UP, AutoscalingTask, ScalingReward

LAYERS = {
    "embedder": layer("embedder", running=2, arrival_rate=10.0, queue=16, utilisation=0.25,
                      p95_latency_s=5.0, cost_rate=20.0, throughput=10.0),
    "synth": layer("synthesizer", running=18, starting=2),
}  # fmt: skip


def test_observation_follows_the_documented_layout():
    task = AutoscalingTask()
    obs = task.observe(view([], layers=LAYERS))
    assert obs.shape == (MAX_LAYERS * LAYER_FEATURES,) and task.observation_space.contains(obs)
    emb = obs[:LAYER_FEATURES]
    assert emb == pytest.approx([1, 0.5, 0.5, 0.25, 0.5, 2 / 18, 0, 0.5, 0.5])
    synth = obs[LAYER_FEATURES : 2 * LAYER_FEATURES]
    assert (
        synth[0] == 1 and synth[5] == pytest.approx(18 / 34) and synth[6] == pytest.approx(2 / 18)
    )
    assert obs[2 * LAYER_FEATURES :] == pytest.approx(0.0)


def test_actions_scale_by_a_tenth_of_live_replicas_at_least_one(plane):
    task = AutoscalingTask()
    task.observe(view([], layers=LAYERS))
    action = np.full(MAX_LAYERS, HOLD)
    action[0], action[1] = UP, DOWN
    assert task.act(action, plane) == 0
    assert plane.calls == [("scale", "embedder", 3), ("scale", "synth", 18)]


def test_choices_for_absent_layers_are_counted_invalid(plane):
    task = AutoscalingTask()
    task.observe(view([], layers=LAYERS))
    action = np.full(MAX_LAYERS, HOLD)
    action[5] = UP
    assert task.act(action, plane) == 1 and plane.calls == []


def test_heuristic_holds_and_reward_prices_cost_and_violations():
    task = AutoscalingTask(ScalingReward(cost=1.0, slo=0.5))
    assert (task.heuristic(view([], layers=LAYERS)) == HOLD).all()
    before, after = totals(cost_usd=10.0), totals(cost_usd=10.8, slo_violations=4)
    assert task.reward(before, after, 15.0) == pytest.approx(-0.8 - 2.0)

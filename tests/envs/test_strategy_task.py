"""InferenceStrategyTask on hand-built views: the documented observation, the strategy it
configures, and its two rewards."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import RecordingPlane, layer, totals, view

from envs.strategy import (
    DEFAULT,
    MAX_CLASSES,
    QUERY_FEATURES,
    STRATEGIES,
    InferenceStrategyTask,
    StrategyReward,
)
from swarmsim.inference import InferenceStrategy
from swarmsim.view import QueryInfo, QueryOutcome

# Layer 0 is synth-small (agents 1, 2), layer 1 synth-large (agent 3, queue 3, in flight 4).
ROWS = [
    {"id": 1, "layer": 0, "in_flight": 1},
    {"id": 2, "layer": 0, "state": 0},
    {"id": 3, "layer": 1, "queue": 3, "in_flight": 4},
]
LAYERS = {"synth-small": layer("synthesizer"), "synth-large": layer("synthesizer")}
QUERY = QueryInfo(id=9, qclass=1, model="large", input_tokens=1024, output_tokens=128,
                  relevance=np.zeros(0, dtype=np.float32), layer=1)  # fmt: skip


def test_observation_follows_the_documented_layout():
    obs = InferenceStrategyTask().observe(view(ROWS, LAYERS, query=QUERY))
    assert obs.shape == (14,) and obs.dtype == np.float32
    onehot = np.zeros(MAX_CLASSES)
    onehot[1] = 1
    np.testing.assert_array_equal(obs[:MAX_CLASSES], onehot)
    assert obs[MAX_CLASSES:QUERY_FEATURES] == pytest.approx([1.0, 0.5, 0.5])
    # synth-large: one running replica, 4 in flight and 3 waiting per replica
    assert obs[QUERY_FEATURES:] == pytest.approx([1 / 5, 4 / 5, 3 / 4])
    small = QueryInfo(9, 12, "small", 0, 0, np.zeros(0), layer=0)
    obs = InferenceStrategyTask().observe(view(ROWS, LAYERS, query=small))
    assert obs[MAX_CLASSES - 1] == 1 and obs[MAX_CLASSES] == 0  # class 12 folds into slot 7
    assert obs[QUERY_FEATURES:] == pytest.approx([1 / 5, 1 / 2, 0.0])  # agent 2 is starting


def test_action_configures_the_query_with_the_chosen_strategy():
    task, plane = InferenceStrategyTask(), RecordingPlane()
    task.observe(view(ROWS, LAYERS, query=QUERY))
    assert task.act([3], plane) == 0
    assert plane.calls == [("configure", 9, InferenceStrategy(4, "int8"))]


@pytest.mark.parametrize("bad", [-1, len(STRATEGIES), 99])
def test_an_out_of_range_index_is_replaced_by_the_default_and_counted(bad):
    task, plane = InferenceStrategyTask(), RecordingPlane()
    task.observe(view(ROWS, LAYERS, query=QUERY))
    assert task.act([bad], plane) == 1
    assert plane.calls == [("configure", 9, STRATEGIES[DEFAULT])]
    with pytest.raises(ValueError, match="1 entries"):
        task.act([0, 1], plane)


def test_heuristic_is_the_simulator_default():
    task = InferenceStrategyTask()
    assert STRATEGIES[int(task.heuristic(view(ROWS, LAYERS, query=QUERY))[0])] == (
        InferenceStrategy(None, "int4")
    )


def test_rewards_from_totals_and_from_one_outcome():
    task = InferenceStrategyTask(StrategyReward(quality=1.0, latency=0.01, slo=0.1))
    before = totals(quality=1.0, latency_s=10.0, slo_violations=1)
    after = totals(quality=2.9, latency_s=30.0, slo_violations=2)
    assert task.reward(before, after, 5.0) == pytest.approx(1.9 - 0.2 - 0.1)
    done = QueryOutcome(1, 0, "completed", 25.0, 0.97, True)
    assert task.outcome_reward(done) == pytest.approx(0.97 - 0.25 - 0.1)
    failed = QueryOutcome(2, 0, "failed", 3.0, 0.0, True)
    assert task.outcome_reward(failed) == pytest.approx(-0.1)

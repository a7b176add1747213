"""ShardRoutingTask on hand-built views: the documented observation and the route it sends."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import totals, view

from envs.routing import (
    MAX_REPLICAS,
    MAX_SHARDS,
    QUERY_FEATURES,
    SHARD_FEATURES,
    RoutingReward,
    ShardRoutingTask,
)
from swarmsim.view import QueryInfo

# Shard 0: agents 10 (in flight 4) and 11 (queue 4, latency 50 ms); shard 1: agent 12 (dead
# as far as heartbeats tell) and agent 13 (starting). Agent ids are not row numbers.
ROWS = [
    {"id": 10, "shard": 0, "in_flight": 4},
    {"id": 11, "shard": 0, "queue": 4, "latency_s": 0.05},
    {"id": 12, "shard": 1, "healthy": False},
    {"id": 13, "shard": 1, "state": 0},
]
QUERY = QueryInfo(id=7, qclass=1, model="large", input_tokens=1024, output_tokens=128,
                  relevance=np.array([0.6, -0.2], dtype=np.float32))  # fmt: skip


def routing_view():
    return view(ROWS, n_shards=2, query=QUERY)


def block(obs: np.ndarray, shard: int) -> np.ndarray:
    return obs[shard * SHARD_FEATURES : (shard + 1) * SHARD_FEATURES]


def test_observation_follows_the_documented_layout():
    task = ShardRoutingTask()
    obs = task.observe(routing_view())
    assert obs.shape == task.observation_space.shape == (MAX_SHARDS * SHARD_FEATURES + 3,)
    assert obs.dtype == np.float32 and task.observation_space.contains(obs)
    s0, s1 = block(obs, 0), block(obs, 1)
    assert s0[:2] == pytest.approx([1.0, 0.8])  # exists, (0.6 + 1) / 2
    assert s0[2:7] == pytest.approx([1, 1, 0.0, 0.5, 0.0])  # agent 10: in flight 4/(4+4)
    assert s0[7:12] == pytest.approx([1, 1, 0.5, 0.0, 0.5])  # agent 11: queue 4, 50 ms
    assert s0[12:] == pytest.approx(0.0)  # empty slots
    assert s1[:2] == pytest.approx([1.0, 0.4])
    assert s1[2:4] == pytest.approx([1, 0]) and s1[7:9] == pytest.approx([1, 0])  # not accepting
    assert obs[2 * SHARD_FEATURES : -QUERY_FEATURES] == pytest.approx(0.0)  # absent shards
    assert obs[-QUERY_FEATURES:] == pytest.approx([1.0, 0.5, 0.5])


def test_masks_allow_skip_everywhere_and_only_accepting_replicas():
    task = ShardRoutingTask()
    task.observe(routing_view())
    mask = task.action_masks(task.view).reshape(MAX_SHARDS, MAX_REPLICAS + 1)
    assert mask[:, 0].all()
    assert mask[0, 1:3].all() and not mask[0, 3:].any()
    assert not mask[1, 1:].any()  # agent 12 unhealthy, 13 starting
    assert not mask[2:, 1:].any()


def test_action_becomes_the_route_of_the_viewed_query(plane):
    task = ShardRoutingTask()
    task.observe(routing_view())
    action = np.zeros(MAX_SHARDS, dtype=int)
    action[0] = 2  # shard 0 on slot 1 = agent 11
    assert task.act(action, plane) == 0
    assert plane.calls == [("route", 7, ((0, 11),))]


def test_invalid_choices_are_replaced_never_executed(plane):
    task = ShardRoutingTask()
    task.observe(routing_view())
    action = np.zeros(MAX_SHARDS, dtype=int)
    action[0] = 5  # empty slot of shard 0 -> its least-loaded accepting replica (agent 11)
    action[1] = 1  # shard 1 has no accepting replica -> dropped from the plan
    action[9] = 3  # absent shard -> dropped
    assert task.act(action, plane) == 3
    assert plane.calls == [("route", 7, ((0, 11),))]


def test_a_plan_searching_nothing_searches_the_most_relevant_servable_shard(plane):
    task = ShardRoutingTask()
    task.observe(routing_view())
    assert task.act(np.zeros(MAX_SHARDS, dtype=int), plane) == 1
    assert plane.calls == [("route", 7, ((0, 11),))]


def test_heuristic_searches_every_shard_on_its_least_loaded_replica():
    task = ShardRoutingTask()
    action = task.heuristic(routing_view())
    assert action[0] == 2 and action[1] == 0 and not action[2:].any()


def test_wrong_action_shape_is_refused(plane):
    task = ShardRoutingTask()
    task.observe(routing_view())
    with pytest.raises(ValueError, match="16 entries, got 3"):
        task.act([1, 2, 3], plane)


def test_reward_trades_recall_against_retrieval_time_and_slo():
    task = ShardRoutingTask(RoutingReward(recall=1.0, latency=10.0, slo=2.0))
    before = totals(recall=3.0, stage_s={"retriever": 1.0, "synthesizer": 5.0})
    after = totals(recall=3.9, stage_s={"retriever": 1.02, "synthesizer": 9.0}, slo_violations=1)
    assert task.reward(before, after, 0.1) == pytest.approx(0.9 - 0.2 - 2.0)

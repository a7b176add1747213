"""Routing heuristics on observations encoded from hand-built views by the real Task."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import RecordingPlane, view

from controllers.registry import controller_names, make_controller
from controllers.routing import decode
from envs.routing import MAX_REPLICAS, MAX_SHARDS, ShardRoutingTask
from swarmsim.view import QueryInfo

TASK = "shard-routing"
# Shard 0: slots 0-2 accept (in flight 3, 1, 1; queues 0, 5, 2), slot 3 is unhealthy.
# Shard 1: two replicas equal in flight, slot 1 has the shorter queue. Shard 2: one replica.
# Shard 3: its only replica is starting (not accepting). Shard 4: no replica at all.
ROWS = [
    {"id": 10, "shard": 0, "in_flight": 3},
    {"id": 11, "shard": 0, "in_flight": 1, "queue": 5},
    {"id": 12, "shard": 0, "in_flight": 1, "queue": 2},
    {"id": 13, "shard": 0, "healthy": False},
    {"id": 20, "shard": 1, "in_flight": 2, "queue": 3},
    {"id": 21, "shard": 1, "in_flight": 2, "queue": 1},
    {"id": 30, "shard": 2, "in_flight": 5},
    {"id": 40, "shard": 3, "state": 0},
]
SERVABLE = {0: {1, 2, 3}, 1: {1, 2}, 2: {1}}  # shard -> accepting choices (slot + 1)


def query(relevance) -> QueryInfo:
    rel = np.asarray(relevance, dtype=np.float32)
    return QueryInfo(id=1, qclass=0, model="small", input_tokens=100, output_tokens=10,
                     relevance=rel)  # fmt: skip


def observe(rows=ROWS, relevance=(0.6, 0.3, 0.1, 0.9, -0.5)) -> tuple[ShardRoutingTask, np.ndarray]:
    task = ShardRoutingTask()
    return task, task.observe(view(rows, n_shards=len(relevance), query=query(relevance)))


def expected(choices: dict[int, int]) -> list[int]:
    action = [0] * MAX_SHARDS
    for shard, choice in choices.items():
        action[shard] = choice
    return action


def test_decode_recovers_counts_and_cosines():
    d = decode(observe()[1])
    assert d.in_flight[0, :4].tolist() == [3, 1, 1, 0] and d.queue[1, :2].tolist() == [3, 1]
    assert d.accepting[0, :4].tolist() == [True, True, True, False]
    assert d.relevance[:5] == pytest.approx([0.6, 0.3, 0.1, 0.9, -0.5], abs=1e-6)
    assert d.present[:5].all() and not d.present[5:].any()


def test_least_outstanding_breaks_ties_by_queue_and_skips_unservable_shards():
    action = make_controller(TASK, "least-outstanding").act(observe()[1])
    assert action.dtype == np.int64 and action.tolist() == expected({0: 3, 1: 2, 2: 1})


def test_search_all_shards_takes_the_first_accepting_replica_blind_to_load():
    action = make_controller(TASK, "search-all-shards").act(observe()[1])
    assert action.tolist() == expected({0: 1, 1: 1, 2: 1})


def test_round_robin_rotates_per_shard_and_restarts_on_reset():
    ctl, obs = make_controller(TASK, "round-robin"), observe()[1]
    picks = [ctl.act(obs)[:5].tolist() for _ in range(4)]
    assert picks == [[1, 1, 1, 0, 0], [2, 2, 1, 0, 0], [3, 1, 1, 0, 0], [1, 2, 1, 0, 0]]
    ctl.reset()
    assert ctl.act(obs)[:3].tolist() == [1, 1, 1]


def test_round_robin_skips_a_replica_that_stopped_accepting():
    ctl = make_controller(TASK, "round-robin")
    assert ctl.act(observe()[1])[0] == 1
    rows = [{**r, "healthy": False} if r["id"] == 11 else r for r in ROWS]
    assert ctl.act(observe(rows)[1])[0] == 3  # slot 1 is out: slot 2 follows slot 0


def test_power_of_two_serves_the_lighter_of_the_two_sampled():
    rows = [{"id": i, "shard": 0, "in_flight": f} for i, f in enumerate((0, 5, 9))]
    rows += ROWS[4:7]  # shards 1 and 2 as above
    ctl, obs = make_controller(TASK, "power-of-two", seed=3), observe(rows)[1]
    picks = np.array([ctl.act(obs)[:3] for _ in range(600)])
    first = np.bincount(picks[:, 0], minlength=4)
    assert first[3] == 0  # the heaviest loses to whichever replica it is paired with
    assert first[1] / 600 == pytest.approx(2 / 3, abs=0.06)  # the lightest wins 2 pairs of 3
    assert (picks[:, 1] == 2).all()  # both sampled: equal in flight, shorter queue wins
    assert (picks[:, 2] == 1).all()  # a single replica is used as is


@pytest.mark.parametrize("name", ["random", "power-of-two"])
def test_randomised_routers_are_deterministic_given_the_seed(name):
    obs = observe()[1]
    a, b, c = (make_controller(TASK, name, seed=s) for s in (7, 7, 8))
    runs = [np.array([ctl.act(obs) for _ in range(50)]) for ctl in (a, b, c)]
    assert (runs[0] == runs[1]).all() and not (runs[0] == runs[2]).all()


def test_random_covers_every_accepting_replica_and_nothing_else():
    ctl, obs = make_controller(TASK, "random", seed=0), observe()[1]
    picks = np.array([ctl.act(obs) for _ in range(200)])
    for shard, choices in SERVABLE.items():
        assert set(picks[:, shard].tolist()) == choices
    assert not picks[:, 3:].any()


@pytest.mark.parametrize(
    ("p", "searched"),
    [(0.5, [1]), (0.75, [1, 0]), (0.85, [1, 0, 2]), (1.0, [1, 0, 2, 3])],
)
def test_relevance_threshold_searches_the_top_shards_covering_p(p, searched):
    rows = [{"id": s, "shard": s, "in_flight": 0} for s in range(4)]
    obs = observe(rows, relevance=(0.2, 0.6, 0.1, 0.1))[1]  # mass 1.0: cum 0.6, 0.8, 0.9, 1
    action = make_controller(TASK, "relevance-threshold", p=p).act(obs)
    assert sorted(np.flatnonzero(action).tolist()) == sorted(searched)
    assert (action[searched] == 1).all()


def test_relevance_threshold_ranks_only_servable_shards_and_uses_jsq_replicas():
    # shard 3 (0.9) cannot be served; of the rest, 0.6 + 0.3 covers 0.9 of 1.0 (shard 2: 0.1)
    action = make_controller(TASK, "relevance-threshold", p=0.85).act(observe()[1])
    assert action.tolist() == expected({0: 3, 1: 2})


def test_relevance_threshold_searches_one_shard_when_none_is_positively_relevant():
    action = make_controller(TASK, "relevance-threshold").act(
        observe(relevance=(-0.4, -0.1, -0.9, 0.9, 0.9))[1]
    )
    assert action.tolist() == expected({1: 2})
    with pytest.raises(ValueError, match="p must be in"):
        make_controller(TASK, "relevance-threshold", p=0.0)


@pytest.mark.parametrize("name", sorted(controller_names()[TASK]))
def test_every_action_is_allowed_by_the_mask_and_applies_without_fallback(name):
    kwargs = {"seed": 1} if name in ("random", "power-of-two") else {}
    if name == "faulty":  # fault injection: before it fails it is the default heuristic
        kwargs = {"after": 10**9}
    ctl = make_controller(TASK, name, **kwargs)
    assert ctl.task == TASK
    task, obs = observe()
    mask = task.action_masks(task.view).reshape(MAX_SHARDS, MAX_REPLICAS + 1)
    for _ in range(20):
        action = ctl.act(obs)
        assert task.action_space.contains(action)
        assert mask[np.arange(MAX_SHARDS), action].all()
        assert task.act(action, RecordingPlane()) == 0

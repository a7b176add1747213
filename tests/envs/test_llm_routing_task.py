"""LlmRoutingTask on hand-built views (the documented observation, the replica it places on,
its reward) and the simulator's placement decision behind it (validation, cache peeking)."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import RecordingPlane, layer, totals, view

from envs.attach import attach
from envs.llm_routing import LlmRoutingTask, mask_from_obs
from swarmsim import Simulation, load_scenario
from swarmsim.view import NO_AGENT, QueryInfo

# Layer 0 (synth) holds agents 4, 2, 7 (rows out of id order); layer 1 another synthesizer.
ROWS = [
    {"id": 4, "layer": 0, "in_flight": 4, "kv_util": 0.25},
    {"id": 2, "layer": 0, "in_flight": 1, "state": 0, "latency_s": 10.0},  # starting
    {"id": 7, "layer": 0, "in_flight": 2, "latency_s": 2.0},
    {"id": 9, "layer": 1},
]
LAYERS = {"synth": layer("synthesizer"), "other": layer("synthesizer")}
QUERY = QueryInfo(id=5, qclass=0, model="small", input_tokens=1024, output_tokens=128,
                  relevance=np.zeros(0, dtype=np.float32), layer=0, blocks=64,
                  overlap=np.array([48, 64, 0, 64]),
                  pending=np.array([64, 64, 32, 64]))  # fmt: skip


def test_observation_follows_the_documented_layout():
    obs = LlmRoutingTask().observe(view(ROWS, LAYERS, query=QUERY))
    assert obs.shape == (130,) and obs.dtype == np.float32
    # slots by agent id: 2, 4, 7; agent 9 is in another layer. Tokens to prefill:
    # 1024 x (1 - pending overlap), squashed at 2048; recent latency squashed at 10 s
    assert obs[0:8] == pytest.approx([1, 0, 1 / 5, 1.0, 0.0, 0.0, 0.5, 1.0])  # agent 2
    assert obs[8:16] == pytest.approx([1, 1, 4 / 8, 0.75, 0.25, 0.0, 0.0, 1.0])  # 48 of 64
    assert obs[16:24] == pytest.approx([1, 1, 2 / 6, 0.0, 0.0, 512 / 2560, 1 / 6, 0.5])
    assert not obs[24:128].any()
    assert obs[128:] == pytest.approx([0.5, 0.5])


def test_action_places_on_the_slot_and_invalid_slots_fall_back_to_least_outstanding():
    task, plane = LlmRoutingTask(), RecordingPlane()
    task.observe(view(ROWS, LAYERS, query=QUERY))
    assert task.act([1], plane) == 0
    for bad in (0, 3, 15):  # starting, empty, empty
        assert task.act([bad], plane) == 1
    assert plane.calls == [("place", 5, 4)] + [("place", 5, 7)] * 3
    assert task.heuristic(task.view).tolist() == [2]
    assert task.action_masks(task.view)[:4].tolist() == [False, True, True, False]
    assert (mask_from_obs(task.encode(task.view)) == task.action_masks(task.view)).all()


def test_with_no_accepting_replica_the_layers_rule_places_the_query():
    task, plane = LlmRoutingTask(), RecordingPlane()
    task.observe(view([{"id": 1, "state": 0}], LAYERS, query=QUERY))
    assert task.act([0], plane) == 0
    assert plane.calls == [("place", 5, NO_AGENT)]
    assert task.action_masks(task.view)[:2].tolist() == [True, False]
    assert (mask_from_obs(task.encode(task.view)) == task.action_masks(task.view)).all()


def test_reward_charges_synthesizer_time_and_slo_violations():
    before = totals(stage_s={"synthesizer": 10.0}, slo_violations=1)
    after = totals(stage_s={"synthesizer": 14.0, "retriever": 99.0}, slo_violations=3)
    assert LlmRoutingTask().reward(before, after, 1.0) == pytest.approx(-0.1 * 4.0 - 2.0)


def test_place_validates_and_the_views_overlap_leaves_the_caches_untouched():
    sim = Simulation(load_scenario("prefix-cache", ["duration_s=60", "warmup_s=0"]), seed=1)
    waiting: list = []
    sim.on_place = waiting.append
    sim.start()
    while not waiting:
        sim.env.step()
    query = waiting.pop()
    caches = [a.kv for a in sim.layer("synth").agents]
    counts = [(c.hits, c.lookups, list(c.blocks)) for c in caches]
    seen = sim.view(query, roles=("synthesizer",))
    assert seen.query.blocks == len(query.blocks) > 0
    assert seen.query.overlap.tolist() == [0, 0, 0, 0]  # cold caches
    assert [(c.hits, c.lookups, list(c.blocks)) for c in caches] == counts
    with pytest.raises(ValueError, match="not an accepting replica"):
        sim.place(query.id, 99)
    with pytest.raises(ValueError, match="not waiting"):
        sim.place(query.id + 1000, 0)
    agent = sim.layer("synth").agents[2]
    sim.place(query.id, agent.id)
    assert agent.outstanding == 1 and query.id not in sim.coordinator.placing


def test_a_placement_controller_runs_a_whole_scenario():
    from controllers.registry import make_controller

    sim = Simulation(load_scenario("prefix-cache", ["duration_s=120"]), seed=2)
    attach(sim, LlmRoutingTask(), make_controller("llm-routing", "kv-overlap"))
    summary = sim.run()
    assert summary["queries"]["completed"] > 100
    assert summary["kv_cache"]["hit_rate"] > 0

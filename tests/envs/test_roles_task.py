"""RoleAssignmentTask on hand-built views: counts per node class and the assign calls."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import RecordingPlane, layer, totals, view

from envs.roles import LAYER_FEATURES, MAX_GROUPS, MAX_LAYERS, RoleAssignmentTask, RoleReward

LAYERS = {
    "embedder": layer("embedder", queue=8, in_flight=8, throughput=10.0, utilisation=0.5),
    "synth-small": layer("synthesizer"),
    "synth-large": layer("synthesizer"),
}
# nodes 0 and 1 are class "gpu-a", node 2 class "gpu-b"
ROWS = [
    {"id": 0, "node": 0, "layer": 1, "in_flight": 3},
    {"id": 1, "node": 1, "layer": 1, "in_flight": 1},
    {"id": 2, "node": 2, "layer": 2},
    {"id": 3, "node": 2, "layer": 0},
    {"id": 4, "node": 2, "layer": 1, "state": 0},  # starting: counted, not movable
]


def roles_view():
    return view(ROWS, layers=LAYERS, node_group=(0, 0, 1), group_names=("gpu-a", "gpu-b"))


def test_observation_counts_agents_per_node_class_and_layer():
    task = RoleAssignmentTask()
    obs = task.observe(roles_view())
    assert task.observation_space.contains(obs)
    assert obs[:LAYER_FEATURES] == pytest.approx([1, 0.5, 0.5, 0.5, 0.0, 1.0])
    start = MAX_LAYERS * LAYER_FEATURES
    groups = obs[start : start + MAX_GROUPS * (1 + MAX_LAYERS)].reshape(MAX_GROUPS, 1 + MAX_LAYERS)
    assert groups[:2, 0] == pytest.approx([1, 1]) and not groups[2:].any()
    assert groups[0, 1:4] == pytest.approx([0, 2 / 6, 0])  # gpu-a: two synth-small
    assert groups[1, 1:4] == pytest.approx([1 / 5, 1 / 5, 1 / 5])


def test_a_move_picks_the_least_busy_running_agent_of_the_class(plane):
    task = RoleAssignmentTask()
    task.observe(roles_view())
    action = np.zeros(2 * MAX_GROUPS, dtype=int)
    action[0:2] = [1 + 1, 2]  # gpu-a: synth-small -> synth-large
    action[2:4] = [1 + 1, 0]  # gpu-b: synth-small -> embedder, but its only one is starting
    assert task.act(action, plane) == 1
    assert plane.calls == [("assign", 1, "synth-large")]


def test_moves_the_plane_refuses_are_counted_invalid():
    task, plane = RoleAssignmentTask(), RecordingPlane(refuse_assign=True)
    task.observe(roles_view())
    action = np.zeros(2 * MAX_GROUPS, dtype=int)
    action[0:2] = [2, 2]
    action[4:6] = [1, 1]  # absent class
    assert task.act(action, plane) == 2 and plane.calls == []


def test_heuristic_moves_nothing_and_reward_weighs_latency_slo_and_loading():
    task = RoleAssignmentTask(RoleReward(latency=1.0, slo=5.0, switching=0.1))
    assert not task.heuristic(roles_view()).any()
    before = totals(completed=10, latency_s=20.0, load_s=0.0)
    after = totals(completed=20, latency_s=50.0, slo_violations=2, load_s=30.0)
    assert task.reward(before, after, 15.0) == pytest.approx(-3.0 - 5.0 * 0.2 - 0.1 * 2.0)


def test_observation_ends_with_each_classes_share_of_gpu_agents_sharing_with_training():
    """gpu-a: one of its two GPU agents shares with a training job; gpu-b: none of three (the
    CPU retriever on it is not counted)."""
    rows = [{**r, "training": r["id"] == 1} for r in ROWS]
    rows.append({"id": 5, "node": 2, "layer": 3})
    layers = {**LAYERS, "retriever": layer("retriever", on_gpu=False)}
    task = RoleAssignmentTask()
    obs = task.observe(
        view(rows, layers=layers, node_group=(0, 0, 1), group_names=("gpu-a", "gpu-b"))
    )
    assert task.observation_space.contains(obs)
    share = obs[MAX_LAYERS * LAYER_FEATURES + MAX_GROUPS * (1 + MAX_LAYERS) :]
    assert share.tolist() == [0.5] + [0.0] * (MAX_GROUPS - 1)

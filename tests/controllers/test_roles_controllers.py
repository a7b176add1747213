"""Role heuristics on observations encoded from hand-built views by the real Task."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import RecordingPlane, layer, view

from controllers.registry import make_controller
from controllers.roles import decode
from envs.roles import MAX_GROUPS, RoleAssignmentTask

TASK = "role-assignment"
NAMES = ("embedder", "retriever", "synth")  # layers 0, 1, 2
# Class "gpu" (nodes 0, 1): 4 embedders, 8 synthesizers; class "cpu" (node 2): 4 embedders,
# 4 retrievers. Agent shares: embedder 0.4, retriever 0.2, synth 0.4.
SPLIT = {(0, 0): 4, (1, 2): 8, (2, 0): 4, (2, 1): 4}  # (node, layer) -> agents


def rows(split: dict[tuple[int, int], int]) -> list[dict]:
    out = []
    for (node, lay), n in split.items():
        out += [{"id": len(out) + i, "node": node, "layer": lay} for i in range(n)]
    return out


def observe(backlog, split=SPLIT, names=NAMES, node_group=(0, 0, 1)):
    layers = {name: layer(name, queue=b) for name, b in zip(names, backlog, strict=True)}
    groups = ("gpu", "cpu")[: max(node_group) + 1]
    task = RoleAssignmentTask()
    obs = task.observe(view(rows(split), layers=layers, node_group=node_group,
                            group_names=groups))  # fmt: skip
    return task, obs


def moves(action: np.ndarray) -> list[tuple[int, int]]:
    return [tuple(pair) for pair in action.reshape(MAX_GROUPS, 2).tolist()]


def test_decode_recovers_backlog_and_agents_per_class():
    d = decode(observe((0, 20, 60))[1])
    assert d.backlog[:3].tolist() == [0, 20, 60] and d.layers[:3].all() and not d.layers[3:].any()
    assert d.agents[:2, :3].tolist() == [[4, 0, 8], [4, 4, 0]] and d.classes.sum() == 2


def test_static_never_moves():
    ctl = make_controller(TASK, "static")
    action = ctl.act(observe((0, 20, 60))[1])
    assert ctl.task == TASK and action.dtype == np.int64 and not action.any()
    assert action.shape == (2 * MAX_GROUPS,)


def test_proportional_moves_from_over_to_under_provisioned_on_each_class():
    # backlog shares 0, 0.25, 0.75: embedders are over-provisioned everywhere; synth is the
    # most starved but lives only on gpu, so cpu gives its embedder to the retrievers.
    task, obs = observe((0, 20, 60))
    ctl = make_controller(TASK, "proportional")
    action = ctl.act(obs)
    assert moves(action)[:3] == [(1, 2), (1, 1), (0, 0)]
    plane = RecordingPlane()
    assert task.act(action, plane) == 0
    assert [call[2] for call in plane.calls] == ["synth", "retriever"]


@pytest.mark.parametrize(("deadband", "moved"), [(0.05, True), (0.25, False)])
def test_proportional_holds_inside_the_deadband(deadband, moved):
    # backlog shares 0.3, 0.2, 0.5: gpu's gap embedder - synth is 0.1 - (-0.1) = 0.2
    ctl = make_controller(TASK, "proportional", deadband=deadband)
    action = ctl.act(observe((6, 4, 10))[1])
    assert moves(action)[0] == ((1, 2) if moved else (0, 0))
    assert moves(action)[1] == (0, 0)  # cpu: 0.05 after gpu's move, within 2 / agents


def test_proportional_holds_when_shares_match_or_nothing_is_queued():
    ctl = make_controller(TASK, "proportional", deadband=0.0)
    assert not ctl.act(observe((8, 4, 8))[1]).any()
    assert not ctl.act(observe((0, 0, 0))[1]).any()


def test_proportional_classes_do_not_all_chase_the_same_gap():
    # two classes of 5 + 5; backlog shares 0.43 / 0.57: gap 0.14, one move leaves 0.04 and a
    # second (on the other class) would overshoot to -0.06
    split = {(0, 0): 5, (0, 1): 5, (1, 0): 5, (1, 1): 5}
    obs = observe((43, 57), split=split, names=("x", "y"), node_group=(0, 1))[1]
    action = make_controller(TASK, "proportional", deadband=0.0).act(obs)
    assert moves(action)[:2] == [(1, 1), (0, 0)]


def test_proportional_never_takes_a_layers_last_agent():
    # one class; layer a: 1 agent, no backlog (gap 0.05); b: 9 agents, 42% (gap 0.03);
    # c: 10 agents, 58% (gap -0.08). a is the most over-provisioned but keeps its agent.
    split = {(0, 0): 1, (0, 1): 9, (0, 2): 10}
    obs = observe((0, 42, 58), split=split, names=("a", "b", "c"), node_group=(0,))[1]
    assert moves(make_controller(TASK, "proportional").act(obs))[0] == (2, 2)


def test_proportional_rejects_a_deadband_outside_0_1():
    with pytest.raises(ValueError, match="deadband"):
        make_controller(TASK, "proportional", deadband=1.5)


def test_proportional_moves_only_between_layers_of_one_device_kind():
    """The CPU retrievers look most over-provisioned (no backlog) but cannot become LLM
    agents; the donor is the GPU layer with the most slack, the recipient the starved one."""
    from fakes import layer, view

    from controllers.registry import make_controller
    from envs.roles import RoleAssignmentTask

    layers = {
        "retriever": layer("retriever", on_gpu=False),
        "synth-small": layer("synthesizer", queue=1),
        "synth-large": layer("synthesizer", queue=40, in_flight=8),
    }
    rows = [{"id": i, "layer": 0} for i in range(8)]
    rows += [{"id": 8 + i, "layer": 1} for i in range(4)]
    rows += [{"id": 12 + i, "layer": 2} for i in range(4)]
    task = RoleAssignmentTask()
    action = make_controller("role-assignment", "proportional").act(
        task.observe(view(rows, layers))
    )
    assert list(action[:2]) == [1 + 1, 2]  # synth-small -> synth-large, not retriever -> anything

"""Node supervisors (``live.supervisor``): NODE_BEAT bounded and validated at the coordinator,
the same Task observations and agent states with and without supervisors, a killed local
worker restarted by its supervisor, and no process left behind."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from procs import gone

from controllers.learned import LearnedController
from envs.registry import make_task
from live import sockets
from live.config import LiveConfig
from live.errors import ProtocolError
from live.load import LoadThread
from live.nodebeat import MAX_NODE_ENTRIES, node_beat
from live.protocol import CONTROL, Message
from live.runner import LiveRun, Swarm, plan_workers
from live.worker import WorkerSpec
from swarmsim.query import AgentState

ROOT = Path(__file__).resolve().parents[2]
ROUTING_POLICY = ROOT / "results" / "training" / "routing-escape-velocity" / "policy"
BEATS = ("failures.heartbeat_interval_s=0.2", "failures.heartbeat_liveness=3", "rate=4")
TASKS = ("shard-routing", "autoscaling", "role-assignment")


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"entries": {"id": 0}},
        {"entries": [{"id": 0}] * (MAX_NODE_ENTRIES + 1)},
        {"entries": [{"queue": 1}]},
        {"entries": [{"id": True}]},
        {"down": ["w1"]},
        {"down": list(range(MAX_NODE_ENTRIES + 1))},
    ],
)
def test_a_malformed_or_oversized_node_beat_is_refused(payload):
    with pytest.raises(ProtocolError) as err:
        node_beat(payload)
    assert err.value.reason == "payload"


def _dealer(ctx: zmq.Context, coord, ident: bytes) -> zmq.Socket:
    return sockets.dealer(ctx, coord.worker_address, ident)


def _step_until(coord, done, limit_s: float = 3.0) -> None:
    end = time.monotonic() + limit_s
    while not done() and time.monotonic() < end:
        coord.step(0.02)


def test_node_beats_count_as_heartbeats_and_bad_ones_get_an_error(offline, tmp_path):
    coord = offline
    for i, (layer, device, node, shard) in enumerate(plan_workers(coord.scenario, None)[:2]):
        role = coord.scenario.layers[layer].role
        spec = WorkerSpec(i, coord.worker_address, layer, role, device, str(tmp_path), shard)
        coord.roster.launch(spec, node)
    ctx = zmq.Context()
    try:
        n0, n1 = _dealer(ctx, coord, b"n0"), _dealer(ctx, coord, b"n1")
        agent = coord.agents[0]
        entry = {"id": 0, "layer": agent.layer, "role": agent.role, "shard": agent.shard,
                 "progress": 1, "queue": 2}  # fmt: skip
        sockets.send(n0, Message(CONTROL, "NODE_BEAT", "", "n0", {"entries": [entry]}))
        _step_until(coord, lambda: agent.state == AgentState.RUNNING)
        assert agent.state == AgentState.RUNNING and agent.queue == 2
        assert coord.nodes.covers(agent, coord.now())
        # another node may not speak for n0's worker: counted, the agent unchanged
        sockets.send(n1, Message(CONTROL, "NODE_BEAT", "", "n1",
                                 {"entries": [{**entry, "progress": 2, "queue": 7}]}))  # fmt: skip
        _step_until(coord, lambda: coord.protocol_errors.get("node_entry"))
        assert coord.protocol_errors["node_entry"] == 1 and agent.queue == 2
        # a malformed one: an ERROR reply, and the coordinator goes on
        bad = {"entries": [{"id": 0}] * (MAX_NODE_ENTRIES + 1)}
        sockets.send(n0, Message(CONTROL, "NODE_BEAT", "", "n0", bad))
        _step_until(coord, lambda: n0.poll(0))
        reply = sockets.recv(n0, routed=False)[1]
        assert reply.action == "ERROR" and str(MAX_NODE_ENTRIES) in reply.payload["error"]
        # its down list declares the worker dead at once
        sockets.send(n0, Message(CONTROL, "NODE_BEAT", "", "n0", {"down": [0]}))
        _step_until(coord, lambda: agent.state == AgentState.DEAD)
        assert agent.state == AgentState.DEAD and coord.counts["deaths"] == 1
    finally:
        ctx.destroy(linger=0)


def _observations(swarm: Swarm) -> tuple[dict[str, tuple], list[tuple]]:
    """Per Task, the observation's shape (the routing one from a live routing decision), and
    every agent's (id, node, layer, shard, state, healthy) as the ClusterView shows it."""
    coord, seen = swarm.coord, []

    class Recording:
        def __init__(self) -> None:
            self.policy = LearnedController(ROUTING_POLICY)

        def act(self, obs: np.ndarray) -> np.ndarray:
            seen.append(obs.copy())
            return self.policy.act(obs)

    coord.controls.attach(make_task("shard-routing"), Recording(), "artifact")
    load = LoadThread(swarm, 1.5, drain_s=10.0)
    swarm.serve_until(lambda: not load.is_alive() and not coord.active, 20)
    view = coord.view()
    shapes = {"shard-routing": seen[0].shape}
    for name in TASKS[1:]:
        task = make_task(name)
        obs = task.observe(view)
        assert task.observation_space.contains(obs), name
        shapes[name] = obs.shape
    assert make_task("shard-routing").observation_space.contains(seen[0])
    a = view.agents
    cols = (a.id, a.node, a.layer, a.shard, a.state, a.healthy)
    states = sorted(zip(*(c.tolist() for c in cols), strict=True))
    return shapes, states


def test_same_observations_with_supervisors_and_a_killed_worker_is_restarted():
    flat_run = LiveRun("homelab", overrides=BEATS, workers=8, config=LiveConfig(time_scale=0.05))
    with Swarm(flat_run) as flat:
        flat_obs = _observations(flat)
    sup = LiveConfig(time_scale=0.05, supervisors=True)
    with Swarm(LiveRun("homelab", overrides=BEATS, workers=8, config=sup)) as swarm:
        coord = swarm.coord
        assert _observations(swarm) == flat_obs
        assert len(coord.nodes.nodes) == len(coord.scenario.nodes)  # one supervisor per node
        assert sorted(coord.nodes.owner) == sorted(coord.agents)
        sent = coord.counts["sent"]
        swarm.serve_until(lambda: False, 1.0)  # 5 beats: one per node each, not per worker
        assert coord.counts["sent"] - sent <= 6 * len(coord.nodes.nodes)
        victim = coord.agents[0]
        old = swarm.launcher.pid(0)
        swarm.launcher.kill(0)
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 3.0)
        assert victim.state == AgentState.DEAD  # told by its supervisor, within a beat
        swarm.serve_until(lambda: victim.state == AgentState.RUNNING, 20.0)
        assert victim.state == AgentState.RUNNING and swarm.launcher.pid(0) != old
        pids = [p.pid for p in swarm.launcher.procs] + [a.pid for a in coord.agents.values()]
    assert gone(old) and all(gone(p) for p in pids)


def test_emulated_workers_register_heartbeat_and_serve():
    cfg = LiveConfig(time_scale=0.05, supervisors=True, emulated_hosts=1)
    with Swarm(LiveRun("homelab", overrides=BEATS, workers=8, config=cfg)) as swarm:
        coord = swarm.coord
        load = LoadThread(swarm, 1.5, drain_s=10.0)
        swarm.serve_until(lambda: not load.is_alive() and not coord.active, 20)
        assert load.stats.answers.get("completed", 0) == load.stats.sent >= 3
        assert coord.roster.running() == 8 and coord.counts["deaths"] == 0
        assert all(a.progress >= 3 for a in coord.agents.values())  # NODE_BEATs kept coming
        host = swarm.launcher.procs[0].pid
    assert gone(host)

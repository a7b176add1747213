"""The live swarm end to end on loopback: real processes, real ZeroMQ sockets, real faiss.

Each test starts its own coordinator and worker processes (homelab, 7-8 workers, emulated
LLM stages at a twentieth of the profile's time) and checks that all of them are gone after.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import zmq
from procs import gone

from controllers.learned import LearnedController
from envs.registry import make_task
from live import sockets
from live.config import LiveConfig
from live.load import drive, queries
from live.protocol import CONTROL, Message
from live.runner import LiveRun, Swarm, run_live
from swarmsim.metrics import check_conservation
from swarmsim.query import AgentState

ROOT = Path(__file__).resolve().parents[2]
ROUTING_POLICY = ROOT / "results" / "training" / "routing-escape-velocity" / "policy"
FAST = LiveConfig(time_scale=0.05)
HEARTBEAT_S, LIVENESS = 0.2, 3
BEATS = (f"failures.heartbeat_interval_s={HEARTBEAT_S}", f"failures.heartbeat_liveness={LIVENESS}")
SUMMARY_KEYS = {
    "queries",
    "latency_s",
    "slo",
    "recall_at_k",
    "gpu_hours",
    "wall_s",
    "cost_usd",
    "throughput_qps",
    "outcomes",
    "replicas",
    "utilisation",
    "messages",
    "failures",
}


def _pids(swarm: Swarm) -> list[int]:
    return [p.pid for p in swarm.launcher.procs.values()]


def _load(swarm: Swarm, duration: float) -> threading.Thread:
    """Drive the scenario's workload from a client thread (its own socket and context)."""
    scenario, coord = swarm.scenario, swarm.coord
    arrivals = queries(scenario, 0, len(coord.files.queries))
    result = {}

    def run() -> None:
        result["stats"] = drive(coord.client_address, arrivals, duration, drain_s=15)

    thread = threading.Thread(target=run, daemon=True)
    thread.result = result
    thread.start()
    return thread


def test_queries_flow_through_every_role_and_every_process_stops(tmp_path):
    record = tmp_path / "live.jsonl"
    run = LiveRun(
        "homelab", overrides=("rate=4", *BEATS), duration_s=5, workers=8, config=FAST, record=record
    )
    seen: list[int] = []
    original = Swarm.close

    def spy_close(self):
        seen.extend(_pids(self))
        original(self)

    Swarm.close = spy_close
    try:
        summary = run_live(run)
    finally:
        Swarm.close = original
    assert set(summary) >= SUMMARY_KEYS
    check_conservation(summary)
    q = summary["queries"]
    assert q["submitted"] >= 10 and q["completed"] == q["submitted"] and q["in_flight"] == 0
    assert summary["recall_at_k"] == pytest.approx(1.0)  # every shard searched, exact search
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    layers = {st["layer"] for row in rows if "event" not in row for st in row["stages"]}
    assert layers == {"embedder", "retriever", "synth-small", "synth-large", "evaluator"}
    assert sum(row.get("event") == "startup" for row in rows) == 8  # one per worker
    assert len(seen) == 8 and all(gone(pid) for pid in seen)


def test_kill_9_of_a_retriever_loses_no_query_and_is_ejected_in_time():
    with Swarm(LiveRun("homelab", overrides=("rate=4", *BEATS), workers=8, config=FAST)) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        client = _load(swarm, duration=4.0)
        swarm.serve_until(lambda: coord.metrics.submitted >= 5, 10)
        victim = next(a for a in coord.agents.values() if a.role == "retriever")
        killed_at = coord.now()
        os.kill(swarm.launcher.pid(victim.id), signal.SIGKILL)
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 5)
        swarm.serve_until(lambda: not client.is_alive() and not coord.active, 30)
        stats = client.result["stats"]
    assert victim.state == AgentState.DEAD
    # declared dead within interval x liveness, plus one heartbeat period of detection slack
    assert victim.gone - killed_at <= HEARTBEAT_S * LIVENESS + HEARTBEAT_S + 0.1
    q = coord.metrics.query_summary()
    assert q["in_flight"] == 0 and q["submitted"] == q["completed"] + q["failed"] + q["dropped"]
    assert sum(stats.answers.values()) == stats.sent == q["submitted"]  # one answer each


def test_rogue_frames_are_counted_and_the_swarm_keeps_serving():
    with Swarm(LiveRun("homelab", overrides=("rate=4", *BEATS), workers=8, config=FAST)) as swarm:
        coord = swarm.coord
        ctx = zmq.Context()
        try:
            rogues = []  # kept open: closing with LINGER 0 would discard unsent frames
            for address in (coord.worker_address, coord.client_address):
                rogue = sockets.dealer(ctx, address, b"rogue")
                rogues.append(rogue)
                rogue.send_multipart([b"\xc1not msgpack", b""])
                rogue.send_multipart([b"a", b"b", b"c", b"d", b"e"])
                rogue.send(b"lonely frame")
                sockets.send(rogue, Message(CONTROL, "HEARTBEAT", "", "rogue"))
            swarm.serve_until(lambda: sum(coord.protocol_errors.values()) >= 7, 5)
            assert sum(coord.protocol_errors.values()) >= 7
            client = _load(swarm, duration=1.5)
            swarm.serve_until(lambda: not client.is_alive() and not coord.active, 20)
        finally:
            ctx.destroy(linger=0)
        assert all(a.state == AgentState.RUNNING for a in coord.agents.values())
        q = coord.metrics.query_summary()
        assert q["submitted"] >= 3 and q["completed"] == q["submitted"]


def test_same_artifact_same_action_in_sim_and_live_and_live_views_fit_every_task():
    recorded: list[tuple[np.ndarray, np.ndarray]] = []

    class Recording:
        def __init__(self) -> None:
            self.policy = LearnedController(ROUTING_POLICY)

        def act(self, obs):
            action = self.policy.act(obs)
            recorded.append((obs.copy(), np.asarray(action).copy()))
            return action

    with Swarm(LiveRun("homelab", overrides=("rate=4", *BEATS), workers=8, config=FAST)) as swarm:
        coord = swarm.coord
        coord.controls.attach(make_task("shard-routing"), Recording(), "artifact")
        coord.restart_clock()
        client = _load(swarm, duration=2.0)
        swarm.serve_until(lambda: not client.is_alive() and not coord.active, 20)
        views = {name: coord.view() for name in ("autoscaling", "role-assignment")}
        for name, view in views.items():
            task = make_task(name)
            assert task.observation_space.contains(task.observe(view)), name
        assert coord.metrics.completed >= 3
    routing = make_task("shard-routing")
    in_sim = LearnedController(ROUTING_POLICY)  # a second load, as the simulator does
    assert len(recorded) >= 3
    for obs, action in recorded:
        assert routing.observation_space.contains(obs)
        np.testing.assert_array_equal(in_sim.act(obs), action)

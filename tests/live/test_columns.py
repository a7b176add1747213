"""The view's agent table kept incrementally (``live.columns``) equals a rebuild from the
agents after any sequence of the roster's transitions and the messages agents send."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import NoLauncher
from hypothesis import given, settings
from hypothesis import strategies as st

from live.roster import Roster
from live.state import Agent, Job, Query
from live.worker import WorkerSpec
from swarmsim.metrics import Metrics
from swarmsim.profiles import load_profiles
from swarmsim.query import GONE, AgentState

LAYERS = ("embedder", "retriever", "synth")
ROLES = {"embedder": "embedder", "retriever": "retriever", "synth": "synthesizer"}
DEAD_AFTER = 3.0
PROFILES = load_profiles()
DEVICES = ("cpu-desktop", "rtx3060", "h100-80gb", "grayskull")  # billed or not


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def rebuilt(agents: list[Agent], now: float) -> dict[str, list]:
    """The table as a view built it from the agents before the columns existed."""
    index = {n: i for i, n in enumerate(LAYERS)}
    return {
        "id": [a.id for a in agents],
        "node": [a.node for a in agents],
        "layer": [index[a.layer] for a in agents],
        "shard": [a.shard for a in agents],
        "state": [int(a.state) for a in agents],
        "healthy": [a.state != AgentState.DEAD and now - a.last_seen <= DEAD_AFTER for a in agents],
        "queue": [a.queue for a in agents],
        "in_flight": [len(a.jobs) for a in agents],
        "latency_s": [a.latency_s for a in agents],
        "utilisation": [min(a.busy_s / max(now - a.born, 1e-9), 1.0) for a in agents],
        "kv_util": [a.kv_util for a in agents],
    }


def node_up_rebuilt(agents: list[Agent], n_nodes: int, now: float) -> list[bool]:
    up, placed = [True] * n_nodes, [False] * n_nodes
    for a in agents:
        if 0 <= a.node < n_nodes and a.state != AgentState.STOPPED:
            if not placed[a.node]:
                placed[a.node], up[a.node] = True, False
            alive = a.state not in GONE and (
                a.state == AgentState.STARTING or now - a.last_seen <= DEAD_AFTER
            )
            up[a.node] |= alive
    return up


STEPS = ("launch", "ready", "heard", "report", "latency", "job", "answer", "drain", "switch",
         "dead", "stop", "tick", "mark", "view")  # fmt: skip


def billing_rebuilt(agents: list[Agent], now: float) -> tuple[float, float]:
    hours = cost = 0.0
    for a in agents:
        price = PROFILES.device(a.device)
        if price.kind == "gpu":
            h = ((now if a.gone < 0 else a.gone) - a.born) / 3600
            hours, cost = hours + h, cost + h * price.price_per_hour
    return hours, cost


def layer_sums_rebuilt(members: list[Agent], now: float, since: float) -> dict[str, float]:
    live = [a for a in members if a.state != AgentState.DEAD]
    loading = (AgentState.STARTING, AgentState.SWITCHING)
    return {
        "running": sum(a.state == AgentState.RUNNING for a in members),
        "loading": sum(a.state in loading for a in members),
        "draining": sum(a.state == AgentState.DRAINING for a in members),
        "queue": sum(a.queue for a in live),
        "in_flight": sum(len(a.jobs) for a in live),
        "busy_s": sum(a.busy_s - a.busy_mark for a in live),
        "alive_s": sum(now - max(a.born, since) for a in live),
        "cost_rate": sum(
            PROFILES.device(a.device).price_per_hour
            for a in live
            if PROFILES.device(a.device).kind == "gpu"
        ),
    }


OPS = st.lists(
    st.tuples(
        st.sampled_from(STEPS),
        st.integers(0, 7),  # which agent (modulo those launched) or node
        st.integers(0, 2),  # which layer
        st.floats(0.0, 2.0),  # a time step, a latency or a load figure
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(OPS, st.sampled_from([None, ("retriever",), ("synthesizer", "embedder")]))
def test_the_kept_table_is_the_rebuilt_one(ops, roles) -> None:
    clock = Clock()
    roster = Roster(NoLauncher(), Metrics(0.0, 1.0), clock, DEAD_AFTER, 60.0, LAYERS)
    jobs = 0
    for op, which, layer_i, x in ops:
        agents = list(roster.agents.values())
        agent = agents[which % len(agents)] if agents else None
        layer = LAYERS[layer_i]
        if op == "launch" or agent is None:
            wid = len(agents)
            device = DEVICES[which % len(DEVICES)]
            spec = WorkerSpec(wid, "", layer, ROLES[layer], device, "", shard=which % 2)
            roster.launch(spec, node=which % 3)
        elif op == "ready" and agent.state not in GONE:
            roster.ready(agent, layer, ROLES[layer], which % 2 if layer == "retriever" else -1)
        elif op == "heard":
            agent.heard("HEARTBEAT", {"progress": int(clock.t * 10)}, clock.t)
        elif op == "report":
            agent.report({"queue": which, "busy_s": x, "kv_util": x / 2})
        elif op == "latency":
            agent.observe_latency(x)
        elif op == "job" and agent.state not in GONE:
            q = Query(jobs, b"c", "t", clock.t, clock.t + 10, 0, "small", 10, 10, 0)
            roster.add_job(agent, Job(f"j{jobs}", q, agent.layer, "SEARCH", None))
            jobs += 1
        elif op == "answer" and agent.jobs:
            roster.pop_job(agent, next(iter(agent.jobs)))
        elif op in ("drain", "switch") and agent.state == AgentState.RUNNING:
            roster.leave(agent, AgentState.DRAINING if op == "drain" else AgentState.SWITCHING)
        elif op == "dead" and agent.state not in GONE:
            roster.dead(agent)
        elif op == "stop" and agent.state not in GONE:
            roster.stop(agent)
        elif op == "tick":
            clock.t += x
        elif op == "mark":
            roster.mark_busy()
        elif op == "view":
            _check(roster, roles, clock.t)
    _check(roster, roles, clock.t)


def _check(roster: Roster, roles, now: float) -> None:
    columns = roster.columns
    columns.flush()
    table = columns.table(columns.rows(roles), now, DEAD_AFTER)
    shown = sorted(
        (a for a in roster.agents.values()
         if a.state != AgentState.STOPPED and (roles is None or a.role in roles)),
        key=lambda a: a.id,
    )  # fmt: skip
    for field, want in rebuilt(shown, now).items():
        assert getattr(table, field).tolist() == want, field
    assert table.training.shape == (len(shown),) and not table.training.any()
    agents = list(roster.agents.values())
    assert roster.node_up(4, now).tolist() == node_up_rebuilt(agents, 4, now)
    assert columns.billing(now) == pytest.approx(billing_rebuilt(agents, now), abs=1e-12)
    sums = columns.layer_sums(now, since=0.5)
    for i, layer in enumerate(LAYERS):
        want = layer_sums_rebuilt([a for a in agents if a.layer == layer], now, 0.5)
        assert {k: float(v[i]) for k, v in sums.items()} == pytest.approx(want, abs=1e-9), layer


def test_a_view_is_a_snapshot_later_messages_do_not_change() -> None:
    clock = Clock()
    roster = Roster(NoLauncher(), Metrics(0.0, 1.0), clock, DEAD_AFTER, 60.0, LAYERS)
    agent = roster.launch(WorkerSpec(0, "", "retriever", "retriever", "cpu-desktop", "", shard=0))
    roster.ready(agent, "retriever", "retriever", 0)
    columns = roster.columns
    columns.flush()
    before = columns.table(columns.rows(None), clock.t, DEAD_AFTER)
    agent.report({"queue": 7})
    columns.flush()
    after = columns.table(columns.rows(None), clock.t, DEAD_AFTER)
    assert before.queue.tolist() == [0] and after.queue.tolist() == [7]
    assert not roster.node_up(1, clock.t).flags.writeable  # shared between views: read-only
    assert np.array_equal(before.id, after.id)


def test_a_control_interval_starts_the_busy_time_again() -> None:
    clock = Clock()
    roster = Roster(NoLauncher(), Metrics(0.0, 1.0), clock, DEAD_AFTER, 60.0, LAYERS)
    agent = roster.launch(WorkerSpec(0, "", "retriever", "retriever", "cpu-desktop", "", shard=0))
    roster.ready(agent, "retriever", "retriever", 0)
    agent.report({"busy_s": 2.0})
    roster.columns.flush()
    assert roster.columns.layer_sums(1.0, 0.0)["busy_s"][1] == 2.0
    roster.mark_busy()
    roster.columns.flush()
    assert roster.columns.layer_sums(1.0, 0.0)["busy_s"][1] == 0.0

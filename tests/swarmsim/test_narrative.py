"""Stories of agents through whole simulations: exact per-stage timelines.

Each test writes a tiny scenario (see the ``story`` fixture in tests/conftest.py): a trace
of a few queries, deterministic or profile service times and either no fabric (hand-offs
are instantaneous) or a fabric with round-number delays. Times in the timeline are
``(agent, sent, start, end)`` per stage: sent by the coordinator, service started on the
agent, answer back at the coordinator.
"""

from __future__ import annotations

import pytest

from swarmsim import Simulation
from swarmsim.profiles import load_profiles
from swarmsim.query import AgentState

PROFILES = load_profiles()


def load_s(model: str) -> float:
    """Seconds to load ``model`` from disk (lifecycle.load_seconds for a non-retriever)."""
    return PROFILES.models[model].vram_gb / PROFILES.load_gbps


def stages(sim: Simulation) -> dict[int, list[tuple]]:
    """Per query, its stages as (agent, sent, start, end)."""
    return {
        rec["query"]: [(st["agent"], st["sent"], st["start"], st["end"]) for st in rec["stages"]]
        for rec in sim.timeline
    }


def run(scenario) -> Simulation:
    """Run ``scenario`` to its end, recording the timeline."""
    sim = Simulation(scenario, seed=0, record_timeline=True)
    sim.run()
    return sim


ONE_SERVER = """
fabric: {enabled: false}
layers:
  server: {role: synthesizer, service: {kind: deterministic, rate: 1.0}}
stages: [{layer: server}]
nodes:
  - name: host
    agents: [{layer: server}]
"""


def test_single_agent_serves_overlapping_queries_fifo(story) -> None:
    """Queries at 0, 0.5 and 0.6 on one 1-second server: each waits for the previous one."""
    sim = run(story(ONE_SERVER, arrivals=[0, 0.5, 0.6]))
    assert stages(sim) == {
        0: [(0, 0.0, 0.0, 1.0)],
        1: [(0, 0.5, 1.0, 2.0)],
        2: [(0, 0.6, 2.0, 3.0)],
    }
    assert sim.summary(0)["queries"]["completed"] == 3


def test_fabric_delays_add_serialization_and_propagation(story) -> None:
    """Coordinator and worker on separate nodes behind one switch: each message crosses two
    links of 1 ms serialization (100 bytes at 0.8 Mbps) plus 1 ms propagation, so a request
    arrives 4 ms after it is sent and an answer 4 ms after service ends. The second request
    arrives at 0.504 and waits for the agent until 1.004."""
    body = """
fabric:
  sizes: {header: 100, per_token: 0}
layers:
  server: {role: synthesizer, service: {kind: deterministic, rate: 1.0}}
stages: [{layer: server}]
coordinator: coord
nodes:
  - {name: coord, link_gbps: 0.0008, link_latency_s: 0.001}
  - name: worker
    link_gbps: 0.0008
    link_latency_s: 0.001
    agents: [{layer: server}]
"""
    sim = run(story(body, arrivals=[0, 0.5]))
    got = stages(sim)
    assert got[0] == [pytest.approx((0, 0.0, 0.004, 1.008), abs=1e-9)]
    assert got[1] == [pytest.approx((0, 0.5, 1.004, 2.008), abs=1e-9)]


def test_batching_takes_queued_items_together(story) -> None:
    """An embedder with ``batch_max: 4`` and a 1-second deterministic service: the first query
    is served alone; the five that queue meanwhile go as a batch of four (one service time)
    and then a batch of one."""
    body = """
fabric: {enabled: false}
layers:
  embed: {role: embedder, batch_max: 4, service: {kind: deterministic, rate: 1.0}}
stages: [{layer: embed}]
nodes:
  - name: host
    agents: [{layer: embed}]
"""
    sim = run(story(body, arrivals=[0, 0.1, 0.2, 0.3, 0.4, 0.5]))
    got = stages(sim)
    assert got[0] == [(0, 0.0, 0.0, 1.0)]
    for q in (1, 2, 3, 4):
        assert got[q] == [(0, pytest.approx(q / 10), 1.0, 2.0)]
    assert got[5] == [(0, 0.5, 2.0, 3.0)]


def test_batch_time_follows_the_embedder_profile(story) -> None:
    """With the profile service model a batch of n embeddings on an RTX 3060 takes
    ``embed_base_s + n * embed_per_item_s``: one query alone, then four together, then one."""
    body = """
fabric: {enabled: false}
layers:
  embed: {role: embedder, model: embedder, batch_max: 4}
stages: [{layer: embed}]
nodes:
  - name: host
    devices: [rtx3060]
    agents: [{layer: embed, device: 0}]
"""
    gpu = PROFILES.devices["rtx3060"]
    one, four = gpu.embed_base_s + gpu.embed_per_item_s, gpu.embed_base_s + 4 * gpu.embed_per_item_s
    assert one > 0.005  # all six queries below have arrived when the first batch ends
    sim = run(story(body, arrivals=[0, 0.001, 0.002, 0.003, 0.004, 0.005]))
    got = stages(sim)
    assert got[0] == [(0, 0.0, 0.0, pytest.approx(one))]
    for q in (1, 2, 3, 4):
        assert got[q] == [
            (0, pytest.approx(q / 1000), pytest.approx(one), pytest.approx(one + four))
        ]
    assert got[5][0][2:] == pytest.approx((one + four, one + four + one))


HETEROGENEOUS_JUDGES = """
fabric: {{enabled: false}}
layers:
  judge: {{role: evaluator, model: evaluator, dispatch: {dispatch}}}
stages: [{{layer: judge}}]
nodes:
  - name: host
    devices: [rtx3060]
    cpu: cpu-server
    agents: [{{layer: judge}}, {{layer: judge, device: 0}}]
"""


def test_central_dispatch_gives_next_job_to_first_to_answer(story) -> None:
    """Four queries at t=0, a slow evaluator (agent 0, CPU) and a fast one (agent 1, GPU).
    Central dispatch keeps the two waiting queries at the coordinator and hands each to the
    agent that answers first: the fast one serves three queries back to back while the slow
    one is still on its first."""
    slow, fast = PROFILES.devices["cpu-server"].eval_s, PROFILES.devices["rtx3060"].eval_s
    assert 3 * fast < slow
    sim = run(story(HETEROGENEOUS_JUDGES.format(dispatch="central"), arrivals=[0, 0, 0, 0]))
    assert stages(sim) == {
        0: [(0, 0.0, 0.0, pytest.approx(slow))],
        1: [(1, 0.0, 0.0, pytest.approx(fast))],
        2: [(1, pytest.approx(fast), pytest.approx(fast), pytest.approx(2 * fast))],
        3: [(1, pytest.approx(2 * fast), pytest.approx(2 * fast), pytest.approx(3 * fast))],
    }


def test_least_loaded_dispatch_sends_at_once(story) -> None:
    """The same four queries with least-loaded dispatch are all sent at t=0, two per agent,
    so the third query waits behind the slow agent's first."""
    slow, fast = PROFILES.devices["cpu-server"].eval_s, PROFILES.devices["rtx3060"].eval_s
    sim = run(story(HETEROGENEOUS_JUDGES.format(dispatch="least-loaded"), arrivals=[0, 0, 0, 0]))
    assert stages(sim) == {
        0: [(0, 0.0, 0.0, pytest.approx(slow))],
        1: [(1, 0.0, 0.0, pytest.approx(fast))],
        2: [(0, 0.0, pytest.approx(slow), pytest.approx(2 * slow))],
        3: [(1, 0.0, pytest.approx(fast), pytest.approx(2 * fast))],
    }


TWO_ROLES = """
fabric: {enabled: false}
layers:
  synth:
    role: synthesizer
    model: llm-small
    device: cpu
    dispatch: central
    service: {kind: deterministic, rate: 0.1}
  spare:
    role: synthesizer
    model: llm-large
    device: cpu
    dispatch: central
    service: {kind: deterministic, rate: 1.0}
stages: [{layer: synth}]
nodes:
  - name: host
    cpu_cores: 4
    agents: [{layer: synth}, {layer: spare}]
"""


def test_role_change_makes_agent_unavailable_for_its_load_time(story) -> None:
    """At t=0.5 the idle agent 1 is assigned to the 10-second ``synth`` layer: it loads
    llm-small (5.4 GB at 3 GB/s = 1.8 s) and takes the query waiting since t=1 at 2.3."""
    sim = Simulation(story(TWO_ROLES, arrivals=[0, 1]), seed=0, record_timeline=True)
    sim.start()
    sim.env.run(until=0.5)
    sim.assign(1, "synth")
    agent = sim.cluster.agents[1]
    load = load_s("llm-small")
    assert sim.lifecycle.load_seconds(agent) == pytest.approx(load)
    sim.env.run(until=0.5 + load - 1e-6)
    assert agent.state == AgentState.SWITCHING
    assert sim.summary(0)["replicas"]["synth"] == {
        "running": 1,
        "starting": 1,
        "draining": 0,
        "dead": 0,
    }
    sim.env.run(until=100)
    ready = 0.5 + load
    assert stages(sim) == {
        0: [(0, 0.0, 0.0, 10.0)],
        1: [(1, pytest.approx(ready), pytest.approx(ready), pytest.approx(ready + 10))],
    }
    assert sim.summary(0)["failures"]["role_changes"] == 1


def test_role_change_of_busy_agent_finishes_old_work_first(story) -> None:
    """Agent 0 of the 1-second ``fast`` layer is serving q0 (t=0..1) with q1 queued on it when
    it is reassigned to the 10-second ``slow`` layer at t=0.5. It finishes q1 as a ``fast``
    agent (the old model is what is loaded: t=1..2), only then loads llm-large (9.4 GB at
    3 GB/s), and is running in ``slow`` from 2 + 3.13 s."""
    body = """
fabric: {enabled: false}
layers:
  fast: {role: synthesizer, model: llm-small, device: cpu, service: {kind: deterministic, rate: 1}}
  slow:
    {role: synthesizer, model: llm-large, device: cpu, service: {kind: deterministic, rate: 0.1}}
stages: [{layer: fast}]
nodes:
  - name: host
    agents: [{layer: fast}]
"""
    sim = Simulation(story(body, arrivals=[0, 0.1]), seed=0, record_timeline=True)
    sim.start()
    sim.env.run(until=0.5)
    sim.assign(0, "slow")
    agent = sim.cluster.agents[0]
    sim.env.run(until=2 + load_s("llm-large") - 1e-6)
    got = stages(sim)
    assert got[0] == [(0, 0.0, 0.0, 1.0)]
    assert got.get(1) == [(0, 0.1, 1.0, 2.0)], "q1 must be served with the old layer's 1 s"
    assert agent.state == AgentState.SWITCHING
    sim.env.run(until=2 + load_s("llm-large") + 1e-6)
    assert agent.state == AgentState.RUNNING


SCALABLE = """
fabric: {enabled: false}
control_interval_s: 0.5
layers:
  synth:
    role: synthesizer
    model: llm-small
    device: cpu
    dispatch: central
    service: {kind: deterministic, rate: 0.1}
stages: [{layer: synth}]
nodes:
  - name: host
    cpu_cores: 4
    agents: [{layer: synth}]
"""


def test_scale_out_replica_serves_after_its_load_time(story) -> None:
    """An ``on_control`` hook asks for two replicas at t=0.5. The new agent loads llm-small
    (1.8 s) and takes the query waiting since t=1 at 2.3; the query of t=2 waits for the
    first agent to finish at t=10."""
    calls: list[float] = []

    def scale_to_two() -> None:
        calls.append(sim.view().time_s)
        if len(calls) == 1:
            sim.scale("synth", 2)

    scenario = story(SCALABLE, arrivals=[0, 1, 2])
    sim = Simulation(scenario, seed=0, record_timeline=True, on_control=[scale_to_two])
    sim.run(until=100)
    ready = 0.5 + load_s("llm-small")
    assert stages(sim) == {
        0: [(0, 0.0, 0.0, 10.0)],
        1: [(1, pytest.approx(ready), pytest.approx(ready), pytest.approx(ready + 10))],
        2: [(0, 10.0, 10.0, 20.0)],
    }
    assert calls[:2] == [0.5, 1.0]
    assert sim.summary(0)["replicas"]["synth"]["running"] == 2


def test_scale_in_drains_before_stopping(story) -> None:
    """Two 1-second agents with least-loaded dispatch hold two queries each when the layer is
    scaled to one at t=0.5. Agent 0 takes no new work but finishes what it holds, stopping at
    t=2; the query of t=0.6 goes to agent 1 behind its own two."""
    body = """
fabric: {enabled: false}
layers:
  synth: {role: synthesizer, service: {kind: deterministic, rate: 1.0}}
stages: [{layer: synth}]
nodes:
  - name: host
    agents: [{layer: synth, count: 2}]
"""
    sim = Simulation(story(body, arrivals=[0, 0.1, 0.2, 0.3, 0.6]), seed=0, record_timeline=True)
    sim.start()
    sim.env.run(until=0.5)
    sim.scale("synth", 1)
    assert sim.cluster.agents[0].state == AgentState.DRAINING
    sim.env.run(until=100)
    assert stages(sim) == {
        0: [(0, 0.0, 0.0, 1.0)],
        1: [(1, 0.1, 0.1, pytest.approx(1.1))],
        2: [(0, 0.2, 1.0, 2.0)],
        3: [(1, 0.3, pytest.approx(1.1), pytest.approx(2.1))],
        4: [(1, 0.6, pytest.approx(2.1), pytest.approx(3.1))],
    }
    drained = sim.cluster.agents[0]
    assert (drained.state, drained.gone) == (AgentState.STOPPED, 2.0)
    assert sim.summary(0)["replicas"]["synth"]["running"] == 1

"""Node supervisors in the simulator (``failures.supervisors``): a lone agent's crash is
reported at its supervisor's next check (within the 0.5 s restart back-off) and restarted
locally; a supervisor's crash takes
its node's agents down together, declared dead together after the heartbeat timeout; the
Task observations are those of the flat swarm."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the swarmsim/* ids)
from swarmsim import Simulation
from swarmsim.errors import SwarmError
from swarmsim.query import AgentState

INTERVAL, LIVENESS, CRASH_AT = 1.0, 3, 0.5
SCENARIO = f"""
fabric: {{enabled: false}}
failures: {{heartbeat_interval_s: {INTERVAL}, heartbeat_liveness: {LIVENESS}}}
layers:
  synth: {{role: synthesizer, service: {{kind: deterministic, rate: 0.5}}}}
stages: [{{layer: synth}}]
nodes:
  - name: a
    agents: [{{layer: synth, count: 2}}]
  - name: b
    agents: [{{layer: synth}}]
"""
ON = ["failures.supervisors=true"]


def _run(scenario, crash) -> tuple[Simulation, list[tuple[int, float]]]:
    """Run ``scenario`` with ``crash(sim)`` at t=0.5; (agent id, time) of each declared death."""
    sim = Simulation(scenario, seed=0)
    sim.start()
    deaths: list[tuple[int, float]] = []
    declare = sim.failures.declare_dead

    def logged(agent) -> None:
        deaths.append((agent.id, sim.env.now))
        declare(agent)

    sim.failures.declare_dead = logged
    sim.env.run(until=CRASH_AT)
    crash(sim)
    sim.env.run(until=30.0)
    return sim, deaths


@pytest.mark.parametrize(("overrides", "lo", "hi"), [([], 2.0, 3.0), (ON, 0.0, 0.5)])
def test_a_lone_crash_is_reported_at_once_by_its_supervisor(story, overrides, lo, hi):
    """Flat: noticed after 2 to 3 missed beats; supervised: within the 0.5 s back-off. Either way
    the agent is back running (restarted) before the end."""
    scenario = story(SCENARIO, arrivals=[0], overrides=overrides)
    sim, deaths = _run(scenario, lambda s: s.failures.process_exit(s.cluster.agents[0]))
    ((agent, at),) = deaths
    assert agent == 0 and CRASH_AT + lo <= at <= CRASH_AT + hi
    assert sim.cluster.agents[0].state == AgentState.RUNNING


def test_a_supervisor_crash_declares_its_nodes_agents_dead_together(story):
    scenario = story(SCENARIO, arrivals=[0], overrides=ON)
    sim, deaths = _run(scenario, lambda s: s.failures.supervisor_crash(s.cluster.nodes[0]))
    node_a = [a.id for a in sim.cluster.agents if a.node is sim.cluster.nodes[0]]
    assert sorted(agent for agent, _ in deaths) == node_a and len(node_a) == 2  # b's lives on
    assert len({at for _, at in deaths}) == 1  # one NODE_BEAT stopped: one verdict
    at = deaths[0][1]
    assert CRASH_AT + (LIVENESS - 1) * INTERVAL <= at <= CRASH_AT + LIVENESS * INTERVAL
    assert all(a.state == AgentState.RUNNING for a in sim.cluster.agents)  # restarted


def test_random_supervisor_crashes_happen_and_the_observation_space_is_unchanged():
    over = [*ON, "failures.supervisor_mtbf_s=30"]
    flat = gym.make("swarmsim/ShardRouting-v0", scenario="homelab", episode_s=60.0)
    sup = gym.make("swarmsim/ShardRouting-v0", scenario="homelab", episode_s=60.0,
                   overrides=over)  # fmt: skip
    assert sup.observation_space == flat.observation_space
    obs, _ = sup.reset(seed=1)
    assert sup.observation_space.contains(obs)
    for _ in range(200):
        obs, _, done, trunc, _ = sup.step(sup.action_space.sample())
        assert sup.observation_space.contains(obs)
        if done or trunc:
            break
    assert sup.unwrapped.sim.failures.supervisor_failures >= 1
    assert np.all(np.isfinite(obs))


def test_supervisor_crashes_need_supervisors(story):
    with pytest.raises(SwarmError, match="supervisor_mtbf_s"):
        story(SCENARIO, overrides=["failures.supervisor_mtbf_s=30"])

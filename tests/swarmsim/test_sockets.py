"""Per-agent socket queues: at the high-water mark ROUTER and PUB drop, DEALER and PUSH block;
and what a run bills (GPU-hours and cost) for a static on-prem cluster."""

from __future__ import annotations

import pytest

from swarmsim import Simulation, load_scenario
from swarmsim.profiles import load_profiles

SLOW_SERVER = """
fabric: {{enabled: false, hwm: 2, socket: {socket}}}
layers:
  server: {{role: synthesizer, service: {{kind: deterministic, rate: 1.0}}}}
stages: [{{layer: server}}]
nodes:
  - name: host
    agents: [{{layer: server}}]
"""


def timeline(sim: Simulation) -> dict[int, tuple]:
    return {r["query"]: (r["outcome"], r["reason"], r["end"]) for r in sim.timeline}


@pytest.mark.parametrize("socket", ["router", "pub"])
def test_dropping_sockets_drop_past_the_high_water_mark(story, socket):
    """Four queries at t=0 to one 1-second agent with HWM 2: the first goes into service,
    two wait in the socket queue, the fourth finds the queue full and is dropped."""
    sim = Simulation(story(SLOW_SERVER.format(socket=socket), arrivals=[0, 0, 0, 0]),
                     seed=0, record_timeline=True)  # fmt: skip
    summary = sim.run()
    assert timeline(sim) == {
        0: ("completed", "", 1.0),
        1: ("completed", "", 2.0),
        2: ("completed", "", 3.0),
        3: ("dropped", "hwm", 0.0),
    }
    assert summary["messages"]["dropped"] == {"hwm": 1}
    assert summary["outcomes"] == {"hwm": 1}


@pytest.mark.parametrize("socket", ["dealer", "push"])
def test_blocking_sockets_hold_messages_back_until_there_is_room(story, socket):
    """The same load through a blocking socket: the fourth message waits at the sender and is
    sent when the second query goes into service at t=1; nothing is lost."""
    sim = Simulation(story(SLOW_SERVER.format(socket=socket), arrivals=[0, 0, 0, 0]),
                     seed=0, record_timeline=True)  # fmt: skip
    summary = sim.run()
    ends = {q: end for q, (outcome, _, end) in timeline(sim).items() if outcome == "completed"}
    assert ends == {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0}
    assert [st["sent"] for st in sim.timeline[3]["stages"]] == [1.0]
    assert summary["messages"]["dropped"] == {}


def test_static_cluster_bills_every_occupied_device_for_the_whole_run():
    """homelab for one hour: 4 accelerators (two RTX cards on Worlock, Grayskull, the 4080
    SUPER) each host an agent all along; Spinoza's CPU hosts the retrievers."""
    scenario = load_scenario("homelab", ["duration_s=3600"])
    summary = Simulation(scenario, seed=0).run()
    prof = load_profiles()
    gpus = ["rtx3080", "rtx3060", "grayskull", "rtx4080-super"]
    expected = sum(prof.device(d).price_per_hour for d in [*gpus, "cpu-desktop"])
    assert summary["gpu_hours"] == pytest.approx(4.0)
    assert summary["cost_usd"] == pytest.approx(expected)

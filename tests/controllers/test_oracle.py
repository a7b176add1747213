"""The autoscaling oracle: told the run's own future arrivals, it scales up before a load it
knows of, runs only in the simulator, and leaves every other controller's run unchanged."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from controllers.registry import controller_names, controller_params, make_controller
from controllers.spec import resolve, resolve_live
from envs.attach import attach
from envs.scaling import AutoscalingTask
from experiments.cli import main
from experiments.evaluate import run_arm
from swarmsim import Simulation, load_scenario
from swarmsim.errors import SwarmError
from swarmsim.foresight import foresight, future_arrivals

SHORT = ("duration_s=600", "warmup_s=60")


def recorded_arrivals(sim: Simulation) -> list[float]:
    """The arrival times ``sim``'s run takes from its workload (filled as it runs)."""
    seen: list[float] = []
    inner = sim.workload.arrivals

    def recording():
        for arr in inner():
            seen.append(arr.t)
            yield arr

    sim.workload.arrivals = recording
    return seen


@pytest.mark.parametrize("name", ["diurnal", "prefix-cache", "cloud-burst"])
def test_the_oracle_sees_exactly_the_arrivals_the_run_then_gets(name: str) -> None:
    """Bursts (diurnal), prompt prefixes (prefix-cache) and an MMPP (cloud-burst) included."""
    scenario = load_scenario(name, SHORT)
    sim = Simulation(scenario, seed=1001)
    oracle = make_controller("autoscaling", "oracle")
    attach(sim, AutoscalingTask(), oracle)
    seen = recorded_arrivals(sim)
    accepted: list[float] = []
    accept = sim.coordinator.accept
    sim.coordinator.accept = lambda q: (accepted.append(q.arrival), accept(q))[1]
    summary = sim.run()
    told = oracle.foresight.arrivals
    assert len(told) > 100
    assert np.array_equal(told, [t for t in seen if t < scenario.duration_s])
    assert summary["queries"]["submitted"] == len(accepted) == len(told)
    np.testing.assert_allclose(accepted, told, rtol=0, atol=1e-9)


def test_the_arrivals_depend_on_the_seed() -> None:
    scenario = load_scenario("diurnal", SHORT)
    a, b = future_arrivals(scenario, 1), future_arrivals(scenario, 2)
    assert not np.array_equal(a[: min(len(a), len(b))], b[: min(len(a), len(b))])


def run_json(scenario, seed: int, tell: bool) -> str:
    sim = Simulation(scenario, seed=seed)
    attach(sim, AutoscalingTask(), make_controller("autoscaling", "hpa"))
    if tell:
        foresight(sim)  # what attaching an oracle does, beside another controller's run
    summary = dict(sim.run())
    summary.pop("wall_s")
    return json.dumps(summary, sort_keys=True, default=str)


def test_telling_the_future_leaves_the_run_bit_identical() -> None:
    """The foresight draws from streams of its own: the run's lose no draw."""
    scenario = load_scenario("diurnal", SHORT)
    assert run_json(scenario, 1000, tell=True) == run_json(scenario, 1000, tell=False)


BURST = """
fabric: {enabled: false}
cloud: {provision_delay_s: 90}
layers:
  synth:
    role: synthesizer
    model: llm-small
    max_replicas: 8
    service: {kind: deterministic, rate: 1.0}
stages: [{layer: synth}]
nodes:
  - name: gpu
    count: 8
    initial: 1
    cloud: true
    devices: [l4]
    agents: [{layer: synth, device: 0}]
"""
CALM_QPS, BURST_QPS, BURST_AT = 0.4, 3.0, 900.0


def burst_arrivals() -> list[float]:
    calm = np.arange(0.0, BURST_AT, 1 / CALM_QPS)
    burst = np.arange(BURST_AT, BURST_AT + 300, 1 / BURST_QPS)
    return [*calm.tolist(), *burst.tolist()]


def running_at(scenario, controller, times: list[float]) -> list[int]:
    """Running synthesizers at each of ``times`` under ``controller``."""
    sim = Simulation(scenario, seed=0)
    attach(sim, AutoscalingTask(), controller)
    sim.start()
    out = []
    for t in times:
        sim.env.run(until=t)
        out.append(sim.view(roles=()).layers["synth"].running)
    return out


def test_the_oracle_has_replicas_serving_when_a_known_burst_arrives(story) -> None:
    """3 q/s of 1 s jobs at t=900, after 0.4 q/s: need ceil(3 / 0.7) = 5 replicas, each 91.8 s
    from asked to serving (90 s provisioning + 5.4 GB at 3 GB/s). The oracle has them running
    as the burst arrives, and did not scale up long before; HPA only reacts to it."""
    scenario = story(BURST, arrivals=burst_arrivals(), duration_s=1000.0)
    oracle = make_controller("autoscaling", "oracle")
    early, before, at = running_at(scenario, oracle, [600.0, BURST_AT - 1, BURST_AT])
    assert oracle.foresight.startup_s == (pytest.approx(90 + 5.4 / 3.0),)
    assert early == 1  # 0.4 q/s of 1 s jobs: one replica
    assert before >= 5 and at >= 5
    (hpa_at,) = running_at(scenario, make_controller("autoscaling", "hpa"), [BURST_AT])
    assert hpa_at == 1


def test_the_oracle_is_registered_as_a_reference_with_tunable_parameters() -> None:
    summary = controller_names()["autoscaling"]["oracle"]
    assert summary.startswith("reference: knows the future arrivals")
    params = {p.name for p in controller_params()["autoscaling"]["oracle"]}
    assert {"target_utilization", "horizon_s"} <= params
    assert resolve("autoscaling=oracle:target_utilization=0.6").reference
    assert not resolve("autoscaling=predictive").reference


def test_swarmsim_controllers_lists_the_oracle(capsys) -> None:
    assert main(["controllers", "--params"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  oracle +reference: knows the future arrivals", out, re.MULTILINE)
    assert "horizon_s=0:600" in out


def test_the_oracle_without_a_future_says_so() -> None:
    oracle = make_controller("autoscaling", "oracle")
    obs = AutoscalingTask().observation_space.sample()
    with pytest.raises(RuntimeError, match="not told the run's future arrivals"):
        oracle.act(obs)


def test_the_live_runtime_refuses_the_oracle() -> None:
    with pytest.raises(SwarmError, match="reference, not a deployable controller"):
        resolve_live("autoscaling=oracle:horizon_s=30")
    assert resolve_live("autoscaling=hpa").task == "autoscaling"


def test_live_run_with_the_oracle_fails_with_one_line_before_starting(capsys) -> None:
    argv = ["live", "run", "diurnal", "--controller", "autoscaling=oracle", "--duration", "5"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "autoscaling=oracle: a reference, not a deployable controller" in err
    assert "only the simulator" in err


def test_closed_loop_sessions_have_no_future_to_tell() -> None:
    scenario = load_scenario("prefix-cache", [*SHORT, "workload.sessions.mode=closed-loop"])
    with pytest.raises(SwarmError, match="closed-loop sessions"):
        future_arrivals(scenario, 0)


def test_the_oracle_runs_under_eval() -> None:
    scenario = load_scenario("diurnal", SHORT)
    label = "autoscaling=oracle:target_utilization=0.6"
    summary = run_arm(scenario, 1000, resolve(label))
    assert summary["controllers"]["autoscaling"]["name"] == label
    assert summary["gpu_hours"] > 0

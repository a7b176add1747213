"""prefix-cache live, with llm-routing=kv-overlap attached: real worker processes over ZeroMQ,
emulated synthesizers with prefix caches. Its recording, calibrated and simulated, hits the
caches as often as the live run did (within 5 percentage points: the issue's bar)."""

from __future__ import annotations

from controllers.registry import make_controller
from envs.attach import attach
from envs.registry import make_task
from experiments.calibrate import calibrate, write_scenario
from live.config import LiveConfig
from live.runner import LiveRun, run_live
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation
from swarmsim.summary import SUMMARY_KEYS

# ten times the rate at a tenth of the profile's times: the scenario's load, ten times faster
OVERRIDES = ("rate=13", "corpus.n_vectors=2000", "corpus.n_queries=64")
CONTROLLER = "llm-routing=kv-overlap"
DURATION_S = 12.0


def test_live_prefix_caches_calibrate_to_the_simulators_hit_rate(tmp_path):
    record = tmp_path / "live.jsonl"
    live = run_live(
        LiveRun(
            "prefix-cache",
            overrides=OVERRIDES,
            controllers=(CONTROLLER,),
            duration_s=DURATION_S,
            config=LiveConfig(time_scale=0.1),
            record=record,
        )
    )
    assert set(live) == SUMMARY_KEYS
    q = live["queries"]
    assert q["completed"] == q["submitted"] > 100 and not live["outcomes"]
    assert live["controllers"]["llm-routing"]["decisions"] == q["submitted"]
    assert live["ttft_s"]["p50"] < live["latency_s"]["p50"]
    kv = live["kv_cache"]
    assert set(kv["per_replica"]) == {"0", "1", "2", "3"} and kv["hit_rate"] > 0.3

    result = calibrate(record, "prefix-cache", OVERRIDES)
    fit = result["fits"]["synth"]
    assert fit["model"] == "profile" and abs(fit["scale"] - 0.1) < 0.01  # the time scale
    assert fit["residual_sigma"] < 0.05  # the profile of the uncached tokens is the service
    out = tmp_path / "calibrated.yaml"
    write_scenario(result, out, "test")
    scenario = load_scenario(out, [*OVERRIDES, f"duration_s={DURATION_S}", "warmup_s=1.2"])
    sim = Simulation(scenario, seed=0)
    attach(sim, make_task("llm-routing"), make_controller("llm-routing", "kv-overlap"))
    simulated = sim.run()
    assert abs(simulated["kv_cache"]["hit_rate"] - kv["hit_rate"]) < 0.05, (simulated, live)

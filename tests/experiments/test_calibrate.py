"""`swarmsim calibrate`: fitted service models recover what made the recording."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.calibrate import calibrate, write_scenario
from experiments.cli import main
from experiments.fidelity import compare, read_recording
from experiments.overhead import OVERHEAD_LEVELS
from swarmsim.metrics import write_timeline
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation

# A homelab whose small-model synthesizer and retriever follow known fitted models.
TRUTH = {"base_s": 0.4, "per_input_token_s": 0.0005, "per_output_token_s": 0.01, "sigma": 0.2}
KNOWN = [
    "fabric.enabled=false",
    "warmup_s=0",
    "duration_s=3600",
    "layers.synth-small.service.kind=fitted",
    f"layers.synth-small.service.base_s={TRUTH['base_s']}",
    f"layers.synth-small.service.per_input_token_s={TRUTH['per_input_token_s']}",
    f"layers.synth-small.service.per_output_token_s={TRUTH['per_output_token_s']}",
    f"layers.synth-small.service.residual_sigma={TRUTH['sigma']}",
    "layers.retriever.service.kind=fitted",
    "layers.retriever.service.base_s=0.02",
]


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    sim = Simulation(load_scenario("homelab", KNOWN), seed=11, record_timeline=True)
    sim.run()
    path = tmp_path_factory.mktemp("calibrate") / "known.jsonl"
    write_timeline(sim.timeline, path)
    return path


def test_calibration_recovers_the_known_service_models(recording):
    fits = calibrate(recording, "homelab", tuple(KNOWN))["fits"]
    synth = fits["synth-small"]
    assert synth["records"] > 300
    assert synth["per_input_token_s"] == pytest.approx(TRUTH["per_input_token_s"], rel=0.1)
    assert synth["per_output_token_s"] == pytest.approx(TRUTH["per_output_token_s"], rel=0.1)
    assert synth["base_s"] == pytest.approx(TRUTH["base_s"], abs=0.15)
    assert synth["residual_sigma"] == pytest.approx(TRUTH["sigma"], rel=0.15)
    retriever = fits["retriever"]
    assert retriever["base_s"] == pytest.approx(0.02, rel=1e-6)
    assert retriever["residual_sigma"] == pytest.approx(0.0, abs=1e-6)
    assert retriever["overhead_s"] == pytest.approx(0.0, abs=1e-9)  # no fabric, no queue
    # the large model's single GPU queues its jobs; those that found it idle waited nothing
    assert fits["synth-large"]["overhead_s"] == pytest.approx(0.0, abs=1e-9)


def test_the_calibrated_scenario_is_an_ordinary_scenario(recording, tmp_path, capsys):
    out = tmp_path / "calibrated.yaml"
    sets = [x for item in KNOWN for x in ("--set", item)]
    assert main(["calibrate", str(recording), "-o", str(out), *sets]) == 0
    assert "synth-small" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("# swarmsim calibrate")
    scenario = load_scenario(out)
    svc = scenario.layers["synth-small"].service
    assert svc.kind == "fitted" and not scenario.fabric.enabled
    assert main(["simulate", str(out), "--duration", "120", "--json"]) == 0


def test_a_recording_of_another_scenario_is_refused(recording, tmp_path, capsys):
    assert main(["calibrate", str(recording), "-o", str(tmp_path / "x.yaml"),
                 "--scenario", "tandem"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not in scenario tandem" in err


def test_write_scenario_heads_the_file_with_its_command(recording, tmp_path):
    result = calibrate(recording, "homelab", tuple(KNOWN))
    write_scenario(result, tmp_path / "c.yaml", "swarmsim calibrate x -o c.yaml")
    assert (tmp_path / "c.yaml").read_text().splitlines()[0] == "# swarmsim calibrate x -o c.yaml"


def test_a_scaled_profile_is_recovered_across_mixed_devices(tmp_path):
    """synth-small runs on an RTX 3080 and a 3060: one scale of the profile fits both."""
    known = ["warmup_s=0", "duration_s=3600", "fabric.enabled=false",
             "layers.synth-small.service.scale=0.3", "layers.synth-small.service.base_s=0.1",
             "layers.synth-small.service.residual_sigma=0.1"]  # fmt: skip
    sim = Simulation(load_scenario("homelab", known), seed=5, record_timeline=True)
    sim.run()
    write_timeline(sim.timeline, tmp_path / "scaled.jsonl")
    devices = {st["device"] for r in sim.timeline for st in r["stages"]
               if st["layer"] == "synth-small"}  # fmt: skip
    assert len(devices) == 2
    fit = calibrate(tmp_path / "scaled.jsonl", "homelab", tuple(known))["fits"]["synth-small"]
    assert fit["model"] == "profile"
    assert fit["scale"] == pytest.approx(0.3, rel=0.05)
    assert fit["base_s"] == pytest.approx(0.1, abs=0.05)
    assert fit["residual_sigma"] == pytest.approx(0.1, rel=0.2)


def test_load_time_is_recovered_from_the_lifecycle_events(tmp_path):
    from experiments.replay import prepare

    known = ["duration_s=1200", "layers.synth-large.load_s=7.5"]
    sim, _ = prepare(load_scenario("cloud-burst", known), 0, ["autoscaling=hpa"], True)
    sim.run()
    write_timeline(sim.recording(), tmp_path / "scaling.jsonl")
    result = calibrate(tmp_path / "scaling.jsonl", "cloud-burst", tuple(known))
    startups = result["lifecycle"]["synth-large"]["startup"]
    assert startups["n"] >= 1
    assert startups["median_s"] == pytest.approx(7.5)  # provisioning is not load time
    assert result["scenario"]["layers"]["synth-large"]["load_s"] == pytest.approx(7.5)


# Known hop-and-handling overheads: the retriever's independent of load, the embedder's
# heavier once another query is in the swarm.
RETRIEVER_HOPS = ([[0.001, 0.002, 0.004, 0.012]], [0, 0.5, 0.9, 1])
RETRIEVER_DISPATCH = [[0.0005, 0.001, 0.002, 0.003]]  # before the fan-out, at the same levels
EMBEDDER_HOPS = ([[0.0005, 0.001, 0.002], [0.002, 0.004, 0.008]], [0, 0.5, 1])
HOPS = (
    f"layers.retriever.overhead.quantiles_s={RETRIEVER_HOPS[0]}",
    f"layers.retriever.overhead.probabilities={RETRIEVER_HOPS[1]}",
    f"layers.retriever.overhead.dispatch_quantiles_s={RETRIEVER_DISPATCH}",
    f"layers.embedder.overhead.quantiles_s={EMBEDDER_HOPS[0]}",
)
PLAIN = ("fabric.enabled=false", "warmup_s=0", "duration_s=3600")


@pytest.fixture(scope="module")
def hop_recording(tmp_path_factory):
    sim = Simulation(load_scenario("homelab", (*PLAIN, *HOPS)), seed=11, record_timeline=True)
    sim.run()
    path = tmp_path_factory.mktemp("calibrate") / "hops.jsonl"
    write_timeline(sim.timeline, path)
    return path


def _recovered(fitted: list[float], truth: list[float], levels: list[float]) -> bool:
    """The fitted quantiles match the truth's quantile function from 5% to 85% (above, the
    retriever's truth has a kink where few samples fall) within 15% of the truth's range:
    four standard errors of a quantile of >= 100 stages (the fewest a row is fitted on)."""
    at = np.array(OVERHEAD_LEVELS)
    keep = (at >= 0.05) & (at <= 0.85)
    expected = np.interp(at[keep], levels, truth)
    return bool(np.all(np.abs(np.array(fitted)[keep] - expected) <= 0.15 * (truth[-1] - truth[0])))


def test_calibration_recovers_the_overhead_distribution_by_load(hop_recording):
    """Every row of the retriever's fitted table is the one truth (a fan-out's four jobs
    share one draw and are fitted as one stage), and so is its dispatch's; the embedder's
    first row (one query in the swarm) is the light truth and every heavier row the heavy
    one."""
    fits = calibrate(hop_recording, "homelab", PLAIN)["fits"]
    retriever = fits["retriever"]["overhead_quantiles_s"]
    assert len(retriever) >= 3  # the recording is loaded enough for several rows
    for row in retriever:
        assert _recovered(row, RETRIEVER_HOPS[0][0], RETRIEVER_HOPS[1])
    light, *heavy = fits["embedder"]["overhead_quantiles_s"]
    assert _recovered(light, EMBEDDER_HOPS[0][0], EMBEDDER_HOPS[1])
    assert heavy and all(_recovered(row, EMBEDDER_HOPS[0][1], EMBEDDER_HOPS[1]) for row in heavy)
    assert not any(map(any, fits["evaluator"]["overhead_quantiles_s"]))  # it had none
    dispatch = fits["retriever"]["dispatch_quantiles_s"]
    assert all(_recovered(row, RETRIEVER_DISPATCH[0], RETRIEVER_HOPS[1]) for row in dispatch)
    assert not any(map(any, fits["embedder"]["dispatch_quantiles_s"]))  # sent on arrival


def test_a_calibrated_overhead_replays_the_recording(hop_recording, tmp_path):
    """The calibrated scenario carries the tables; simulated on the recording's seed (its
    workload and uniform draws, through the fitted tables instead of the true ones) the
    embedder's and the retriever's stage times are those recorded within 5%, as ``compare``
    reads them."""
    result = calibrate(hop_recording, "homelab", PLAIN)
    assert result["scenario"]["layers"]["evaluator"]["overhead"] is None  # none was measured
    write_scenario(result, tmp_path / "c.yaml", "swarmsim calibrate hops.jsonl -o c.yaml")
    scenario = load_scenario(tmp_path / "c.yaml", PLAIN)
    assert scenario.layers["retriever"].overhead.levels == OVERHEAD_LEVELS
    sim = Simulation(scenario, seed=11, record_timeline=True)
    sim.run()
    write_timeline(sim.timeline, tmp_path / "replayed.jsonl")
    report = compare(read_recording(hop_recording), read_recording(tmp_path / "replayed.jsonl"))
    for layer in ("embedder", "retriever"):
        for figure in ("mean", "p50", "p95", "p99"):
            assert abs(report["stages"][layer][figure]["rel_error"]) < 0.05, (layer, figure)

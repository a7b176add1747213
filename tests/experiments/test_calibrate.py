"""`swarmsim calibrate`: fitted service models recover what made the recording."""

from __future__ import annotations

import pytest

from experiments.calibrate import calibrate, write_scenario
from experiments.cli import main
from swarmsim.metrics import write_timeline
from swarmsim.scenario import load_scenario
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

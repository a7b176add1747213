"""Replica start-up: a replica asked for now serves after provisioning, its engine's start,
the download of its weights (unless cached on the node) and their load from disk."""

from __future__ import annotations

import pytest

from swarmsim import Simulation
from swarmsim.errors import ConfigError
from swarmsim.lifecycle import StartupConfig
from swarmsim.profiles import load_profiles

PROFILES = load_profiles()

CLOUD = """
fabric: {enabled: false}
cloud: {provision_delay_s: 90}
layers:
  synth:
    role: synthesizer
    model: llm-small
    service: {kind: deterministic, rate: 1.0}
stages: [{layer: synth}]
nodes:
  - name: gpu
    count: 2
    initial: 1
    cloud: true
    devices: [l4]
    agents: [{layer: synth, device: 0}]
"""


def ready_after_scale_up(scenario, asked_at: float = 10.0) -> float:
    """Seconds from asking for a second replica at ``asked_at`` to its becoming ready."""
    sim = Simulation(scenario, seed=0, record_timeline=True)
    sim.start()
    sim.env.run(until=asked_at)
    sim.scale("synth", 2)
    sim.env.run(until=scenario.duration_s)
    (event,) = [e for e in sim.events if e["event"] == "startup"]
    assert event["start"] == asked_at + 90  # loading begins once the node is provisioned
    return float(event["end"] - asked_at)


@pytest.mark.parametrize(
    ("startup", "expected"),
    [
        # no startup section: the bare disk load, llm-small 5.4 GB at 3 GB/s = 1.8 s
        ("", 90 + 5.4 / 3.0),
        # weights cached on the node: + a 60 s engine start (REFERENCE.md: 60-180 s)
        ("startup: {engine_s: 60}\n", 90 + 60 + 5.4 / 3.0),
        # downloaded at 0.117 GB/s first: 5.4 / 0.117 = 46.15 s more
        ("startup: {engine_s: 60, weights: download}\n", 90 + 60 + 5.4 / 0.117 + 5.4 / 3.0),
    ],
)
def test_scaled_up_replica_is_ready_after_provisioning_and_start_up(
    story, startup: str, expected: float
) -> None:
    assert PROFILES.models["llm-small"].vram_gb == 5.4 and PROFILES.load_gbps == 3.0
    scenario = story(startup + CLOUD, duration_s=400.0)
    assert ready_after_scale_up(scenario) == pytest.approx(expected, abs=1e-9)


def test_layer_load_s_overrides_the_whole_start_up(story) -> None:
    """``load_s`` (as ``swarmsim calibrate`` fits it) replaces engine, download and load."""
    body = "startup: {engine_s: 60, weights: download}\n" + CLOUD.replace(
        "model: llm-small", "model: llm-small\n    load_s: 7.5"
    )
    assert ready_after_scale_up(story(body, duration_s=400.0)) == pytest.approx(90 + 7.5)


@pytest.mark.parametrize(
    ("field", "value"), [("engine_s", -1.0), ("download_gbps", 0.0), ("weights", "s3")]
)
def test_bad_startup_field_is_named(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        StartupConfig(**{field: value})  # type: ignore[arg-type]

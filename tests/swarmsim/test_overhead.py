"""A layer's hop-and-handling overhead: schema, draws, where it is spent, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from swarmsim import Simulation, load_scenario
from swarmsim.errors import ConfigError
from swarmsim.overhead import Overhead, OverheadConfig
from swarmsim.rng import RandomStreams

# Two servers in series; the first's stage has a fixed 0.25 s overhead.
SERIES = """
fabric: {enabled: false}
layers:
  first:
    role: synthesizer
    service: {kind: deterministic, rate: 1.0}
    overhead: {quantiles_s: [[0.25, 0.25]]}
  second: {role: synthesizer, service: {kind: deterministic, rate: 2.0}}
stages: [{layer: first}, {layer: second}]
nodes:
  - name: host
    agents: [{layer: first}, {layer: second}]
"""


def test_the_overhead_delays_service_without_occupying_the_agent(story) -> None:
    """Queries at 0 and 0.5: the first is served from 0.25 to 1.25; the second reaches the
    agent at 0.75, waits for it until 1.25 and is served to 2.25. The agent was busy 2 s
    of the 2.25, its two services: the overhead is not busy time."""
    sim = Simulation(story(SERIES, arrivals=[0, 0.5]), seed=0, record_timeline=True)
    sim.run()
    first = {r["query"]: r["stages"][0] for r in sim.timeline}
    assert [(s["sent"], s["start"], s["end"]) for s in first.values()] == [
        (0.0, 0.25, 1.25),
        (0.5, 1.25, 2.25),
    ]
    assert sim.cluster.layers["first"].agents[0].busy_s == pytest.approx(2.0)
    second = {r["query"]: r["stages"][1] for r in sim.timeline}
    assert (second[0]["sent"], second[0]["start"]) == (1.25, 1.25)  # no overhead there


def test_the_dispatch_delay_comes_before_the_send(story) -> None:
    """A 0.5 s dispatch on the second layer: the query's second stage is ready at 1.25 (the
    first's answer) and sent at 1.75; the first stage, without one, is sent on arrival."""
    body = SERIES.replace(
        "second: {role: synthesizer, service: {kind: deterministic, rate: 2.0}}",
        "second: {role: synthesizer, service: {kind: deterministic, rate: 2.0},\n"
        "           overhead: {quantiles_s: [[0, 0]], dispatch_quantiles_s: [[0.5, 0.5]]}}",
    )
    sim = Simulation(story(body), seed=0, record_timeline=True)
    sim.run()
    (record,) = sim.timeline
    assert [(s["sent"], s["start"], s["end"]) for s in record["stages"]] == [
        (0.0, 0.25, 1.25),
        (1.75, 1.75, 2.25),
    ]
    assert record["end"] == 2.25


def _draws(cfg: OverheadConfig, load: int, n: int = 20_000) -> np.ndarray:
    sampler = Overhead(cfg, RandomStreams(3)["overhead"])
    return np.array([sampler.draw(load) for _ in range(n)])


def test_draws_follow_the_table_of_the_load() -> None:
    """Linear interpolation between quantiles: row 0 is uniform on [0, 1] ms (mean 0.5 ms),
    row 1 is 2 ms below its median and uniform on [2, 10] ms above; a load beyond the rows
    uses the last. 20,000 draws: the mean's standard error is 0.3% of the range."""
    cfg = OverheadConfig(((0.0, 0.0005, 0.001), (0.002, 0.002, 0.010)), (0.0, 0.5, 1.0))
    assert _draws(cfg, 1).mean() == pytest.approx(0.0005, rel=0.02)
    heavy = _draws(cfg, 2)
    assert np.median(heavy) == pytest.approx(0.002, abs=1e-4)
    assert heavy.mean() == pytest.approx(0.5 * 0.002 + 0.5 * 0.006, rel=0.02)
    assert _draws(cfg, 9).max() <= 0.010 and _draws(cfg, 9).min() >= 0.002


def test_levels_default_to_evenly_spaced() -> None:
    assert OverheadConfig(((0.1, 0.2, 0.3),)).levels == (0.0, 0.5, 1.0)


OVERHEAD = "layers.retriever.overhead"
TABLE = f"{OVERHEAD}.quantiles_s"


@pytest.mark.parametrize(
    ("table", "row", "expected"),
    [
        ("[[0.002, 0.001]]", "[0]", "non-decreasing"),
        ("[[-0.001, 0.001]]", "[0]", ">= 0"),
        ("[[0.001, .nan]]", "[0]", ">= 0"),
        ("[[0.001]]", "[0]", "at least two"),
        ("[]", "", "at least one row"),
        ("[[0, 1], [0, 1, 2]]", "[1]", "2 quantiles"),
    ],
)
def test_a_bad_table_names_its_field(table: str, row: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario("homelab", [f"{TABLE}={table}"])
    assert info.value.field == TABLE + row
    assert expected in str(info.value) and "homelab" in str(info.value)


def test_a_bad_dispatch_table_names_its_field() -> None:
    with pytest.raises(ConfigError) as info:
        bad = f"{OVERHEAD}.dispatch_quantiles_s=[[0.1, 1], [2, 1]]"
        load_scenario("homelab", [f"{TABLE}=[[0, 1]]", bad])
    assert info.value.field == f"{OVERHEAD}.dispatch_quantiles_s[1]"
    assert "non-decreasing" in str(info.value)


@pytest.mark.parametrize("levels", ["[0.1, 1]", "[0, 0.9]", "[0, 0.5, 0.5, 1]"])
def test_bad_levels_name_the_probabilities(levels: str) -> None:
    n = len(json.loads(levels))
    table = [[0.001 * i for i in range(n)]]
    with pytest.raises(ConfigError) as info:
        load_scenario("homelab", [f"{TABLE}={table}",
                                  f"{OVERHEAD}.probabilities={levels}"])  # fmt: skip
    assert info.value.field == f"{OVERHEAD}.probabilities"


WITH_OVERHEAD = (
    "duration_s=120",
    "warmup_s=0",
    "layers.embedder.overhead.quantiles_s=[[0.0005, 0.001, 0.004], [0.001, 0.002, 0.02]]",
    f"{TABLE}=[[0.001, 0.002, 0.03]]",
    f"{OVERHEAD}.dispatch_quantiles_s=[[0.0001, 0.0002, 0.002], [0.001, 0.002, 0.004]]",
)


def _timeline(seed: int, overrides: tuple[str, ...]) -> str:
    sim = Simulation(load_scenario("homelab", overrides), seed=seed, record_timeline=True)
    summary = sim.run()
    summary.pop("wall_s")
    return json.dumps([summary, sim.timeline], sort_keys=True)


def test_same_seed_same_run_with_overheads() -> None:
    """Bit for bit: the same seed gives the same timeline, another seed another one."""
    first = _timeline(4, WITH_OVERHEAD)
    assert first == _timeline(4, WITH_OVERHEAD)
    assert first != _timeline(5, WITH_OVERHEAD)


def test_the_overhead_stream_leaves_the_other_draws_alone() -> None:
    """The overheads draw from streams of their own: a run with them sees the arrivals and
    queries of the same seed without (and runs without them are as before)."""

    def queries(overrides: tuple[str, ...]) -> list[tuple]:
        sim = Simulation(load_scenario("homelab", overrides), seed=4, record_timeline=True)
        sim.run()
        return [(r["arrival"], r["input_tokens"], r["output_tokens"]) for r in sim.timeline]

    plain = ("duration_s=120", "warmup_s=0", "fabric.enabled=false")
    assert queries(plain) == queries((*plain, *WITH_OVERHEAD[3:]))

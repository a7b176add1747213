"""Scenarios: every built-in runs and conserves queries; runs are reproducible per seed;
overrides take effect; bad files and overrides fail with errors naming file, field, value."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from swarmsim import Simulation, builtin_scenarios, load_scenario
from swarmsim.errors import ConfigError
from swarmsim.metrics import check_conservation

ROOT = Path(__file__).parents[2]

# Short runs (seconds of simulated time) that keep each built-in under ~1 s of wall time;
# the rest run for DEFAULT_S.
SHORT_S = {"agi-1000": 5, "mmc": 500, "tandem": 500}
DEFAULT_S = 60


def short(name: str, seed: int = 1, extra: tuple[str, ...] = ()) -> dict:
    duration = SHORT_S.get(name, DEFAULT_S)
    scenario = load_scenario(name, [f"duration_s={duration}", "warmup_s=0", *extra])
    return Simulation(scenario, seed=seed).run()


def canonical(summary: dict) -> str:
    """The summary as JSON without its wall-clock time."""
    return json.dumps({k: v for k, v in summary.items() if k != "wall_s"}, sort_keys=True)


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_builtin_scenario_runs_and_conserves_queries(name: str) -> None:
    """Every built-in scenario loads, serves queries and accounts for each one:
    submitted = completed + failed + dropped + in_flight."""
    summary = short(name)
    check_conservation(summary)
    assert summary["queries"]["completed"] > 0
    assert summary["duration_s"] == SHORT_S.get(name, DEFAULT_S)


def test_same_seed_gives_identical_summary() -> None:
    """Two runs of the full pipeline (fabric, retrieval, batching) with one seed agree on
    every figure but wall time; another seed gives a different run."""
    first, again, other = short("homelab", 7), short("homelab", 7), short("homelab", 8)
    assert canonical(first) == canonical(again)
    assert canonical(first) != canonical(other)
    assert first["latency_s"] != other["latency_s"]


def test_same_seed_is_reproducible_across_processes() -> None:
    """A run in a fresh interpreter with a different string-hash seed gives the same summary
    (no dependence on set or hash ordering)."""
    code = (
        "import json, sys; sys.path.insert(0, 'tests/swarmsim');"
        "from test_scenario import short, canonical;"
        "print(canonical(short('homelab', 7)))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == canonical(short("homelab", 7))


def test_parameter_override_takes_effect() -> None:
    """``servers=2`` changes the declared parameter, and with it the agent count it feeds."""
    scenario = load_scenario("mmc", ["servers=2", "duration_s=100", "warmup_s=0"])
    assert scenario.parameters["servers"] == 2
    assert scenario.nodes[0].agents[0].count == 2
    summary = Simulation(scenario, seed=1).run()
    assert summary["replicas"]["server"]["running"] == 2


def test_dotted_field_override_takes_effect() -> None:
    """Dotted fields override the file, including one the file fills from a parameter."""
    scenario = load_scenario(
        "mmc", ["workload.rate=7", "duration_s=123", "warmup_s=0", "layers.server.dispatch=random"]
    )
    assert scenario.workload.rate == 7.0
    assert scenario.duration_s == 123.0
    assert scenario.layers["server"].dispatch == "random"
    assert Simulation(scenario, seed=1).run()["duration_s"] == 123.0


# --- bad scenario files ----------------------------------------------------------------------

BASE = {
    "duration_s": 100,
    "parameters": {"rate": 2.0},
    "workload": {"kind": "poisson", "rate": "${rate}"},
    "fabric": {"enabled": False},
    "layers": {"server": {"role": "synthesizer", "service": {"kind": "exponential", "rate": 1}}},
    "stages": [{"layer": "server"}],
    "nodes": [{"name": "host", "devices": ["rtx3060"], "agents": [{"layer": "server"}]}],
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_base_scenario_is_valid(tmp_path: Path) -> None:
    """The file the error cases below spoil is itself valid."""
    assert load_scenario(write(tmp_path, BASE)).workload.rate == 2.0


def _set(data: dict, dotted: str, value) -> dict:
    """A copy of ``data`` with ``a.b[0].c`` set to ``value``."""
    data = copy.deepcopy(data)
    node, keys = data, dotted.replace("[", ".").replace("]", "").split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    node[keys[-1]] = value
    return data


@pytest.mark.parametrize(
    ("field", "value", "hint"),
    [
        ("duraton_s", 10, "did you mean 'duration_s'"),  # unknown field, nearest suggested
        ("layers.server.dispach", "central", "did you mean 'dispatch'"),
        ("workload.rate", -1, "> 0"),  # a negative rate
        ("layers.server.service.rate", -2, "> 0"),
        ("duration_s", "long", "a number"),  # a wrong type
        ("nodes[0].agents[0].count", "two", "an integer"),
        ("stages[0].layer", "sever", "a layer"),  # a stage naming an unknown layer
        ("nodes[0].agents[0].device", 1, "an index into devices (0..0)"),  # out of range
        ("workload.rate", "${rat}", "a declared parameter"),  # an undeclared ${param}
    ],
)
def test_bad_file_names_file_field_and_value(tmp_path: Path, field, value, hint) -> None:
    """A spoiled field raises ConfigError naming the file, the dotted field and the value."""
    path = write(tmp_path, _set(BASE, field, value))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    err, message = info.value, str(info.value)
    assert (err.source, err.field, err.value) == (str(path), field, value)
    for part in (str(path), field, repr(value), hint):
        assert part in message


@pytest.mark.parametrize(
    ("override", "field", "value"),
    [
        ("servers=abc", "parameters.servers", "abc"),  # not an int like the default
        ("workload.rate=-1", "workload.rate", -1),
        ("workload.rat=3", "workload.rat", 3),  # an unknown dotted field
    ],
)
def test_bad_override_names_source_field_and_value(override: str, field: str, value) -> None:
    """A bad ``--set`` override raises ConfigError naming the scenario, field and value."""
    with pytest.raises(ConfigError) as info:
        load_scenario("mmc", [override])
    message = str(info.value)
    assert info.value.field == field
    for part in ("mmc", field, repr(value)):
        assert part in message


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("nosuch=1", "['arrival_rate', 'dispatch', 'servers', 'service_rate']"),
        ("server=2", "'servers'"),
    ],
)
def test_unknown_parameter_override_lists_the_parameters(override: str, names: str) -> None:
    """A ``--set`` key that is neither a parameter nor a scenario field is rejected, naming the
    scenario and the key, with the nearest or all declared parameter names."""
    with pytest.raises(ConfigError) as info:
        load_scenario("mmc", [override])
    key, value = override.split("=")
    assert info.value.field == key
    assert str(info.value).startswith(f"mmc (built-in): {key}: expected a declared parameter")
    assert names in str(info.value) and str(info.value).endswith(f"got {value}")


def test_overrides_index_into_lists():
    s = load_scenario("mix-shift", ["nodes.0.agents.2.layer=synth-small"])
    assert [a.layer for a in s.nodes[0].agents][:4] == ["synth-small"] * 3 + ["synth-large"]
    with pytest.raises(ConfigError, match=r"nodes\.0\.agents\.9: expected an index below 7"):
        load_scenario("mix-shift", ["nodes.0.agents.9.layer=x"])

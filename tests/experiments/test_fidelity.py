"""`swarmsim compare`: fidelity of one timeline against another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.fidelity import compare, read_recording
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation


@pytest.fixture(scope="module")
def timeline(tmp_path_factory) -> Path:
    """A simulator timeline of homelab (the schema live --record shares)."""
    from swarmsim.metrics import write_timeline

    sim = Simulation(load_scenario("homelab", ["duration_s=300", "warmup_s=0"]), seed=3,
                     record_timeline=True)  # fmt: skip
    sim.run()
    path = tmp_path_factory.mktemp("fidelity") / "a.jsonl"
    write_timeline(sim.timeline, path)
    return path


def _slowed(src: Path, dst: Path, factor: float) -> Path:
    """The same timeline with every time measured from arrival stretched by ``factor``."""
    rows = []
    for line in src.read_text().splitlines():
        r = json.loads(line)
        t0 = r["arrival"]
        r["end"] = t0 + factor * (r["end"] - t0)
        for st in r["stages"]:
            for key in ("sent", "start", "end"):
                st[key] = t0 + factor * (st[key] - t0)
        rows.append(json.dumps(r))
    dst.write_text("\n".join(rows) + "\n")
    return dst


def test_identical_recordings_have_zero_error(timeline, tmp_path, capsys):
    assert main(["compare", str(timeline), str(timeline), "-o", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    pairs = [*result["counts"].values(), *result["end_to_end"].values()]
    pairs += [p for stage in result["stages"].values() for p in stage.values()]
    pairs += [p for kind in result["lifecycle"].values() for p in kind.values()]
    assert pairs and all(p["rel_error"] == 0.0 for p in pairs)
    assert {"embedder", "retriever", "evaluator"} <= set(result["stages"])
    for name in ("fidelity.json", "fidelity.md", "cdf_end_to_end.png", "cdf_retriever.png"):
        assert (tmp_path / name).is_file(), name


def test_a_uniform_slowdown_shows_as_its_relative_error(timeline, tmp_path):
    slow = _slowed(timeline, tmp_path / "b.jsonl", 1.5)
    result = compare(read_recording(timeline), read_recording(slow))
    for q in ("mean", "p50", "p95", "p99"):
        assert result["end_to_end"][q]["rel_error"] == pytest.approx(0.5)
        assert result["stages"]["retriever"][q]["rel_error"] == pytest.approx(0.5)
    assert result["counts"]["completed"]["rel_error"] == 0.0


def test_a_bad_line_is_named(timeline, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    lines = timeline.read_text().splitlines()
    bad.write_text("\n".join([lines[0], '{"arrival": 1.0}', *lines[1:]]) + "\n")
    assert main(["compare", str(timeline), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:2:" in err and "'outcome'" in err

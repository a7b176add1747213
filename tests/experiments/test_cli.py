"""The `swarmsim` command: listing, simulating, JSON output, timelines and user errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import main
from swarmsim.scenario_files import builtin_scenarios

SHORT = ["--duration", "300", "--set", "arrival_rate=2.0"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_scenarios_lists_every_builtin_with_a_description(capsys):
    code, out, _ = run_cli(capsys, "scenarios")
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == sorted(builtin_scenarios())
    assert all(len(line.split(maxsplit=1)[1]) > 20 for line in lines)


def test_simulate_json_is_the_metrics_summary(capsys):
    code, out, _ = run_cli(capsys, "simulate", "mmc", "--json", "--no-progress", *SHORT)
    assert code == 0
    summary = json.loads(out)
    q = summary["queries"]
    assert q["submitted"] == q["completed"] + q["failed"] + q["dropped"] + q["in_flight"]
    assert q["submitted"] > 400  # 2 queries/s for 300 s
    for key in ("mean", "p50", "p95", "p99"):
        assert summary["latency_s"][key] > 0
    assert {"slo", "recall_at_k", "gpu_hours", "wall_s"} <= summary.keys()
    assert summary["duration_s"] == 300.0


def test_simulate_text_summary_names_the_scenario(capsys):
    code, out, _ = run_cli(capsys, "simulate", "tandem", "--duration", "500", "--no-progress")
    assert code == 0
    assert out.startswith("scenario tandem")
    assert "latency_s" in out and "violation_rate" in out


def test_trace_out_writes_one_jsonl_record_per_finished_query(capsys, tmp_path):
    trace = tmp_path / "timeline.jsonl"
    code, out, _ = run_cli(
        capsys, "simulate", "homelab", "--duration", "600", "--json", "--trace-out", str(trace)
    )
    assert code == 0
    summary = json.loads(out)
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    q = summary["queries"]
    assert len(records) == q["completed"] + q["failed"] + q["dropped"]
    first = records[0]
    assert first["outcome"] == "completed"
    assert [s["layer"] for s in first["stages"]][:1] == ["embedder"]
    for stage in first["stages"]:
        assert first["arrival"] <= stage["sent"] <= stage["start"] <= stage["end"] <= first["end"]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulate", "mmc", "--set", "workload.rate=-1"], "workload.rate"),
        (["simulate", "mmc", "--set", "servers=abc"], "parameters.servers"),
        (["simulate", "mmc", "--set", "nosuch=1"], "mmc (built-in): nosuch: expected a declared"),
        (["simulate", "mmc", "--set", "no_equals_sign"], "KEY=VALUE"),
        (["simulate", "escape-veloc"], "did you mean escape-velocity"),
        (["simulate", "missing-file.yaml"], "missing-file.yaml"),
        (["simulate", "mmc", "--duration", "-5"], "--duration"),
        (["simulate", "mmc", "--trace-out", "/no/such/dir/t.jsonl"], "/no/such/dir"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, argv, needle):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("swarmsim: error: ")
    assert needle in err


def test_bad_scenario_file_names_file_field_and_value(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nworkload: {kind: poisson, rate: fast}\n")
    code, _, err = run_cli(capsys, "simulate", str(bad))
    assert code == 2
    assert str(bad) in err and "workload.rate" in err and "'fast'" in err


def test_same_seed_same_json_across_processes():
    """Bit-for-bit determinism, even with different string-hash seeds per process."""
    outputs = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "experiments.cli",
                "simulate",
                "homelab",
                "--seed",
                "5",
                "--duration",
                "900",
                "--json",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        summary = json.loads(proc.stdout)
        summary.pop("wall_s")
        outputs.append(summary)
    assert outputs[0] == outputs[1]

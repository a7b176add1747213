"""``swarmsim sweep``: config errors naming the field, a grid's rows equal to the runs they
stand for, resuming after a lost row or an interruption (only the missing cells run), a
seeded search on Optuna, and the Ray backend giving the same table as the local one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.sweep import run_sweep
from experiments.sweep_config import load_sweep
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation

GRID = """
name: grid
run: simulate
fixed: {scenario: mmc, duration: 300}
grid:
  set.arrival_rate: [0.5, 0.8]
seeds: [3]
metrics: ["latency_s.*", "queries.completed"]
jobs: 2
"""
SEARCH = """
name: search
run: simulate
fixed: {scenario: homelab, duration: 120, controller: autoscaling=hpa}
search:
  space:
    param.target_utilization: {type: float, low: 0.3, high: 0.95}
    set.workload.rate: {type: categorical, choices: [0.2, 0.4]}
  trials: 3
  metric: latency_s.p99
  seed: 7
seeds: [0]
metrics: [latency_s.p99, gpu_hours]
jobs: 2
"""
TRAIN = """
name: tiny
task: autoscaling
scenario: homelab
overrides: ["warmup_s=0"]
episode_s: 120
total_timesteps: 64
n_steps: 32
batch_size: 32
net_arch: [16]
checkpoint_every: 64
eval: {seeds: 1, duration_s: 60, baselines: [static], every_steps: 0}
"""


def sweep(tmp_path: Path, text: str, name: str = "sweep.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_sweep(path)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("set.arrival_rate", "set.no_such_field"), "no_such_field"),  # checked before runs
        (("fixed: {scenario: mmc, duration: 300}", "fixed: {duration: 300}"), "fixed.scenario"),
        (("run: simulate", "run: simulat"), "run"),
        (("grid:", "griid:"), "griid"),
        (("duration: 300}", "speed: 3}"), "fixed.speed"),
        (("set.arrival_rate: [0.5, 0.8]", "duration: [60, 120]"), "fixed.duration"),
        (("seeds: [3]", "seeds: [3, 3]"), "seeds"),
        (("jobs: 2", "jobs: 0"), "jobs"),
        (("name: grid", "name: ../grid"), "name"),
    ],
)
def test_config_errors_name_the_file_and_field(tmp_path, capsys, change, field):
    path = tmp_path / "bad.yaml"
    path.write_text(GRID.replace(*change))
    assert main(["sweep", str(path), "--out", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("swarmsim: error: ") and field in err and "Traceback" not in err
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (SEARCH.replace("high: 0.95", "high: 0.1"), "search.space.param.target_utilization.high"),
        (SEARCH.replace("choices: [0.2, 0.4]", "choices: []"), "choices"),
        (SEARCH.replace("seeds: [0]", "grid: {duration: [60]}\nseeds: [0]"), "search"),
        (SEARCH.replace("run: simulate", "run: tune"), "seeds"),
        (SEARCH.replace("metric: latency_s.p99", "metric: latency_s.p98"), "search.metric"),
    ],
)
def test_search_errors_name_the_field(tmp_path, capsys, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "t.jsonl"), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert field in err and "Traceback" not in err
    if field == "search.metric":
        assert "did you mean 'latency_s.p99'" in err


def test_a_grid_gives_one_row_per_cell_equal_to_its_run(tmp_path):
    table = tmp_path / "grid.jsonl"
    outcome = run_sweep(sweep(tmp_path, GRID), table, say=lambda _: None)
    rows = lines(table)
    assert [r["args"]["set.arrival_rate"] for r in rows] == [0.5, 0.8]  # in cell order
    assert len(outcome.ran) == 2 and outcome.kept == 0
    direct = Simulation(load_scenario("mmc", ["arrival_rate=0.8", "duration_s=300.0",
                                               "warmup_s=30.0"]), seed=3).run()  # fmt: skip
    assert rows[1]["metrics"]["latency_s.p99"] == direct["latency_s"]["p99"]
    assert set(rows[1]["metrics"]) == {"latency_s.mean", "latency_s.p50", "latency_s.p95",
                                       "latency_s.p99", "queries.completed"}  # fmt: skip
    assert (tmp_path / "grid" / "config.yaml").read_text().startswith("backend: local")


def test_a_lost_row_reruns_only_its_cell(tmp_path):
    cfg, table = sweep(tmp_path, GRID), tmp_path / "grid.jsonl"
    run_sweep(cfg, table, say=lambda _: None)
    whole = table.read_text()
    first, second = whole.splitlines()
    table.write_text(first + "\n")
    said: list[str] = []
    outcome = run_sweep(cfg, table, say=said.append)
    assert outcome.ran == [json.loads(second)["key"]] and outcome.kept == 1
    assert said == [said[0]] and said[0].startswith("[2/2] set.arrival_rate=0.8 seed=3:")
    assert table.read_text() == whole
    assert run_sweep(cfg, table, say=said.append).ran == []


def test_an_interrupted_sweep_resumes_with_what_is_missing(tmp_path):
    cfg = sweep(tmp_path, GRID.replace("seeds: [3]", "seeds: [3, 4]"))
    whole = tmp_path / "whole.jsonl"
    run_sweep(cfg, whole, say=lambda _: None)

    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    table = tmp_path / "grid.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(cfg, table, say=interrupt)
    assert len(lines(table)) == 1  # the finished cell was written before the line
    with table.open("a") as out:
        out.write('{"key": "cut sho')  # a row a kill cut short: dropped on reading
    outcome = run_sweep(cfg, table, say=lambda _: None)
    assert len(outcome.ran) == 3 and outcome.kept == 1
    assert table.read_text() == whole.read_text()


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_pool_and_the_rerun_runs_the_rest(tmp_path):
    cfg = sweep(
        tmp_path,
        GRID.replace("mmc, duration: 300", "escape-velocity, duration: 300").replace(
            "set.arrival_rate: [0.5, 0.8]", "set.rate: [10, 11, 12, 13, 14, 15]"
        ),
    )
    # six cells of ~3 s on two processes: the signal lands with some still to run
    table = tmp_path / "grid.jsonl"
    root = Path(__file__).resolve().parents[2]
    argv = [sys.executable, "-m", "experiments.cli", "sweep", str(tmp_path / "sweep.yaml"),
            "--out", str(table)]  # fmt: skip
    # as from a terminal: a suite run as a background job (``cmd &``) ignores SIGINT, and the
    # command would inherit that (Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (table.is_file() and table.stat().st_size) and time.monotonic() < deadline:
            time.sleep(0.05)
        pool = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "pid="], capture_output=True,
                              text=True).stdout.split()  # fmt: skip
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130 and "swarmsim: interrupted" in err
    assert len(pool) == 2 and not [p for p in pool if Path(f"/proc/{p}").exists()]
    written = len(lines(table))
    assert 1 <= written < 6
    outcome = run_sweep(cfg, table, say=lambda _: None)
    assert len(outcome.ran) == 6 - written and outcome.kept == written


def test_a_search_runs_seeded_trials_on_optuna_and_resumes(tmp_path):
    cfg, table = sweep(tmp_path, SEARCH), tmp_path / "search.jsonl"
    outcome = run_sweep(cfg, table, say=lambda _: None)
    rows = lines(table)
    assert [r["trial"] for r in rows] == [0, 1, 2]
    values = [r["metrics"]["latency_s.p99"] for r in rows]
    assert outcome.best is not None and outcome.best["latency_s.p99"] == min(values)
    assert all(0.3 <= r["args"]["param.target_utilization"] <= 0.95 for r in rows)
    again = run_sweep(cfg, tmp_path / "again.jsonl", say=lambda _: None)
    assert (tmp_path / "again.jsonl").read_text() == table.read_text()  # seeded
    assert len(again.ran) == 3
    table.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    more = run_sweep(cfg, table, say=lambda _: None)
    assert len(more.ran) == 1 and more.kept == 2 and len(lines(table)) == 3


def test_eval_and_tune_cells_give_their_comparison_and_best_settings(tmp_path):
    text = """
name: kinds
run: eval
fixed: {scenario: homelab, duration: 60, seeds: 2, controllers: "autoscaling=static,hpa"}
grid: {set.workload.rate: [0.2]}
metrics: ["*.latency_s.p99.mean"]
"""
    run_sweep(sweep(tmp_path, text), tmp_path / "eval.jsonl", say=lambda _: None)
    (row,) = lines(tmp_path / "eval.jsonl")
    assert set(row["metrics"]) == {"controllers.autoscaling=static.latency_s.p99.mean",
                                   "controllers.hpa.latency_s.p99.mean",
                                   "paired.hpa.latency_s.p99.mean"}  # fmt: skip
    assert (tmp_path / "eval" / row["key"] / "log.txt").is_file()  # eval's lines, not ours
    text = """
name: kinds
run: tune
fixed: {scenario: homelab, duration: 60, seeds: 1, trials: 2,
        params: ["target_utilization=0.3:0.95"]}
grid: {controller: [autoscaling=hpa]}
"""
    run_sweep(sweep(tmp_path, text), tmp_path / "tune.jsonl", say=lambda _: None)
    (row,) = lines(tmp_path / "tune.jsonl")
    assert row["metrics"]["trials"] == 2 and "params.target_utilization" in row["metrics"]
    assert list((tmp_path / "tune" / row["key"]).glob("*.db"))  # the cell's own study


def test_a_train_cells_fields_are_checked_against_its_config(tmp_path, capsys):
    (tmp_path / "tiny.yaml").write_text(TRAIN)
    path = tmp_path / "train.yaml"
    path.write_text(f"name: t\nrun: train\nfixed: {{config: {tmp_path / 'tiny.yaml'}}}\n"
                    "grid: {learning_rat: [0.001]}\n")  # fmt: skip
    assert main(["sweep", str(path), "--out", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "tiny.yaml: learning_rat: expected a known field (did you mean 'learning_rate'" in err


def test_address_needs_the_ray_backend(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    assert main(["sweep", str(path), "--address", "127.0.0.1:6379"]) == 2
    assert "--address: only with --backend ray" in capsys.readouterr().err


def test_without_ray_the_local_backend_runs_and_ray_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the .[ray] extra were not installed
    path = tmp_path / "grid.yaml"
    path.write_text(GRID)
    table = str(tmp_path / "t.jsonl")
    assert main(["sweep", str(path), "--out", table, "--jobs", "1"]) == 0
    assert main(["sweep", str(path), "--out", table, "--backend", "ray"]) == 2
    assert "ray is not installed (pip install -e '.[ray]')" in capsys.readouterr().err


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the Ray tests (started as the sweep starts its own: 2 CPUs,
    a capped object store), shut down after them; a sweep joins it rather than start one."""
    ray = pytest.importorskip("ray")
    from experiments.sweep_ray import ray_session

    with ray_session(None, 2):
        yield ray
    assert not ray.is_initialized()


def test_ray_gives_the_local_table_for_a_grid_and_a_search(tmp_path, local_ray):
    for text in (GRID, SEARCH):
        cfg = sweep(tmp_path, text)
        local, on_ray = tmp_path / f"{cfg.name}-local.jsonl", tmp_path / f"{cfg.name}-ray.jsonl"
        run_sweep(cfg, local, say=lambda _: None)
        said: list[str] = []
        outcome = run_sweep(cfg, on_ray, "ray", say=said.append)
        assert len(said) == len(outcome.ran) == len(lines(local))
        assert on_ray.read_text() == local.read_text()
    assert local_ray.is_initialized()  # joined, not shut down


def test_training_cells_run_in_parallel_on_ray(tmp_path, local_ray):
    (tmp_path / "tiny.yaml").write_text(TRAIN)
    text = f"""
name: train
run: train
fixed: {{config: {tmp_path / "tiny.yaml"}}}
grid: {{learning_rate: [0.001, 0.0003]}}
metrics: ["controllers.*.latency_s.p99.mean"]
"""
    cfg, table = sweep(tmp_path, text), tmp_path / "train.jsonl"
    outcome = run_sweep(cfg, table, "ray", say=lambda _: None)
    rows = lines(table)
    assert len(rows) == 2 and all("controllers.policy.latency_s.p99.mean" in r["metrics"]
                                  for r in rows)  # fmt: skip
    runs = [tmp_path / "train" / key for key in outcome.ran]
    started = max((run / "config.yaml").stat().st_mtime for run in runs)
    ended = min((run / "eval.json").stat().st_mtime for run in runs)
    assert started < ended  # the second began before the first ended


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_cluster_address_is_joined_and_gives_the_local_table(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    import socket

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a loopback test cluster: no tokens

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    ray_cli = Path(sys.executable).with_name("ray")
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
         "--object-store-memory=200000000", "--include-dashboard=false"],
        env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        cfg = sweep(tmp_path, GRID)
        run_sweep(cfg, tmp_path / "local.jsonl", say=lambda _: None)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the head is up once its port answers
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        outcome = run_sweep(cfg, tmp_path / "cluster.jsonl", "ray", f"127.0.0.1:{port}",
                            say=lambda _: None)  # fmt: skip
        assert len(outcome.ran) == 2
        assert (tmp_path / "cluster.jsonl").read_text() == (tmp_path / "local.jsonl").read_text()
    finally:
        head.terminate()  # --block: the head stops the Ray processes it started
        head.wait(timeout=60)
        current = Path("/tmp/ray/ray_current_cluster")  # which `ray stop` would remove
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    time.sleep(2)
    left = subprocess.run(["pgrep", "-s", str(head.pid)], capture_output=True, text=True)
    assert left.stdout.split() == []

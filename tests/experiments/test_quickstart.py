"""`swarmsim quickstart` end to end with a tiny untrained llm-routing policy: two held-out
seeds of a short prefix-cache in the simulator, then two short live runs (real worker
processes over ZeroMQ) in compressed time; the report's rows, table and plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from stable_baselines3 import PPO

from controllers.store import save_policy
from envs import SwarmEnv
from experiments.cli import main
from experiments.quickstart import HEURISTICS, short_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--set", "duration_s=120", "--set", "corpus.n_vectors=2000",
         "--set", "corpus.n_queries=64"]  # fmt: skip
ROW_KEYS = {"side", "controller", "queries", "p50_s", "p99_s", "gain_vs_best_heuristic"}


@pytest.fixture
def policy(tmp_path, monkeypatch) -> Path:
    """An untrained llm-routing artifact, and a scratch working directory (no tuned settings
    and no committed policy there)."""
    env = SwarmEnv("llm-routing", "prefix-cache", episode_s=60)
    model = PPO("MlpPolicy", env, seed=0, device="cpu", n_steps=32, batch_size=32)
    directory = tmp_path / "run" / "policy"
    save_policy(model, directory, task=env.task, scenario="prefix-cache", train_config={})
    monkeypatch.chdir(tmp_path)
    return directory.parent  # a run directory: its policy/ is found


def test_quickstart_writes_sim_and_live_rows_with_the_table_first(policy, tmp_path, capsys):
    out = tmp_path / "qs"
    argv = ["quickstart", "--policy", str(policy), "--seeds", "2", "--live-queries", "30",
            "--time-scale", "0.05", *SMALL, "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    stages = [ln.split(" ")[0] for ln in captured.err.splitlines() if ln.startswith("[")]
    assert stages == [f"[{i}/5]" for i in (1, 1, 2, 2, 3, 3, 4, 4, 5, 5)]  # start, end
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert all(set(r) >= ROW_KEYS for r in rows)
    labels = ["learned", "least-outstanding", "kv-overlap@defaults", "llm-d@defaults",
              "round-robin"]  # fmt: skip
    best = report["best_heuristic"]
    assert best in labels[1:] and len(HEURISTICS) == 4
    assert [(r["side"], r["controller"]) for r in rows] == [
        *(("sim", lb) for lb in labels), ("live", "learned"), ("live", best)]  # fmt: skip
    sim_p99 = {r["controller"]: r["p99_s"] for r in rows if r["side"] == "sim"}
    assert sim_p99[best] == min(v for k, v in sim_p99.items() if k != "learned")
    for r in rows:
        assert r["p50_s"] > 0 and r["p99_s"] >= r["p50_s"] and r["recall"] is None
        assert r["p99_ci95"] is None or 0 <= r["p99_ci95"][0] <= r["p99_ci95"][1]
        if r["controller"] == best:
            assert r["gain_vs_best_heuristic"] == 0.0
        elif r["side"] == "sim" and r["gain_ci95"] is not None:
            lo, hi = r["gain_ci95"]
            assert lo <= r["gain_vs_best_heuristic"] <= hi
    live = [r for r in rows if r["side"] == "live"]
    assert all(r["queries"] >= 30 and r["seeds"] == 1 for r in live)
    assert live[0]["spec"] == str(policy / "policy")
    assert report["live_summaries"]["learned"]["controllers"]["llm-routing"]["decisions"] > 30
    assert report["time_scale"] == 0.05 and report["seeds"] == [0, 1]
    md = (out / "report.md").read_text().splitlines()
    assert md[4].startswith("| controller | side | queries | p50 s | p99 s [95%]")
    table = [ln for ln in md if " | sim | " in ln or " | live | " in ln]
    assert md[6:13] == table and md[13] == ""
    assert (out / "latency_cdf.png").stat().st_size > 10_000
    assert captured.out.startswith(md[0])


def test_without_the_committed_policy_it_says_how_to_get_one(policy, capsys):
    assert main(["quickstart", "--seeds", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no policy artifact in results/training/llm-routing-prefix-cache" in err
    assert "--train" in err


def test_help_states_the_default_and_why(capsys):
    with pytest.raises(SystemExit):
        main(["quickstart", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--pretrained" in text and "--train" in text and "(the default" in text
    assert "tens of minutes" in text and "weaker" in text


def test_train_cuts_its_config_to_a_short_run():
    cfg = short_config(500, ROOT / "experiments" / "configs" / "roles.yaml")
    assert cfg.total_timesteps == 500 and cfg.name == "roles-mix-shift-quickstart"
    assert cfg.imitate.controller == "proportional" and cfg.imitate.steps == 5_000
    assert cfg.eval.baselines == () and cfg.eval.every_steps == 0


def test_the_parsers_plain_defaults_agree_with_the_comparison():
    from experiments import quickstart_defaults as d
    from experiments.learned import COMPARISONS

    c = COMPARISONS[d.TASK]
    assert (c.scenario, c.artifact_dir) == (d.SCENARIO, d.ARTIFACT)
    assert set(d.HEURISTICS) <= set(c.heuristics)

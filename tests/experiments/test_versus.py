"""`swarmsim versus`: a policy against the tuned heuristics of its Task, paired over seeds."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from stable_baselines3 import PPO

from controllers.store import save_policy
from envs import SwarmEnv
from experiments import learned
from experiments.cli import main
from experiments.learned_stats import best_heuristic, goal_verdict, scenario_result, side_met
from experiments.stats import paired_diff_ci, t975


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """An untrained llm-routing artifact where the comparison looks for it, in a scratch
    working directory (no tuned settings there), compared with two heuristics, no trace."""
    env = SwarmEnv("llm-routing", "prefix-cache", episode_s=60)
    model = PPO("MlpPolicy", env, seed=0, device="cpu", n_steps=32, batch_size=32)
    policy = tmp_path / "results" / "training" / "llm-routing-prefix-cache" / "policy"
    save_policy(model, policy, task=env.task, scenario="prefix-cache", train_config={})
    small = dataclasses.replace(learned.COMPARISONS["llm-routing"], trace=None, no_trace="test",
                                heuristics=("round-robin", "kv-overlap"))  # fmt: skip
    monkeypatch.setitem(learned.COMPARISONS, "llm-routing", small)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_versus_pairs_the_policy_with_the_best_heuristic(trained, capsys):
    out = trained / "lvt"
    argv = ["versus", "--seeds", "2", "--set", "duration_s=240", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    arms = ("learned", "round-robin", "kv-overlap@defaults")
    runs = [(s, a) for s in ("prefix-cache", "prefix-cache-control") for a in arms]
    assert [line.split(":")[0] for line in err] == [
        f"[{i}/6] {s} {a}" for i, (s, a) in enumerate(runs, 1)
    ]
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["seeds"] == [0, 1] and result["command"].startswith("swarmsim versus")
    tasks = result["tasks"]
    assert {t: v["status"] for t, v in tasks.items()} == {
        "llm-routing": "compared", "shard-routing": "not trained yet",
        "autoscaling": "not trained yet", "role-assignment": "not trained yet"}  # fmt: skip
    notes = {a["label"]: a["note"] for a in tasks["llm-routing"]["arms"]}
    assert notes["kv-overlap@defaults"] == "(defaults: not tuned)"
    for role in ("scenario", "twin"):
        r = tasks["llm-routing"]["results"][role]
        assert r["same_arrivals"] and set(r["arms"]) == set(notes)
        lo = r["arms"]["learned"]["per_seed"]["objective"]
        be = r["arms"][r["best"]]["per_seed"]["objective"]
        means = {lb: np.mean(a["per_seed"]["objective"]) for lb, a in r["arms"].items()}
        assert means[r["best"]] == min(v for lb, v in means.items() if lb != "learned")
        d = [lo[0] - be[0], lo[1] - be[1]]
        v = r["learned_vs_best"]
        assert v["diff"]["mean"] == pytest.approx(np.mean(d))
        if d[0] != d[1]:
            half = t975(1) * abs(d[0] - d[1]) / 2  # sd of two values |a - b| / sqrt 2, / sqrt 2
            assert v["diff"]["ci95"] == pytest.approx([np.mean(d) - half, np.mean(d) + half])
        assert v["gain_pct"]["pct"] == pytest.approx(100 * (1 - np.mean(lo) / np.mean(be)))
        for arm in r["arms"].values():
            stat = arm["objective"]
            assert stat["ci95"] is None or stat["ci95"][0] >= 0
            assert arm["pooled_p99"]["ci95"][0] <= arm["pooled_p99"]["value"]
    text = out.with_suffix(".md").read_text()
    assert "Regenerate: `swarmsim versus --seeds 2" in text
    assert "| shard-routing | | | not trained yet (`results/training/routing-hot-shards`)" in text
    assert "### control twin: prefix-cache-control" in text and "Trace: none. test." in text


def test_a_named_task_without_a_policy_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    assert main(["versus", "shard-routing", "--seeds", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "results/training/routing-hot-shards" in err


def test_help_names_the_tasks_and_the_held_out_seeds(capsys):
    with pytest.raises(SystemExit) as done:
        main(["versus", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # however argparse wraps it
    assert "llm-routing, shard-routing, autoscaling" in text and "held-out seeds" in text


def test_best_heuristic_respects_the_guard_and_verdicts_need_every_condition():
    def rows(objective, side):
        return {
            s: {"objective": o, "side": x}
            for s, (o, x) in enumerate(zip(objective, side, strict=True))
        }

    runs = {"cheap": rows([5, 6], [0.2, 0.3]), "safe": rows([8, 9], [0.01, 0.02])}
    assert best_heuristic("autoscaling", runs)[0] == "safe"  # cheap breaks the 5% SLO level
    assert best_heuristic("role-assignment", runs)[0] == "cheap"  # no guard: objective only
    diff = paired_diff_ci([6.0, 7.1], [9.0, 10.0])
    gain = {"pct": 100 * (1 - 13.1 / 19), "ci95": [10.0, 50.0], "note": None}
    assert goal_verdict(diff, gain, True).startswith("met")
    assert goal_verdict(diff, gain, False) == "not met: worse on the side condition"
    assert goal_verdict(diff, {**gain, "pct": 15.0}, True) == "not met: gain below 20%"
    worse = paired_diff_ci([0.02, 0.03, 0.025], [0.0, 0.01, 0.004])
    assert side_met(worse, learned.VIOLATIONS) is False
    assert side_met(worse, learned.RECALL) is True  # more recall is no loss


def test_a_reference_bounds_the_result_but_is_never_the_best_heuristic():
    def rows(objective, side):
        return {s: {"objective": o, "side": v, "side_measured": True, "latencies": [o],
                    "metrics": {}, "submitted": 100, "wall_s": 1.0}
                for s, (o, v) in enumerate(zip(objective, side, strict=True))}  # fmt: skip

    runs = {
        "learned": rows([50, 52, 51], [0.04, 0.05, 0.04]),
        "hpa@tuned": rows([52, 53, 55], [0.04, 0.05, 0.05]),
        "oracle@tuned": rows([40, 41, 43], [0.04, 0.04, 0.05]),  # best, but a reference
    }
    r = scenario_result("autoscaling", runs, ["oracle@tuned"])
    assert r["best"] == "hpa@tuned"
    ref = r["references_vs_best"]["oracle@tuned"]
    assert ref["diff"]["mean"] == pytest.approx(-12.0)
    assert ref["gain_pct"]["pct"] == pytest.approx(100 * (1 - 124 / 160))
    assert scenario_result("autoscaling", runs)["best"] == "oracle@tuned"

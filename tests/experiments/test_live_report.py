"""The shadow and A/B report, its intervals, and the estimates shadow choices are costed by."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fakes import layer, view

from controllers.faulty import InjectedFault
from controllers.registry import make_controller
from envs.registry import make_task
from experiments.cli import main
from experiments.live_report import build, from_recording, render
from experiments.stats import proportion_ci, quantile_ci
from swarmsim.errors import SwarmError
from swarmsim.view import QueryInfo


def test_quantile_interval_covers_the_true_quantile_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_p99 = -np.log(0.01)  # of an exponential of mean 1
    covered = 0
    for _ in range(400):
        lo, hi = quantile_ci(rng.exponential(1.0, 2_000), 0.99)["ci95"]
        covered += lo <= true_p99 <= hi
    assert 0.91 <= covered / 400 <= 0.99


def test_wilson_interval_stays_in_zero_one_and_narrows_with_n():
    assert proportion_ci(0, 10)["ci95"][0] == 0.0 and proportion_ci(10, 10)["ci95"][1] == 1.0
    wide, narrow = proportion_ci(5, 10)["ci95"], proportion_ci(500, 1000)["ci95"]
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 5
    assert proportion_ci(0, 0)["rate"] is None


def arms(n: int, slow: float) -> dict[str, list]:
    rng = np.random.default_rng(1)
    a = rng.exponential(0.1, n).tolist()
    b = (rng.exponential(0.1, n) * slow).tolist()
    return {
        "arm": ["A"] * n + ["B"] * n,
        "outcome": ["completed"] * (2 * n - 3) + ["failed"] * 3,
        "latency_s": a + b,
        "recall": [1.0] * (2 * n),
    }


def test_report_separates_two_arms_that_differ_and_not_two_that_do_not():
    differ = build(arms(2_000, slow=2.0), [], "test")
    assert differ["separated"]["p50_s"] and differ["separated"]["p99_s"]
    assert differ["arms"]["B"]["failure_rate"]["rate"] == pytest.approx(3 / 2_000)
    same = build(arms(2_000, slow=1.0), [], "test")
    assert not same["separated"]["p50_s"]
    assert "intervals separate: none" not in render(differ)


def test_shadow_summary_gives_agreement_and_mean_differences():
    shadow = {"task": "shard-routing", "acting": "a", "shadow": "b", "running": True,
              "compared": 10, "agreed": 6,
              "differences": [[{"retrieval_s": 0.01}, {"retrieval_s": 0.03}]] * 4}  # fmt: skip
    report = build({"arm": [], "outcome": [], "latency_s": [], "recall": []}, [shadow], "x")
    s = report["shadow"][0]
    assert s["agreement"]["rate"] == 0.6 and s["differed"] == 4
    assert s["shadow_minus_acting"]["retrieval_s"]["mean"] == pytest.approx(0.02)
    assert "agreed on 60.0%" in render(report)


def test_report_from_a_recording_reads_queries_and_shadow_decisions(tmp_path):
    rows = [
        {"query": 0, "arrival": 0.0, "end": 0.5, "outcome": "completed", "recall": 1.0,
         "arm": "p", "stages": []},
        {"event": "startup", "agent": 0, "layer": "x", "device": "cpu", "start": 0, "end": 1},
        {"event": "decision", "task": "shard-routing", "controller": "p", "action": [1, 1],
         "shadow": {"controller": "s", "action": [1, 1]}},
        {"event": "decision", "task": "shard-routing", "controller": "p", "action": [1, 1],
         "shadow": {"controller": "s", "action": [2, 1], "estimate": {"shards": 2.0},
                    "acting_estimate": {"shards": 2.0}}},
    ]  # fmt: skip
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = from_recording(path)
    assert report["arms"]["p"]["finished"] == 1
    assert report["shadow"][0]["agreement"]["n"] == 2 and report["shadow"][0]["differed"] == 1
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    with pytest.raises(SwarmError, match=r"rec.jsonl:2: not JSON"):
        from_recording(path)


def test_report_command_refuses_a_source_that_is_neither_file_nor_address(capsys):
    assert main(["live", "report", "no-such-file"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "neither a recording file nor a tcp:// address" in err


def test_estimates_cost_scaling_and_role_moves_from_the_view():
    scaling = make_task("autoscaling")
    v = view([{"id": 0}], layers={"retriever": layer("retriever", running=2, starting=1)})
    scaling.observe(v)
    hold = scaling.heuristic(v)
    assert scaling.estimate(v, hold) == {"replicas": 3.0}
    roles = make_task("role-assignment")
    assert roles.estimate(v, roles.heuristic(v)) == {"moves": 0.0}


def test_faulty_controller_decides_as_its_heuristic_then_fails_as_asked():
    task = make_task("shard-routing")
    obs = np.zeros(task.observation_space.shape, dtype=np.float32)
    faulty = make_controller("shard-routing", "faulty", mode="raise", after=2)
    heuristic = make_controller("shard-routing", "least-outstanding")
    for _ in range(2):
        np.testing.assert_array_equal(faulty.act(obs), heuristic.act(obs))
    with pytest.raises(InjectedFault):
        faulty.act(obs)
    invalid = make_controller("shard-routing", "faulty", mode="invalid")
    assert invalid.act(obs).shape != task.action_space.shape
    with pytest.raises(ValueError, match="mode"):
        make_controller("autoscaling", "faulty", mode="explode")


def test_against_replays_logged_observations_through_another_controller(tmp_path, capsys):
    task = make_task("shard-routing")
    acting = make_controller("shard-routing", "least-outstanding")
    rows = []
    for i in range(20):  # replica 0 of shard 0 busier on odd decisions
        agents = [{"id": 0, "shard": 0, "in_flight": i % 2 * 3}, {"id": 1, "shard": 0},
                  {"id": 2, "shard": 1}]  # fmt: skip
        q = QueryInfo(i, 0, "small", 100, 10, np.array([0.5, 0.5], dtype=np.float32))
        obs = task.observe(view(agents, n_shards=2, query=q))
        action = acting.act(obs).tolist()
        rows.append({"event": "decision", "task": "shard-routing", "controller": "lo",
                     "obs": obs.astype(float).tolist(), "action": action})  # fmt: skip
    path = tmp_path / "rec.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["live", "report", str(path), "--against", "shard-routing=least-outstanding",
                 "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["agreement"]["rate"] == 1.0
    assert main(["live", "report", str(path), "--against", "search-all-shards", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["agreement"]["rate"] == 0.5  # load-blind
    assert main(["live", "report", str(path), "--against", "autoscaling=hpa"]) == 2
    assert "no logged autoscaling decisions" in capsys.readouterr().err

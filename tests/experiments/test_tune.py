"""``swarmsim tune``: a seeded, resumable Optuna study per heuristic, its best settings written
where ``NAME@tuned`` finds them, objectives that count failed queries, and one-line errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import optuna
import pytest

from controllers.spec import resolve
from experiments.cli import main
from experiments.objectives import OBJECTIVES, penalised_latencies
from experiments.tune import best
from swarmsim.errors import SwarmError
from swarmsim.scenario_files import load_scenario

TUNE = [
    "tune",
    "homelab",
    "--controller",
    "autoscaling=hpa",
    "--seeds",
    "1",
    "--param",
    "target_utilization=0.3:0.95",
    "--duration",
    "60",
    "--max-violation",
    "1.0",
]
STUDY = "homelab/autoscaling/hpa"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def stored_trials(tmp_path) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{tmp_path / 'results/tuning/homelab.db'}"
    return optuna.load_study(study_name=STUDY, storage=storage).trials


def test_tune_writes_the_study_and_the_best_settings_then_resumes(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *TUNE, "--trials", "3")
    assert code == 0, err
    assert err.count("\ntrial ") == 3 and "trial 3/3" in err  # one line per trial
    first = [t.params for t in stored_trials(tmp_path)]
    assert first[0] == {"target_utilization": 0.7}  # the defaults go first
    entry = json.loads((tmp_path / "results/tuned/homelab.json").read_text())
    hpa = entry["tuned"]["autoscaling"]["hpa"]
    assert hpa["trials"] == 3 and hpa["seeds"] == [1000] and hpa["objective"] == "gpu_hours"
    assert hpa["value"] <= hpa["default_value"] and hpa["guard"]["level"] == 1.0
    assert hpa["guard"]["met"] and all("excess" in t.constraints for t in stored_trials(tmp_path))
    assert hpa["command"].startswith("swarmsim tune homelab --controller autoscaling=hpa")
    assert "autoscaling=hpa@tuned on homelab" in out

    code, _, err = run_cli(capsys, *TUNE, "--trials", "5")
    assert code == 0, err
    assert "3 trials stored, 2 to run" in err and err.count("\ntrial ") == 2
    trials = stored_trials(tmp_path)
    assert [t.params for t in trials[:3]] == first and len(trials) == 5
    assert len({t.params["target_utilization"] for t in trials}) == 5  # nothing redone
    entry = json.loads((tmp_path / "results/tuned/homelab.json").read_text())
    tuned = entry["tuned"]["autoscaling"]["hpa"]
    assert tuned["trials"] == 5

    arm = resolve("hpa@tuned", "homelab")
    assert arm.task == "autoscaling" and arm.label == "hpa@tuned"
    assert arm.build().target_utilization == tuned["params"]["target_utilization"]
    assert resolve("hpa@tuned:target_utilization=0.5", "homelab").build().target_utilization == 0.5
    code, out, err = run_cli(
        capsys, "simulate", "homelab", "--controller", "hpa@tuned", "--duration", "60", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["controllers"]["autoscaling"]["name"] == "hpa@tuned"

    code, _, err = run_cli(capsys, *TUNE, "--trials", "5", "--seeds", "2")
    assert code == 2 and err.count("\n") == 1 and "was run with other" in err


def test_a_missing_tuned_file_names_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SwarmError) as err:
        resolve("kpa@tuned", "cloud-burst")
    assert "results/tuned/cloud-burst.json" in str(err.value)
    assert "run `swarmsim tune cloud-burst --controller autoscaling=kpa`" in str(err.value)
    with pytest.raises(SwarmError, match="belong to a scenario"):
        resolve("kpa@tuned")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--controller", "hpa", "--param", "target_utilization=0.3"], "KEY=LO:HI"),
        (["--controller", "hpa", "--param", "target_utilization=0.9:0.3"], "low must be < high"),
        (["--controller", "hpa", "--param", "nosuch=0:1"], "nosuch"),
        (["--controller", "relevance-threshold", "--param", "p=0:1"], "p must be in (0, 1]"),
        (["--controller", "autoscaling=static"], "no tunable parameters declared"),
        (["--controller", "hpa", "--min-recall", "0.9"], "--min-recall"),
        (["--controller", "hpx"], "did you mean hpa"),
        (["--controller", "hpa:tolerance=0"], "[TASK=]NAME"),
        (["--controller", "hpa", "--seeds", "0"], "--seeds"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "tune", "homelab", "--trials", "1", "--duration", "30", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("swarmsim: error: ")
    assert needle in err


def test_failed_dropped_and_overdue_queries_count_at_the_penalty_latency():
    scenario = load_scenario("homelab")  # no deadline: the penalty is 4 x the SLO
    sim = SimpleNamespace(metrics=SimpleNamespace(latencies=[1.0, 2.0], late_failures=2))
    summary = {"slo": {"overdue_in_flight": 1}}
    penalty = 4 * scenario.slo_latency_s
    assert penalised_latencies(scenario, sim, summary) == [1.0, 2.0] + [penalty] * 3
    sim.metrics.latencies = [1.0, 2 * penalty]  # never faster than the slowest completed query
    assert penalised_latencies(scenario, sim, summary)[-1] == 2 * penalty
    assert OBJECTIVES["llm-routing"].measure(scenario, sim, summary) == 2 * penalty


def test_the_best_trial_keeps_the_guard_before_the_objective():
    def trial(number, value, excess):
        return SimpleNamespace(number=number, value=value, constraints={"excess": excess})

    cheap_but_late, within = trial(0, 1.0, 0.02), trial(1, 3.0, -0.01)
    assert best([cheap_but_late, within, trial(2, 2.0, 0.0)]).number == 2
    assert best([cheap_but_late, trial(3, 0.5, 0.05)]).number == 0  # none within: least outside


def test_tuned_settings_of_a_changed_scenario_are_refused(tmp_path, monkeypatch):
    from swarmsim.scenario_files import load_scenario, scenario_digest

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "results" / "tuned" / "homelab.json"
    path.parent.mkdir(parents=True)
    entry = {"params": {"target_utilization": 0.5}, "overrides": ["rate=3"],
             "command": "swarmsim tune homelab --controller autoscaling=hpa"}  # fmt: skip
    entry["scenario_sha256"] = scenario_digest(load_scenario("homelab", ["rate=3"]))
    path.write_text(json.dumps({"scenario": "homelab", "tuned": {"autoscaling": {"hpa": entry}}}))
    assert resolve("hpa@tuned", "homelab").build().target_utilization == 0.5  # unchanged
    entry["scenario_sha256"] = scenario_digest(load_scenario("homelab", ["rate=4"]))
    path.write_text(json.dumps({"scenario": "homelab", "tuned": {"autoscaling": {"hpa": entry}}}))
    with pytest.raises(SwarmError, match=r"homelab changed since autoscaling=hpa was tuned .*"
                       r"re-run `swarmsim tune homelab --controller autoscaling=hpa`"):  # fmt: skip
        resolve("hpa@tuned", "homelab")


def test_the_scenario_digest_ignores_fields_left_at_their_defaults():
    from swarmsim.scenario_files import load_scenario, scenario_digest

    base = load_scenario("homelab")
    assert scenario_digest(base) == scenario_digest(load_scenario("homelab", ["faults=[]"]))
    assert scenario_digest(base) != scenario_digest(load_scenario("homelab", ["rate=9"]))

"""The live-against-sim ranking check: its verdicts and when two sides agree."""

from __future__ import annotations

import pytest

from experiments.live_versus import agree, main, spec_of, verdict
from experiments.stats import paired_diff_ci


def test_the_verdict_follows_the_paired_interval():
    assert verdict(paired_diff_ci([1.0, 1.1, 0.9], [2.0, 2.2, 1.9])) == "learned better"
    assert verdict(paired_diff_ci([3.0, 3.1, 2.9], [2.0, 2.2, 1.9])) == "learned worse"
    assert verdict(paired_diff_ci([2.1, 1.9, 2.0], [2.0, 2.0, 2.0])) == "tie"
    assert verdict(paired_diff_ci([2.0, 2.0], [2.0, 2.0])) == "tie"


def test_rankings_disagree_only_when_the_sides_contradict():
    assert agree("learned better", "learned better") and agree("tie", "learned worse")
    assert not agree("learned better", "learned worse")


def test_a_heuristic_spec_is_plain_or_its_tuned_settings(tmp_path, monkeypatch):
    assert spec_of("shard-routing", "least-outstanding") == "shard-routing=least-outstanding"
    monkeypatch.chdir(tmp_path)  # no results/tuned here: a one-line error naming the command
    with pytest.raises(Exception, match="swarmsim tune prefix-cache"):
        spec_of("llm-routing", "kv-overlap@tuned")


def test_one_seed_is_refused_before_anything_runs(capsys):
    with pytest.raises(SystemExit):
        main(["llm-routing", "--seeds", "1"])
    assert "at least 2" in capsys.readouterr().err


def test_an_unknown_task_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["autoscaling", "--seeds", "2"])
    assert "autoscaling not one of shard-routing, llm-routing" in capsys.readouterr().err

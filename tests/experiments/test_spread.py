"""`swarmsim spread`: arms over common seeds, paired differences to the best, the spread."""

from __future__ import annotations

import json
import math

import pytest

from experiments.cli import main
from experiments.spread import PLANS
from experiments.spread_stats import headline_block, interval
from experiments.stats import t975


def test_spread_writes_json_and_markdown_with_paired_differences(tmp_path, capsys):
    out = tmp_path / "spread"
    argv = ["spread", "prefix-cache", "--seeds", "2", "--arms", "round-robin,kv-overlap",
            "--set", "duration_s=240", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(":")[0] for line in err] == [
        "[1/2] prefix-cache round-robin",
        "[2/2] prefix-cache kv-overlap",
    ]
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["seeds"] == [0, 1] and result["command"].startswith("swarmsim spread prefix")
    sc = result["scenarios"]["prefix-cache"]
    assert sc["task"] == "llm-routing" and set(sc["arms"]) == {"round-robin", "kv-overlap"}
    assert sc["same_arrivals"]  # common random numbers: one submitted count per seed
    head = sc["headline"]["latency_s.p99"]
    best, other = head["best"], ({"round-robin", "kv-overlap"} - {head["best"]}).pop()
    x = sc["arms"][other]["per_seed"]["latency_s.p99"]
    b = sc["arms"][best]["per_seed"]["latency_s.p99"]
    d = [x[0] - b[0], x[1] - b[1]]
    half = t975(1) * abs(d[0] - d[1]) / math.sqrt(2) / math.sqrt(2)  # sd of two = |a-b|/sqrt 2
    diff = head["paired_to_best"][other]
    assert diff["mean"] == pytest.approx(sum(d) / 2)
    assert diff["ci95"] == pytest.approx([sum(d) / 2 - half, sum(d) / 2 + half])
    assert head["spread"] == pytest.approx(sum(x) / sum(b))
    for arm in sc["arms"].values():
        for stat in arm["metrics"].values():
            assert stat["ci95"][0] >= 0
    text = out.with_suffix(".md").read_text()
    assert "Regenerate: `swarmsim spread prefix-cache --seeds 2" in text
    assert "## prefix-cache (llm-routing" in text and "identical across arms" in text


def test_intervals_of_non_negative_metrics_are_clipped_to_their_range():
    rate = interval([0.0, 0.0, 0.3], "slo.violation_rate")  # plain t: [-0.33, 0.53]
    assert rate["mean"] == pytest.approx(0.1) and rate["ci95"][0] == 0.0
    assert interval([0.95, 1.0, 1.0], "kv_cache.hit_rate")["ci95"][1] == 1.0
    assert interval([1.0, 9.0], "latency_s.p99")["ci95"][0] == 0.0


def test_headline_leaves_out_unsensible_arms_and_compares_with_do_nothing():
    plan = PLANS["shard-routing"]
    arms = {
        "random": {0: 90.0, 1: 110.0},  # worst, but not sensible
        "search-all-shards": {0: 4.0, 1: 6.0},
        "least-outstanding": {0: 2.0, 1: 2.5},
    }
    h = headline_block("latency_s.p99", arms, plan)
    assert (h["best"], h["worst"]) == ("least-outstanding", "search-all-shards")
    assert h["spread"] == pytest.approx(5.0 / 2.25)
    assert not h["best_is_baseline"]
    assert h["paired_to_best"]["search-all-shards"]["mean"] == pytest.approx(2.75)
    assert h["paired_to_best"]["random"]["mean"] == pytest.approx(97.75)

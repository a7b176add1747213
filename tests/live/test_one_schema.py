"""Sim and live speak one schema: the same summary keys and the same per-query row keys.

Runs homelab for a few seconds live (real processes, real ZeroMQ) and in the simulator, each
recording its timeline, and compares what they wrote line by line.
"""

from __future__ import annotations

import json

from live.config import LiveConfig
from live.runner import LiveRun, run_live
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation
from swarmsim.summary import SUMMARY_KEYS

OVERRIDES = ("rate=4",)


def _query_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if "event" not in r]


def test_sim_and_live_summaries_and_rows_have_the_same_keys(tmp_path):
    record = tmp_path / "live.jsonl"
    live = run_live(
        LiveRun(
            "homelab",
            overrides=OVERRIDES,
            duration_s=4,
            workers=8,
            config=LiveConfig(time_scale=0.05),
            record=record,
        )
    )
    sim = Simulation(load_scenario("homelab", [*OVERRIDES, "duration_s=60", "warmup_s=0"]), seed=0,
                     record_timeline=True)  # fmt: skip
    simulated = sim.run()
    assert set(live) == set(simulated) == SUMMARY_KEYS
    for key in ("queries", "latency_s", "slo", "messages", "failures"):
        assert set(live[key]) == set(simulated[key]), key
    assert (live["mode"], simulated["mode"]) == ("live", "sim")
    assert set(live["replicas"]) == set(simulated["replicas"])  # the same layers
    for name in live["replicas"]:
        assert set(live["replicas"][name]) == set(simulated["replicas"][name])

    live_rows = _query_rows([json.loads(line) for line in record.read_text().splitlines()])
    sim_rows = _query_rows(sim.recording())
    assert live_rows and sim_rows
    assert {frozenset(r) for r in live_rows} == {frozenset(r) for r in sim_rows}
    live_stage = {frozenset(st) for r in live_rows for st in r["stages"]}
    sim_stage = {frozenset(st) for r in sim_rows for st in r["stages"]}
    assert live_stage == sim_stage
    outcomes = {"completed", "failed", "dropped"}
    assert {r["outcome"] for r in live_rows} <= outcomes
    assert {r["outcome"] for r in sim_rows} <= outcomes

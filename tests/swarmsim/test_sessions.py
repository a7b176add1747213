"""Multi-turn sessions sent closed-loop (a think time after the answer) or by timestamp."""

from __future__ import annotations

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from swarmsim.errors import ConfigError, TraceError
from swarmsim.prefix import PrefixConfig, Prefixes
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation
from swarmsim.summary import SUMMARY_KEYS
from swarmsim.traces import read_trace

CLOSED = ["workload.sessions.mode=closed-loop", "workload.sessions.think=fixed"]


def _timeline(overrides: list[str], seed: int = 0) -> tuple[Simulation, list[dict]]:
    """A prefix-cache run with ``overrides``: the simulation and its queries' rows by id."""
    scenario = load_scenario("prefix-cache", ["duration_s=120", "warmup_s=0", *overrides])
    sim = Simulation(scenario, seed=seed, record_timeline=True)
    sim.run()
    rows = sorted((r for r in sim.recording() if "query" in r), key=lambda r: r["query"])
    return sim, rows


def test_a_next_turn_is_sent_the_think_time_after_the_answer() -> None:
    """One conversation, think time fixed at 2 s: its first turn at t = 2, and each next turn
    exactly 2 s after the previous answer, so turns never overlap."""
    sim, rows = _timeline([*CLOSED, "workload.sessions.think_s=2.0", "workload.prefix.sessions=1"])
    assert sim.summary(0.0)["sessions"] == "closed-loop"
    assert len(rows) >= 10 and rows[0]["arrival"] == 2.0
    for before, after in pairwise(rows):
        assert before["outcome"] == "completed"
        assert after["arrival"] == pytest.approx(before["end"] + 2.0, abs=1e-9)


def test_the_number_of_open_sessions_stays_constant() -> None:
    """Three conversations of two turns, no think time: every conversation always has one turn
    in flight, so at any moment exactly three queries are; a finished conversation is replaced
    at once (turns sent = 2 per replaced conversation + the open ones' turns so far)."""
    sim, rows = _timeline([*CLOSED, "workload.sessions.think_s=0", "workload.prefix.sessions=3",
                           "workload.prefix.turns=2"])  # fmt: skip
    in_flight = [q.arrival for q in sim.coordinator.active.values()]  # not in the recording
    ends = np.array([r["end"] for r in rows] + [np.inf] * len(in_flight))
    arrivals = np.array([r["arrival"] for r in rows] + in_flight)
    for t in np.random.default_rng(0).uniform(0.0, sim.env.now, 50):
        assert int(np.sum((arrivals <= t) & (t < ends))) == 3
    assert sim.closed_loop is not None and sim.closed_loop.prefixes is not None
    prefixes = sim.closed_loop.prefixes
    replaced = prefixes.started - 3
    assert replaced > 10
    assert len(rows) + len(in_flight) == 2 * replaced + sum(s.turn for s in prefixes.open)


def test_a_failed_turn_still_lets_its_session_go_on() -> None:
    """A deadline shorter than any answer: every turn fails, and each next turn still follows
    1 s after the failure is known."""
    overrides = [*CLOSED, "workload.sessions.think_s=1.0", "workload.prefix.sessions=1",
                 "deadline_s=0.01"]  # fmt: skip
    _, rows = _timeline(overrides)
    assert len(rows) > 10 and all(r["outcome"] == "failed" for r in rows)
    for before, after in pairwise(rows):
        assert after["arrival"] == pytest.approx(before["end"] + 1.0, abs=1e-9)


def test_closed_loop_is_deterministic_and_timestamp_mode_unchanged() -> None:
    """Same seed, same closed-loop run; ``sessions.mode: timestamp`` is the default exactly."""
    overrides = ["workload.sessions.mode=closed-loop", "workload.sessions.think=lognormal"]
    assert _timeline(overrides, seed=4)[1] == _timeline(overrides, seed=4)[1]
    assert _timeline(["workload.sessions.mode=timestamp"])[1] == _timeline([])[1]


def test_the_summary_says_how_sessions_ran() -> None:
    """None without sessions, timestamp for a prefix's sessions, closed-loop when asked."""
    assert "sessions" in SUMMARY_KEYS

    def mode(ref: str, overrides: list[str]) -> str | None:
        scenario = load_scenario(ref, ["duration_s=20", "warmup_s=0", *overrides])
        return Simulation(scenario, seed=0).run()["sessions"]

    assert mode("homelab", []) is None
    assert mode("prefix-cache", []) == "timestamp"
    assert mode("prefix-cache", ["workload.sessions.mode=closed-loop"]) == "closed-loop"


def test_an_answer_joins_the_next_turns_prompt() -> None:
    """Blocks of 4 tokens, no system prompt or documents: a 9-token turn (2 blocks) answered
    in 8 tokens (2 blocks); the next 4-token turn's prompt is 21 tokens, 2 + 2 + 1 blocks."""
    p = Prefixes(PrefixConfig(block_tokens=4, turns=3), np.random.default_rng(0))
    tokens, first = p.prompt(9, answer_tokens=8)
    assert (tokens, len(first)) == (9, 2)
    tokens, second = p.prompt(4)
    assert (tokens, len(second)) == (21, 5) and second[:2] == first


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("workload.sessions.mode=closed", "workload.sessions.mode"),
        ("workload.sessions.think=trace", "workload.sessions.think"),
        ("workload.sessions.think_s=-1", "workload.sessions.think_s"),
        ("workload.sessions.think_sigma=-1", "workload.sessions.think_sigma"),
    ],
)
def test_config_errors_name_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_scenario("prefix-cache", [override])
    assert err.value.field == field


def test_closed_loop_needs_sessions_to_loop() -> None:
    """homelab has no prefix section: nothing says how many sessions there are."""
    with pytest.raises(ConfigError) as err:
        load_scenario("homelab", ["workload.sessions.mode=closed-loop"])
    assert err.value.field == "workload.sessions.mode"


def _trace(tmp_path: Path) -> Path:
    """Two conversations, a and b, with gaps of 5 s (a), 5 s (b) and 25 s (a)."""
    rows = [(0, "a"), (1, "b"), (5, "a"), (6, "b"), (30, "a")]
    path = tmp_path / "sessions.jsonl"
    path.write_text("".join(json.dumps({"timestamp": t, "input_tokens": 500,
                    "output_tokens": 50, "conv": c}) + "\n" for t, c in rows))  # fmt: skip
    return path


def test_a_trace_names_its_sessions(tmp_path: Path) -> None:
    table = read_trace(_trace(tmp_path), columns={"session": "conv"})
    assert table.sessions is not None and table.sessions.tolist() == [0, 1, 0, 1, 0]
    assert read_trace(_trace(tmp_path)).sessions is None  # "conv" is no known session name


def test_a_trace_replays_closed_loop_with_its_own_gaps(tmp_path: Path) -> None:
    """Each session's first request at its timestamp, each next one the trace's gap within the
    session after the previous answer."""
    trace = [f"workload.trace.path={_trace(tmp_path)}", "workload.kind=trace",
             "workload.trace.columns.session=conv", "warmup_s=0", "duration_s=100"]  # fmt: skip
    closed = ["workload.sessions.mode=closed-loop", "workload.sessions.think=trace"]
    sim = Simulation(load_scenario("homelab", [*trace, *closed]), seed=0, record_timeline=True)
    assert sim.run()["sessions"] == "closed-loop"
    rows = sorted((r for r in sim.recording() if "query" in r), key=lambda r: r["arrival"])
    by_arrival = [r["arrival"] for r in rows]
    assert by_arrival[:2] == [0.0, 1.0]
    a0, b0, a1, b1, a2 = rows
    assert a1["arrival"] == pytest.approx(a0["end"] + 5.0)
    assert b1["arrival"] == pytest.approx(b0["end"] + 5.0)
    assert a2["arrival"] == pytest.approx(a1["end"] + 25.0)
    with pytest.raises(TraceError, match="session column"):
        Simulation(load_scenario("homelab", [*trace[:2], "warmup_s=0", *closed]), seed=0)

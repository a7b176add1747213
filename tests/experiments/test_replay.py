"""`swarmsim replay` and `simulate --controller`: traces drive the simulator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from experiments.cli import main

ROWS = 40  # one request every 0.5 s, alternating small and large prompts


@pytest.fixture()
def trace(tmp_path) -> Path:
    path = tmp_path / "trace.csv"
    lines = ["ts,prompt,answer"]
    lines += [f"{i * 0.5},{300 if i % 2 else 5000},{64}" for i in range(ROWS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _summary(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


MAP = ["--map", "ts=timestamp", "--map", "prompt=input_tokens", "--map", "answer=output_tokens"]


def test_replay_serves_every_request_of_the_window(trace, capsys):
    s = _summary(capsys, ["replay", str(trace), *MAP, "--json", "--no-progress"])
    assert s["queries"]["submitted"] == ROWS and s["queries"]["in_flight"] == 0
    s = _summary(capsys, ["replay", str(trace), *MAP, "--window", "5:15", "--json"])
    assert s["queries"]["submitted"] == 20  # t in [5, 15): rows 10..29
    s = _summary(capsys, ["replay", str(trace), *MAP, "--rate-scale", "0.5", "--json"])
    assert s["queries"]["submitted"] == ROWS // 2


def test_time_scale_compresses_the_replay(trace, capsys):
    slow = _summary(capsys, ["replay", str(trace), *MAP, "--json"])
    fast = _summary(capsys, ["replay", str(trace), *MAP, "--time-scale", "0.5", "--json"])
    assert fast["duration_s"] == pytest.approx(slow["duration_s"] - 0.5 * (ROWS - 1) * 0.5)


def test_replay_is_deterministic_and_takes_controllers(trace, capsys):
    argv = ["replay", str(trace), *MAP, "--controller", "autoscaling=hpa", "--json"]
    a, b = _summary(capsys, argv), _summary(capsys, argv)
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    assert a["controllers"]["autoscaling"]["name"] == "autoscaling=hpa"


def test_simulate_takes_controllers(capsys):
    argv = ["simulate", "homelab", "--duration", "120", "--json"]
    s = _summary(capsys, [*argv, "--controller", "shard-routing=round-robin"])
    assert s["controllers"]["shard-routing"]["name"] == "shard-routing=round-robin"
    assert main([*argv, "--controller", "hpa", "--controller", "autoscaling=static"]) == 2
    assert "one controller per Task" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--map", "ts=time"], "--map"),
        (["--window", "10:5"], "--window"),
        (["--window", "abc"], "--window"),
        (["--rate-scale", "0"], "--rate-scale"),
    ],
)
def test_bad_replay_options_name_the_option(trace, capsys, extra, words):
    assert main(["replay", str(trace), *MAP, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_missing_trace_file(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "none.csv")]) == 2
    assert "no such trace file" in capsys.readouterr().err


def test_live_run_replays_the_same_trace(trace, tmp_path, capsys):
    """Real processes over ZeroMQ serve the trace's requests, as the simulator does; the
    recording holds every query and each worker's start-up."""
    record = tmp_path / "live.jsonl"
    argv = ["live", "run", "homelab", "--trace", str(trace), "--trace-time-scale", "0.1",
            "--time-scale", "0", "--json", "--record", str(record)]  # fmt: skip
    for item in MAP:
        argv.append(item.replace("--map", "--trace-map"))
    assert main(argv) == 0
    out, err = capsys.readouterr()
    s = json.loads(out)
    trace_line, *lines = err.splitlines()  # off a terminal: where the run is, as it goes
    assert trace_line.startswith("swarmsim: trace trace.csv: 40 requests")
    head = re.fullmatch(r"(live run: homelab, ([\d.]+) s of load) \.\.\.", lines[0])
    assert head is not None, lines[0]
    ticks = [float(re.search(r"([\d.]+)/[\d.]+ s of load", ln).group(1)) for ln in lines[1:-1]]
    assert 1 <= len(ticks) <= 9 and ticks == sorted(ticks) and ticks[-1] < float(head[2])
    assert lines[-1].startswith(f"{head[1]}: {ROWS}/{ROWS} queries completed, p99 ")
    assert s["mode"] == "live"
    assert s["queries"]["submitted"] == ROWS and s["queries"]["completed"] == ROWS
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    events = [r for r in rows if "event" in r]
    assert len(rows) - len(events) == ROWS
    assert len(events) == sum(s["replicas"][layer]["running"] for layer in s["replicas"])
    assert all(e["event"] == "startup" and e["end"] > e["start"] for e in events)


def test_a_recording_replays_as_a_trace(tmp_path, capsys):
    """simulate --trace-out (or live run --record) is itself a trace: the same arrivals."""
    record = tmp_path / "rec.jsonl"
    first = _summary(capsys, ["simulate", "cloud-burst", "--duration", "600", "--controller",
                              "hpa", "--trace-out", str(record), "--json"])  # fmt: skip
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    queries = [r for r in rows if "event" not in r]  # lifecycle rows are skipped as requests
    assert len(queries) < len(rows)
    # a recording holds the queries that ended: all submitted but those still in flight
    assert len(queries) == first["queries"]["submitted"] - first["queries"]["in_flight"]
    again = _summary(capsys, ["replay", str(record), "--scenario", "cloud-burst", "--json"])
    assert again["queries"]["submitted"] == len(queries)


def test_replay_sends_a_csv_traces_sessions_closed_loop(tmp_path, capsys):
    """Two conversations with string ids in a CSV; closed-loop sends a session's second request
    the trace's 10 s gap after its first answer, so it arrives later than by timestamp."""
    path = tmp_path / "chats.csv"
    path.write_text("ts,prompt,answer,chat\n0,300,64,x\n1,300,64,y\n10,300,64,x\n11,300,64,y\n")
    argv = ["replay", str(path), *MAP, "--map", "chat=session", "--json"]
    out = tmp_path / "t.jsonl"
    s = _summary(capsys, [*argv, "--sessions", "closed-loop", "--trace-out", str(out)])
    assert s["sessions"] == "closed-loop" and s["queries"]["completed"] == 4
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    queries = sorted((r for r in rows if "query" in r), key=lambda r: r["arrival"])
    assert [r["arrival"] for r in queries[:2]] == [0.0, 1.0]
    expected = sorted(r["end"] + 10.0 for r in queries[:2])
    assert [r["arrival"] for r in queries[2:]] == pytest.approx(expected)
    assert _summary(capsys, [*argv, "--sessions", "timestamp"])["sessions"] == "timestamp"


def _jsonl(path: Path, times: list[float]) -> Path:
    rows = [{"timestamp": t, "input_length": 100, "output_length": 10} for t in times]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("times", "read"),
    [
        ([i * 250 for i in range(200)], "49.8 s, 4 req/s (timestamps in ms"),  # 0.004/s in s
        ([i * 250_000 for i in range(200)], "49.8 s, 4 req/s (timestamps in us"),
        ([i * 0.25 for i in range(200)], "49.8 s, 4 req/s (timestamps in s"),  # fractional
        ([i * 2 for i in range(200)], "6.6 min, 0.5 req/s (timestamps in s"),  # plausible
    ],
)
def test_the_time_unit_is_detected_and_said(tmp_path, capsys, times, read):
    trace = _jsonl(tmp_path / "t.jsonl", times)
    assert main(["replay", str(trace), "--scenario", "mmc", "--window", "0:30", "--json"]) == 0
    err = capsys.readouterr().err
    assert f"t.jsonl: 200 requests over {read}, detected; --time-unit to choose); replaying" in err


def test_an_explicit_time_unit_wins_and_an_empty_window_is_said(tmp_path, capsys):
    trace = _jsonl(tmp_path / "t.jsonl", [i * 250 for i in range(200)])
    main(["replay", str(trace), "--scenario", "mmc", "--time-unit", "s", "--window", "0:300",
          "--json"])  # fmt: skip
    err = capsys.readouterr().err
    assert "200 requests over 13.8 h" in err and "(timestamps in s, as given)" in err
    assert "replaying 2 requests" in err  # the wrong unit is obvious at once

"""Operating a running swarm: attach, swap, shadow, A/B split, detach and automatic detach,
through the operator's control socket (real processes, real ZeroMQ, real faiss).

Each test starts its own swarm with ``live.runner.serve`` in a thread (as ``live up`` does)
and drives it with the ``swarmsim live`` commands; one test runs ``swarmsim live up`` itself
and stops it with Ctrl-C (test_shutdown: SIGTERM, and live run). Emulated LLM stages run at
a twentieth of the profile's time.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from procs import children, gone, stop_group

from controllers.registry import make_controller
from experiments.cli import main
from experiments.live_report import from_recording, from_swarm
from live.attachment import stable_fraction
from live.config import LiveConfig
from live.errors import LiveError
from live.operator import request
from live.runner import LiveRun, serve
from live.shutdown import SHUTDOWN_S

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "results" / "training" / "routing-escape-velocity" / "policy"
HEARTBEAT_S = 0.3
FAST = LiveConfig(time_scale=0.05, route_log_fraction=1.0)


@contextlib.contextmanager
def swarm(tmp_path: Path, rate: float = 8, controllers: tuple[str, ...] = ()) -> Iterator[dict]:
    """A swarm serving the homelab load at ``rate`` q/s, recording to ``tmp_path``; yields
    its addresses, and after the block its ``summary`` and ``rows`` (the recording)."""
    record = tmp_path / "swarm.jsonl"
    beat = f"failures.heartbeat_interval_s={HEARTBEAT_S}"
    run = LiveRun("homelab", overrides=(f"rate={rate}", beat), controllers=controllers,
                  workers=8, record=record, config=FAST)  # fmt: skip
    announced: queue.Queue = queue.Queue()
    stop = threading.Event()
    out: dict = {}

    def target() -> None:
        try:
            out["summary"] = serve(run, announced.put, stop=stop.is_set)
        except BaseException as err:  # surfaced to the test below
            announced.put(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    up = announced.get(timeout=90)
    if isinstance(up, BaseException):
        raise up
    try:
        yield {**up, "out": out}
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the swarm did not shut down"
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    out["rows"] = rows
    out["queries"] = [r for r in rows if "event" not in r]
    out["decisions"] = [r for r in rows if r.get("event") == "decision"]


def cli(*args: str) -> int:
    return main(["live", *args])


def wait_for(condition, timeout_s: float, step_s: float = 0.1) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step_s)
    return False


def status(address: str) -> dict:
    return request(address, "STATUS")


def no_query_lost(out: dict) -> None:
    """Every accepted query has one final row, completed or failed with a reason, and only
    the shutdown fails queries."""
    summary, queries = out["summary"], out["queries"]
    assert len(queries) == summary["queries"]["submitted"] > 0
    assert len({q["query"] for q in queries}) == len(queries)
    failed = [q for q in queries if q["outcome"] != "completed"]
    assert all(q["outcome"] == "failed" and q["reason"] == "shutdown" for q in failed), failed


def test_attach_swap_detach_on_a_running_swarm_loses_no_query(tmp_path, capsys):
    with swarm(tmp_path) as up:
        addr = up["control"]
        assert cli("attach", addr, "--controller", f"shard-routing={POLICY}") == 0
        assert "verified" in capsys.readouterr().out
        assert wait_for(lambda: status(addr)["controllers"]["shard-routing"]["decisions"] >= 5, 20)
        assert cli("attach", addr, "--controller", "shard-routing=round-robin") == 0  # swap
        c = status(addr)["controllers"]["shard-routing"]
        assert c["acting"]["name"] == "round-robin" and c["acting"]["sha256"] is None
        before = c["decisions"]
        assert wait_for(lambda: status(addr)["controllers"]["shard-routing"]["decisions"]
                        >= before + 5, 20)  # fmt: skip
        assert cli("detach", addr, "shard-routing") == 0
        time.sleep(1.0)  # served on the heuristic again
        st = status(addr)
        assert st["controllers"]["shard-routing"]["acting"] is None
        changes = [(e["change"], e["controller"]) for e in st["events"]]
        assert changes == [("attached", str(POLICY)), ("replaced", str(POLICY)),
                           ("attached", "round-robin"), ("detached", "round-robin")]  # fmt: skip
    out = up["out"]
    no_query_lost(out)
    arms = {q.get("arm", "") for q in out["queries"]}
    assert {str(POLICY), "round-robin"} <= arms  # both controllers routed queries
    controller_rows = [r["change"] for r in out["rows"] if r.get("event") == "controller"]
    assert controller_rows == ["attached", "replaced", "attached", "detached"]


def test_an_artifact_for_another_task_version_or_weights_is_refused(tmp_path, capsys):
    stale = tmp_path / "stale"
    shutil.copytree(POLICY, stale)
    manifest = json.loads((stale / "manifest.json").read_text())
    manifest["task"]["version"] += 1
    (stale / "manifest.json").write_text(json.dumps(manifest))
    with swarm(tmp_path, rate=2) as up:
        addr = up["control"]
        # the command checks first, where the operator runs: one line, no traceback
        assert cli("attach", addr, "--controller", f"autoscaling={POLICY}") == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("swarmsim: error:")
        assert "a shard-routing policy, not autoscaling" in err
        assert "\n" not in err
        assert cli("attach", addr, "--controller", f"shard-routing={stale}") == 2
        assert "retrain" in capsys.readouterr().err
        # the coordinator verifies again before the first decision, whoever sends the request
        with pytest.raises(LiveError, match=r"attach refused: .*not autoscaling"):
            request(addr, "ATTACH", {"task": "autoscaling", "controller": str(POLICY)})
        with pytest.raises(LiveError, match=r"attach refused: .*retrain"):
            request(addr, "ATTACH", {"task": "shard-routing", "controller": str(stale)})
        with pytest.raises(LiveError, match="artifact changed"):
            request(addr, "ATTACH", {"task": "shard-routing", "controller": str(POLICY),
                                     "sha256": "0" * 64})  # fmt: skip
        assert status(addr)["controllers"] == {}  # nothing was attached
        assert cli("detach", addr, "shard-routing") == 2
        assert "no controller is attached" in capsys.readouterr().err
        assert wait_for(lambda: status(addr)["queries"]["completed"] >= 2, 20)  # still serving
    no_query_lost(up["out"])


def test_shadow_decides_on_the_same_observations_and_applies_nothing(tmp_path):
    with swarm(tmp_path, rate=10) as up:
        addr = up["control"]
        assert cli("attach", addr, "--controller", "shard-routing=least-outstanding") == 0
        shadow = "shard-routing=relevance-threshold"
        assert cli("attach", addr, "--controller", shadow, "--shadow") == 0
        assert wait_for(lambda: from_swarm(addr)["shadow"][0]["agreement"]["n"] >= 30, 30)
        live = from_swarm(addr)["shadow"][0]
    out = up["out"]
    shadowed = [d for d in out["decisions"] if "shadow" in d]
    assert len(shadowed) >= 30
    acting = make_controller("shard-routing", "least-outstanding")
    for d in shadowed:  # what was applied is exactly the acting controller's choice
        assert d["controller"] == "least-outstanding" and d["arm"] == "acting"
        np.testing.assert_array_equal(d["action"], acting.act(np.asarray(d["obs"])))
    differed = [d for d in shadowed if d["shadow"]["action"] != d["action"]]
    assert differed, "the shadow never differed: the test shows nothing"
    assert all("estimate" in d["shadow"] for d in differed)
    assert {q.get("arm") for q in out["queries"] if q.get("arm")} == {"least-outstanding"}
    assert live["shadow"] == "relevance-threshold" and live["differed"] > 0
    recorded = from_recording(tmp_path / "swarm.jsonl")["shadow"][0]
    assert recorded["agreement"]["n"] == len(shadowed)
    no_query_lost(out)


def test_split_half_sends_about_half_the_queries_to_each_arm(tmp_path, capsys):
    with swarm(tmp_path, rate=20) as up:
        addr = up["control"]
        assert cli("attach", addr, "--controller", f"shard-routing={POLICY}") == 0
        assert cli("attach", addr, "--controller", "shard-routing=round-robin", "--split",
                   "0.5") == 0  # fmt: skip
        assert wait_for(lambda: status(addr)["queries"]["completed"] >= 120, 40)
        assert cli("detach", addr, "shard-routing", "--candidate") == 0
        report = from_swarm(addr)
        capsys.readouterr()
        assert cli("report", addr) == 0
        text = capsys.readouterr().out
    out = up["out"]
    events = {(r["change"], r["controller"]): r["t"] for r in out["rows"] if "change" in r}
    on, off = events["attached", "round-robin"], events["detached", "round-robin"]
    split = [d for d in out["decisions"] if on < d["t"] < off]
    candidate = [d for d in split if d["controller"] == "round-robin"]
    assert len(split) >= 100
    assert abs(len(candidate) / len(split) - 0.5) < 4 * np.sqrt(0.25 / len(split))
    for d in split:  # each query's arm follows the stable hash of its id
        expected = "round-robin" if stable_fraction(d["query"]) < 0.5 else str(POLICY)
        assert d["controller"] == expected, d["query"]
    for arm in ("round-robin", str(POLICY)):  # the live report, while serving
        assert report["arms"][arm]["p99_s"]["value"] is not None
        assert report["arms"][arm]["recall_at_k"]["n"] > 0
    recorded = from_recording(tmp_path / "swarm.jsonl")["arms"]  # every query, once finished
    assert recorded["round-robin"]["finished"] == len(candidate)
    assert recorded[str(POLICY)]["finished"] >= len(split) - len(candidate)
    assert "round-robin" in text and "p99 s" in text
    no_query_lost(out)


def test_a_failing_controller_is_benched_within_three_heartbeats(tmp_path):
    spec = "shard-routing=faulty:mode=raise:after=5"
    with swarm(tmp_path, rate=10) as up:
        addr = up["control"]
        assert cli("attach", addr, "--controller", spec) == 0

        def benched() -> bool:
            return bool(
                (status(addr)["controllers"]["shard-routing"]["acting"] or {}).get("benched")
            )

        assert wait_for(benched, 20)
        st = status(addr)
        time.sleep(1.0)  # still serving, on the heuristic
    event = st["events"][-1]
    assert event["change"] == "benched" and "raised" in event["detail"]
    out = up["out"]
    failed = [d for d in out["decisions"] if d["fallback"] == "raised"]
    assert failed and all(d["controller"] == "faulty:mode=raise:after=5" for d in failed)
    assert event["t"] - failed[0]["t"] <= 3 * HEARTBEAT_S
    after = [d for d in out["decisions"] if d["t"] > event["t"]]
    assert after and all(d["fallback"] == "benched" for d in after)  # the heuristic's choices
    no_query_lost(out)


def test_live_up_serves_until_ctrl_c_then_answers_everything_and_is_gone_within_2_s(tmp_path):
    cmd = [sys.executable, "-m", "experiments.cli", "live", "up", "homelab", "--workers", "8",
           "--set", "rate=4", "--time-scale", "0.05", "--bind", "tcp://127.0.0.1:0", "--json",
           "--record", str(tmp_path / "up.jsonl")]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        up = json.loads(proc.stdout.readline())["up"]
        assert wait_for(lambda: status(up["control"])["queries"]["completed"] >= 3, 30)
        started = children(proc.pid)
        assert len(started) == 9  # 8 workers and the load generator
        stopped = stop_group(proc, signal.SIGINT, whole_group=True)  # Ctrl-C: the whole group
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert stopped.orphans == [] and all(gone(pid) for pid in started)
    assert stopped.exit_s <= SHUTDOWN_S, f"{stopped.exit_s:.2f} s to stop"
    assert stopped.returncode == 0
    summary = json.loads(stopped.out.strip().splitlines()[-1])["summary"]
    q = summary["queries"]
    assert q["submitted"] == q["completed"] + q["failed"] + q["dropped"]
    assert set(summary["outcomes"]) <= {"shutdown"}  # only what was still in flight at the end
    assert summary["failures"]["agents"] == 0  # the workers outlived the key press
    client = summary["client"]  # every query the load generator sent was answered
    assert client["sent"] == sum(client["answers"].values()) >= q["completed"]
    assert set(client["reasons"]) <= {"shutdown"}
    with pytest.raises(LiveError, match="no swarm answered"):
        request(up["control"], "STATUS", timeout_s=0.5)

"""SIGTERM or Ctrl-C to a swarm (``swarmsim live run``, ``swarmsim live up``): every process
gone within ``SHUTDOWN_S``, every query its client sent answered (completed, or failed with
reason shutdown), no process left behind. Each swarm runs in its own session, so its process
group is exactly its processes; Ctrl-C is SIGINT to the whole group, as a terminal sends it.
``test_operate`` stops ``live up`` with Ctrl-C; here ``live up`` with SIGTERM (its own
client checking the answers) and ``live run`` with Ctrl-C, and each with each 20 times (slow).
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from procs import Stopped, children, group, stop_group

from live import sockets
from live.load import queries
from live.operator import request
from live.protocol import DATA, Message
from live.shutdown import SHUTDOWN_S
from swarmsim.scenario_files import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SWARM = ["homelab", "--workers", "8", "--set", "rate=4", "--json"]
SIGNALS = {"ctrl-c": (signal.SIGINT, True), "sigterm": (signal.SIGTERM, False)}


def _serving(proc: subprocess.Popen, verb: str, timeout_s: float = 90) -> None:
    """Wait until the swarm serves: its load generator (started once every worker reported
    READY; live up announces itself then) has made its ZeroMQ context, whose I/O thread is
    its second thread: it is past its imports and sending."""
    if verb == "up":
        assert "up" in json.loads(proc.stdout.readline())
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        for pid in children(proc.pid):
            with contextlib.suppress(OSError):  # gone while looked at
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"live.load" in cmdline and len(list(Path(f"/proc/{pid}/task").iterdir())) > 1:
                    return
        time.sleep(0.05)
    pytest.fail(f"live {verb} did not start serving in {timeout_s} s")


def _signalled(verb: str, sig: int, whole_group: bool, time_scale: float, serve_s: float):
    """Start ``swarmsim live VERB``, let it serve ``serve_s``, signal it; how it went."""
    args = (
        ["--duration", "600", "--no-progress"] if verb == "run" else ["--bind", "tcp://127.0.0.1:0"]
    )
    cmd = [sys.executable, "-m", "experiments.cli", "live", verb, *SWARM,
           "--time-scale", str(time_scale), *args]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        _serving(proc, verb)
        time.sleep(serve_s)
        return stop_group(proc, sig, whole_group)
    finally:
        if group(proc.pid):
            stop_group(proc, signal.SIGKILL, True, timeout_s=5)


def _summary(stopped: Stopped) -> dict:
    out = stopped.out
    body = json.loads(out[out.index("{") :])  # live run: the summary; live up: its last line
    return body.get("summary", body)


def test_live_up_stopped_by_sigterm_tells_each_client_its_query_failed_and_is_gone():
    # no load generator: this test is the client; at twice the profile's times its queries
    # are all still in flight when the signal comes
    cmd = [sys.executable, "-m", "experiments.cli", "live", "up", *SWARM, "--no-load",
           "--time-scale", "2", "--bind", "tcp://127.0.0.1:0"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    ctx = zmq.Context()
    try:
        up = json.loads(proc.stdout.readline())["up"]
        sock = sockets.dealer(ctx, up["queries"], b"client-test")
        arrivals = queries(load_scenario("homelab"), 0, 10)
        for i in range(4):
            sockets.send(sock, Message(DATA, "QUERY", str(i), "client", next(arrivals)[1]))
        end = time.monotonic() + 10
        while request(up["control"], "STATUS")["active"] < 4 and time.monotonic() < end:
            time.sleep(0.05)
        stopped = stop_group(proc, signal.SIGTERM, whole_group=False)  # as a supervisor does
        answers = [sockets.recv(sock, routed=False)[1] for _ in range(4) if sock.poll(100)]
    finally:
        ctx.destroy(linger=0)
        if group(proc.pid):
            stop_group(proc, signal.SIGKILL, True, timeout_s=5)
    assert stopped.orphans == []
    assert stopped.exit_s <= SHUTDOWN_S, f"{stopped.exit_s:.2f} s to stop"
    assert stopped.returncode == 0
    assert sorted(a.task for a in answers) == ["0", "1", "2", "3"]  # answered, not silence
    assert {(a.action, a.payload["reason"]) for a in answers} == {("FAILED", "shutdown")}
    assert _summary(stopped)["outcomes"] == {"shutdown": 4}


def test_live_run_stopped_by_ctrl_c_answers_every_query_and_is_gone():
    stopped = _signalled("run", signal.SIGINT, True, time_scale=0.05, serve_s=1.0)
    assert stopped.orphans == []
    assert stopped.exit_s <= SHUTDOWN_S, f"{stopped.exit_s:.2f} s to stop"
    assert stopped.returncode == 130  # interrupted, after printing what ran
    summary = _summary(stopped)
    q, client = summary["queries"], summary["client"]
    assert q["submitted"] == q["completed"] + q["failed"] + q["dropped"]
    assert set(summary["outcomes"]) <= {"shutdown"}
    assert client["sent"] == sum(client["answers"].values())  # each query its one answer
    assert set(client["reasons"]) <= {"shutdown"}


@pytest.mark.slow
@pytest.mark.timeout(900)  # 20 runs of about 9 s each, longer on a loaded machine
@pytest.mark.parametrize("verb", ["run", "up"])
@pytest.mark.parametrize("how", list(SIGNALS))
def test_twenty_signalled_swarms_each_go_within_2_s_and_leave_no_process(verb, how):
    sig, whole_group = SIGNALS[how]
    times, orphans = [], []
    for _ in range(20):
        stopped = _signalled(verb, sig, whole_group, time_scale=0.05, serve_s=1.0)
        times.append(stopped.exit_s)
        orphans += stopped.orphans
        summary = _summary(stopped)
        client = summary["client"]  # every query sent answered, none admitted unsent
        assert client["sent"] == sum(client["answers"].values()) >= summary["queries"]["submitted"]
    print(f"live {verb} {how}: max {max(times):.3f} s, mean {sum(times) / 20:.3f} s over 20 "
          f"runs, {len(orphans)} orphans")  # fmt: skip
    assert orphans == []
    assert max(times) <= SHUTDOWN_S

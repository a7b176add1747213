"""``--synth openai`` end to end: a swarm whose synthesizers call an OpenAI-compatible
endpoint over HTTP. The endpoint is a stub process (``tests/openai_stub.py``) that forwards
to a second swarm's front door, or answers with an error, late, or not at all (killed
mid-call). Real processes, real sockets, real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from live.client import Client, estimate_tokens
from live.config import LiveConfig
from live.operator import request
from live.runner import LiveRun, serving

ROOT = Path(__file__).resolve().parents[2]
FAST = LiveConfig(time_scale=0.05)
QUESTION = "How does a prefix cache shorten prefill?"
TIMEOUT_S = 1.0  # the backend's --openai-timeout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stub:
    """The stub endpoint's process on a fixed port, which can be killed and restarted."""

    def __init__(self, forward: str) -> None:
        self.port, self.forward = free_port(), forward
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        cmd = [sys.executable, str(ROOT / "tests" / "openai_stub.py"), str(self.port), self.forward]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                httpx.get(f"{self.url}/_calls", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the stub endpoint did not start")

    def mode(self, **kw: object) -> None:
        httpx.post(f"{self.url}/_mode", json=kw, timeout=5).raise_for_status()

    def calls(self) -> int:
        return int(httpx.get(f"{self.url}/_calls", timeout=5).json()["calls"])

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def swarms() -> Iterator[dict]:
    """Swarm A (emulated synthesis, with a front door), the stub forwarding to it, and
    swarm B whose synthesizers call the stub."""
    a_run = LiveRun("homelab", workers=8, config=FAST, http="127.0.0.1:0")
    with serving(a_run) as a:
        stub = Stub(f"{a['http']}")
        try:
            b_run = LiveRun("homelab", workers=8, config=FAST, synth_backend="openai",
                            openai_url=stub.url, openai_model="routine",
                            openai_timeout_s=TIMEOUT_S)  # fmt: skip
            with serving(b_run) as b:
                yield {"a": a, "b": b, "stub": stub}
        finally:
            stub.kill()


@pytest.fixture
def stub(swarms) -> Iterator[Stub]:
    stub = swarms["stub"]
    if stub.proc is None or stub.proc.poll() is not None:
        stub.start()
    stub.mode()
    yield stub


def ask(swarms: dict, who: str = "b", **kw):
    with Client(swarms[who]["queries"], timeout_s=30) as client:
        return client.ask(QUESTION, **kw)


def test_a_real_llm_answer_with_its_own_token_counts(swarms, stub):
    b = ask(swarms, max_tokens=64)
    a = ask(swarms, "a", max_tokens=64)  # swarm A asked directly: what B's endpoint returns
    assert b.ok, b
    assert b.answer == a.answer  # B's synthesizer answered with A's front door's answer
    # usage replaced the claimed counts: B's prompt holds the retrieved context too
    assert b.input_tokens > estimate_tokens(QUESTION) and b.output_tokens == 64
    assert {s["layer"] for s in b.stages} >= {"embedder", "retriever", "synth-small"}


def test_a_5xx_is_retried_then_the_query_fails_with_the_endpoint_s_message(swarms, stub):
    stub.mode(status=500)
    before = stub.calls()
    b = ask(swarms)
    assert b.outcome == "failed" and b.reason == "worker_error"
    assert "HTTP 500: stub says 500" in b.detail
    assert stub.calls() - before == 3  # the scenario's failures.max_attempts


def test_a_4xx_fails_at_once_without_retrying(swarms, stub):
    stub.mode(status=404)
    before = stub.calls()
    b = ask(swarms)
    assert b.outcome == "failed" and "HTTP 404" in b.detail
    assert stub.calls() - before == 1


def test_an_endpoint_slower_than_the_timeout_fails_the_query_in_bounded_time(swarms, stub):
    stub.mode(sleep_s=5)
    t0 = time.monotonic()
    b = ask(swarms)
    assert b.outcome == "failed" and f"no answer within {TIMEOUT_S:.2f} s" in b.detail
    assert time.monotonic() - t0 < 3 * TIMEOUT_S + 3  # three tries, not three 5 s waits


def test_an_endpoint_that_disappears_mid_call_fails_the_query_and_the_swarm_serves_on(swarms, stub):
    stub.mode(sleep_s=3)
    out: list = []
    asking = threading.Thread(target=lambda: out.append(ask(swarms)))
    asking.start()
    end = time.monotonic() + 10
    while stub.calls() == 0 and time.monotonic() < end:
        time.sleep(0.05)
    stub.kill()  # mid-call: the connection drops, then every retry is refused
    asking.join(timeout=30)
    assert out and out[0].outcome == "failed" and "unreachable" in out[0].detail, out
    status = request(swarms["b"]["control"], "STATUS")
    assert all(layer["healthy"] > 0 for layer in status["layers"].values())
    stub.start()  # the endpoint comes back: so does serving
    assert ask(swarms).ok

"""The OpenAI-compatible front door (``live up --http``) and the native client, on a real
swarm (worker processes over ZeroMQ, real faiss), driven by the official ``openai`` client,
by plain ``httpx`` and by ``live.client.Client``. Emulated LLM stages at a twentieth of the
profile's time."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from experiments.cli import main
from live.client import Answer, Client, QueryRefused, SwarmUnavailable
from live.config import LiveConfig
from live.frontdoor import BodyLimit, FrontDoor, FrontDoorConfig, OpenAIError, catalog
from live.runner import LiveRun, serving
from swarmsim.scenario_files import load_scenario

FAST = LiveConfig(time_scale=0.05)
QUESTION = "Which shard holds the document about prefix caching?"


@pytest.fixture(scope="module")
def up() -> Iterator[dict]:
    """A homelab swarm with no load generator, power-of-two routing and a front door on a
    free port."""
    run = LiveRun("homelab", workers=8, config=FAST, http="127.0.0.1:0", http_timeout_s=20,
                  controllers=("shard-routing=power-of-two",))  # fmt: skip
    with serving(run) as addresses:
        yield addresses


@pytest.fixture
def ai(up) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{up['http']}/v1", api_key="unused", max_retries=0)


def test_chat_completion_with_the_openai_client_runs_the_rag_pipeline(ai):
    resp = ai.chat.completions.create(
        model="routine", messages=[{"role": "system", "content": "Be brief."},
                                   {"role": "user", "content": QUESTION}], max_tokens=40,
    )  # fmt: skip
    assert resp.object == "chat.completion" and resp.model == "routine"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content.startswith("documents ")  # synthetic corpus
    assert resp.usage.completion_tokens == 40 and resp.usage.prompt_tokens > 0
    ext = resp.model_extra["swarmsim"]
    assert ext["outcome"] == "completed" and len(ext["docs"]) == 10
    assert 0 <= ext["recall"] <= 1
    layers = {s["layer"] for s in ext["stages"]}
    assert {"embedder", "retriever", "synth-small", "evaluator"} <= layers
    assert all(s["service_s"] >= 0 and s["wait_s"] >= 0 for s in ext["stages"])
    assert ext["controllers"] == {"shard-routing": "shard-routing=power-of-two"}  # its label


def test_the_same_question_streamed_gives_the_same_answer_and_usage_last(ai):
    whole = ai.chat.completions.create(
        model="routine", messages=[{"role": "user", "content": QUESTION}], max_tokens=30
    )
    stream = ai.chat.completions.create(
        model="routine", messages=[{"role": "user", "content": QUESTION}], max_tokens=30,
        stream=True, stream_options={"include_usage": True},
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 30 and chunks[-1].choices == []


def test_completions_and_models(ai):
    assert sorted(m.id for m in ai.models.list()) == ["complex", "routine"]
    resp = ai.completions.create(model="complex", prompt="Explain retrieval.", max_tokens=12)
    assert resp.object == "text_completion" and resp.choices[0].text
    assert resp.usage.completion_tokens == 12
    layers = {s["layer"] for s in resp.model_extra["swarmsim"]["stages"]}
    assert "synth-large" in layers and "synth-small" not in layers  # the class's tier
    streamed = ai.completions.create(
        model="complex", prompt="Explain retrieval.", max_tokens=12, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed if c.choices) == resp.choices[0].text


def test_bad_requests_get_openai_errors_and_status_codes(up, ai):
    with pytest.raises(openai.NotFoundError) as err:
        ai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as err:
        ai.chat.completions.create(model="routine", messages=[{"role": "user", "content": "x"}],
                                   max_tokens=10**6)  # fmt: skip
    assert "max_tokens" in str(err.value)
    url = f"{up['http']}/v1/chat/completions"
    cases = {
        "messages": {"model": "routine", "messages": []},
        "messages.0.role": {"model": "routine", "messages": [{"role": "robot", "content": "x"}]},
        "n": {"model": "routine", "messages": [{"role": "user", "content": "x"}], "n": 3},
        "messages.0.content.0.type": {"model": "routine", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
    }  # fmt: skip
    for param, body in cases.items():
        r = httpx.post(url, json=body, timeout=10)
        assert r.status_code == 400, (param, r.text)
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, r.text
    long_prompt = {"model": "complex", "messages": [{"role": "system", "content": "w " * 200_000},
                                                    {"role": "user", "content": "x"}]}  # fmt: skip
    r = httpx.post(url, json=long_prompt, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = httpx.post(url, content=b"x" * (1024 * 1024 + 1), timeout=10)
    assert r.status_code == 413


def test_an_oversized_body_or_a_slow_one_holds_no_worker(up):
    """A client that claims a huge body, trickles one, says nothing or never ends its headers
    is cut off; honest requests are served meanwhile."""
    host, port = up["http"].removeprefix("http://").rsplit(":", 1)
    idle = socket.create_connection((host, int(port)))  # says nothing
    trickle = socket.create_connection((host, int(port)))  # never finishes its headers
    trickle.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
    slow = socket.create_connection((host, int(port)))
    slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/json\r\nContent-Length: 900000\r\n\r\n{")  # fmt: skip
    with socket.create_connection((host, int(port)), timeout=10) as huge:
        huge.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: "
                     b"1000000000000\r\n\r\n{}")  # fmt: skip
        assert huge.recv(4096).startswith(b"HTTP/1.1 413 ")
    t0 = time.monotonic()
    body = {"model": "routine", "messages": [{"role": "user", "content": QUESTION}]}
    ok = httpx.post(f"{up['http']}/v1/chat/completions", json=body, timeout=15)
    assert ok.status_code == 200 and time.monotonic() - t0 < 10
    slow.settimeout(15)
    assert slow.recv(4096).startswith(b"HTTP/1.1 408 ")  # cut off at BODY_TIMEOUT_S
    slow.close()
    idle.settimeout(15)
    trickle.settimeout(15)
    assert idle.recv(4096) == b"" and trickle.recv(4096) == b""  # closed at HEADER_TIMEOUT_S
    idle.close()
    trickle.close()


def test_body_limit_cuts_off_a_trickled_body(monkeypatch):
    monkeypatch.setattr("live.frontdoor.BODY_TIMEOUT_S", 0.2)
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:  # reads the body to its end
        more = True
        while more:
            more = (await receive()).get("more_body", False)

    async def receive() -> dict:
        await asyncio.sleep(0.05)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "headers": []}
    asyncio.run(BodyLimit(app, 1000)(scope, receive, send))
    assert sent[0]["status"] == 408
    sent.clear()
    asyncio.run(BodyLimit(app, 1)(scope, receive, send))  # 2 bytes in 0.1 s
    assert sent[0]["status"] == 413


def test_healthz_reports_every_layer_healthy(up):
    r = httpx.get(f"{up['http']}/healthz", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert set(r.json()["healthy"]) == {"embedder", "retriever", "synth-small", "synth-large",
                                        "evaluator"}  # fmt: skip


def test_the_native_client_asks_text_or_tokens_and_reports_refusals(up):
    with Client(up["queries"], timeout_s=20) as client:
        a = client.ask(QUESTION)
        assert a.ok and len(a.docs) == 10 and a.answer.startswith("documents ")
        b = client.ask(tokens=300, pool=3, max_tokens=20)
        assert b.ok and b.input_tokens == 300 and b.output_tokens == 20
        with pytest.raises(QueryRefused, match="input_tokens"):
            client.ask(tokens=10**7)
        with pytest.raises(QueryRefused, match="text"):
            client.ask("x" * 20_000)
    t0 = time.monotonic()
    with Client("tcp://127.0.0.1:1", timeout_s=0.5) as nobody, pytest.raises(SwarmUnavailable):
        nobody.ask("anyone?")
    assert time.monotonic() - t0 < 2


def test_live_ask_prints_the_answer_or_one_line(up, capsys):
    assert main(["live", "ask", up["queries"], QUESTION, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["outcome"] == "completed" and answer["docs"]
    assert main(["live", "ask", "tcp://127.0.0.1:1", "hello", "--timeout", "0.3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no answer from tcp://127.0.0.1:1" in err[0]


class Scripted:
    """An AsyncClient stand-in that answers every query with one scripted Answer."""

    def __init__(self, answer: Answer | Exception) -> None:
        self.answer = answer

    async def ask(self, payload: dict, timeout_s: float, wait_s: float | None = None) -> Answer:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("outcome", "reason", "status", "code"),
    [
        ("dropped", "backlog_full", 503, "backlog_full"),
        ("dropped", "admission", 503, "admission"),
        ("failed", "deadline", 504, "timeout"),
        ("failed", "shutdown", 503, "shutdown"),
        ("failed", "worker_error", 500, "worker_error"),
    ],
)
def test_an_unanswered_query_maps_to_its_http_status(outcome, reason, status, code):
    answer = Answer("h0", outcome, reason, "", 0.1, detail="HTTP 500: boom")
    door = FrontDoor(Scripted(answer), catalog(load_scenario("homelab")), FrontDoorConfig(),
                     health=None)  # fmt: skip
    with pytest.raises(OpenAIError) as err:
        asyncio.run(door.run({}))
    assert (err.value.status, err.value.code) == (status, code)
    assert reason in err.value.message and "HTTP 500: boom" in err.value.message
    if status == 503:
        assert err.value.response().headers["retry-after"] == "1"


def test_no_swarm_behind_the_door_is_503():
    door = FrontDoor(Scripted(SwarmUnavailable("nobody")), {}, FrontDoorConfig(), health=None)
    with pytest.raises(OpenAIError) as err:
        asyncio.run(door.run({}))
    assert (err.value.status, err.value.code) == (503, "swarm_unavailable")

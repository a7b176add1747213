"""The swarm's OpenAI-compatible HTTP front door (``swarmsim live up --http HOST:PORT``).

``POST /v1/chat/completions`` and ``/v1/completions`` take a question (the last user
message, or the prompt), send it to the swarm as one free-text query over the native port
(``live.client.AsyncClient``) and answer in the OpenAI response shape: the swarm's answer,
``usage`` (the prompt's tokens estimated at 4 characters each and ``max_tokens``, or a real
LLM backend's own counts) and a ``swarmsim`` field (the query's outcome, retrieved document
ids, recall, each stage's layer, worker, wait and service times, the controllers acting).
``"stream": true`` sends the answer as server-sent events; the swarm answers a query whole,
so the stream starts when the answer is there and a failed query still gets its status.
``GET /v1/models`` lists the scenario's query classes as models; ``GET /healthz`` says
whether every layer of the swarm has a healthy worker.

Every request is bounded where it is admitted: the body's size (413) and the time it takes
to arrive (408), the time its headers take (the connection is closed), the number and length
of messages, ``max_tokens`` and the prompt within the model's context window
(``live.limits``), one choice; a request past the swarm's deadline gets 504; connections
beyond ``max_connections`` get 503 from uvicorn. Errors are OpenAI's
shape, ``{"error": {"message", "type", "param", "code"}}``.

Run by ``live up`` as ``python -m live.frontdoor --queries ADDR --control ADDR --bind
HOST:PORT --scenario REF``; it prints one JSON line with its URL once it listens, and exits
when its parent does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from swarmsim.profiles import load_profiles
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario

from .client import Answer, AsyncClient, QueryRefused, SwarmUnavailable, estimate_tokens
from .errors import LiveError
from .limits import MAX_OUTPUT_TOKENS, MAX_QUESTION_CHARS, context_window, tier_models

MAX_BODY_BYTES = 1024 * 1024  # a request body; OpenAI-sized chats are far smaller
MAX_MESSAGES = 256
MAX_PROMPT_CHARS = 512 * 1024  # all messages' text together
BODY_TIMEOUT_S = 10.0  # a body that takes longer to arrive is cut off (a slow-loris client)
HEADER_TIMEOUT_S = 10.0  # a connection whose request headers take longer is closed
GRACE_S = 2.0  # past the swarm's deadline, how long its answer is still awaited
HEALTH_CACHE_S = 1.0  # /healthz asks the coordinator at most this often


@dataclass(frozen=True)
class FrontDoorConfig:
    """Where the front door listens and how it bounds requests."""

    host: str = "127.0.0.1"
    port: int = 8000
    timeout_s: float = 30.0  # a query's deadline in the swarm
    max_connections: int = 256  # concurrent connections uvicorn serves; beyond: 503
    max_body_bytes: int = MAX_BODY_BYTES


@dataclass(frozen=True)
class Model:
    """One query class of the scenario, served as an OpenAI model."""

    id: str
    qclass: int
    window: int  # prompt + completion tokens
    default_tokens: int  # max_tokens when a request gives none: the class's median output


def catalog(scenario: Scenario) -> dict[str, Model]:
    """The scenario's query classes as models, by id (the class name)."""
    tiers = tier_models(scenario)
    profiles = load_profiles()
    out = {}
    for i, c in enumerate(scenario.workload.classes):
        window = context_window(profiles, tiers.get(c.model, ""))
        out[c.name] = Model(c.name, i, window, int(c.output_tokens.median))
    return out


def error_body(
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class OpenAIError(Exception):
    """A request the front door answers with an OpenAI error body."""

    def __init__(
        self, status: int, message: str, kind: str, param: str | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = (
            status,
            message,
            kind,
            param,
            code or None,
        )

    def response(self) -> JSONResponse:
        body = error_body(self.message, self.kind, self.param, self.code)
        headers = {"Retry-After": "1"} if self.status in (429, 503) else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def invalid(message: str, param: str | None = None, code: str = "") -> OpenAIError:
    return OpenAIError(400, message, "invalid_request_error", param, code)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...: accepted, unused
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class Generation(BaseModel):
    """What both endpoints share. Sampling fields (temperature, top_p, ...) are accepted
    and ignored, as a server whose model decides them."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=256)
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1)


class ChatRequest(Generation):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_completion_tokens: int | None = Field(default=None, ge=1)


class CompletionRequest(Generation):
    prompt: str | list[str] = Field(min_length=1)


def _text(content: str | list[TextPart] | None, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for i, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise invalid(f"only text content is served, not {part.type!r}", f"{where}.{i}.type")
        parts.append(part.text)
    return "\n".join(parts)


def chat_question(req: ChatRequest) -> tuple[str, str]:
    """(the last user message, all messages' text) of a chat request."""
    texts = [_text(m.content, f"messages.{i}.content") for i, m in enumerate(req.messages)]
    users = [t for m, t in zip(req.messages, texts, strict=True) if m.role == "user"]
    if not users or not users[-1].strip():
        raise invalid("the messages hold no user message with text", "messages")
    return users[-1], "\n".join(texts)


def completion_question(req: CompletionRequest) -> str:
    prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    if len(prompts) != 1 or not prompts[0].strip():
        raise invalid("one non-empty prompt per request is served", "prompt")
    return prompts[0]


class FrontDoor:
    """The HTTP endpoints over one ``AsyncClient`` of the swarm's query port."""

    def __init__(
        self,
        client: AsyncClient,
        models: dict[str, Model],
        cfg: FrontDoorConfig,
        health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
    ) -> None:
        self.client, self.models, self.cfg, self.health = client, models, cfg, health
        self.created = int(time.time())

    def model(self, name: str) -> Model:
        model = self.models.get(name)
        if model is None:
            raise OpenAIError(404, f"The model {name!r} does not exist; GET /v1/models lists "
                              f"{sorted(self.models)}", "invalid_request_error", "model",
                              "model_not_found")  # fmt: skip
        return model

    def payload(
        self, model: Model, question: str, prompt: str, max_tokens: int | None
    ) -> dict[str, Any]:
        """The QUERY payload of a request, within the model's bounds (400 if not)."""
        if len(question) > MAX_QUESTION_CHARS:
            raise invalid(f"the question is {len(question)} characters; at most "
                          f"{MAX_QUESTION_CHARS} are served", "messages")  # fmt: skip
        if len(prompt) > MAX_PROMPT_CHARS:
            raise invalid(f"the prompt is {len(prompt)} characters (limit {MAX_PROMPT_CHARS})",
                          "messages", "context_length_exceeded")  # fmt: skip
        tout = model.default_tokens if max_tokens is None else max_tokens
        if tout > MAX_OUTPUT_TOKENS:
            raise invalid(f"max_tokens {tout} is above the limit {MAX_OUTPUT_TOKENS}", "max_tokens")
        tin = estimate_tokens(prompt)
        if tin + tout > model.window:
            raise invalid(f"This model's maximum context length is {model.window} tokens; the "
                          f"request asks for {tin + tout} ({tin} in the prompt, {tout} to "
                          "generate)", "messages", "context_length_exceeded")  # fmt: skip
        return {"qclass": model.qclass, "input_tokens": tin, "output_tokens": tout,
                "text": question}  # fmt: skip

    async def run(self, payload: dict[str, Any]) -> Answer:
        """The swarm's answer to ``payload``; an OpenAIError for anything but completed."""
        try:
            answer = await self.client.ask(
                payload, self.cfg.timeout_s, self.cfg.timeout_s + GRACE_S
            )
        except QueryRefused as err:
            raise invalid(str(err)) from None
        except SwarmUnavailable as err:
            raise OpenAIError(503, str(err), "server_error", None, "swarm_unavailable") from None
        if answer.ok:
            return answer
        message = f"the swarm {answer.outcome} the query: {answer.reason}"
        if answer.detail:
            message += f" ({answer.detail})"
        if answer.outcome == "dropped" or answer.reason == "shutdown":
            raise OpenAIError(503, message, "server_error", None, answer.reason or "overloaded")
        if answer.reason == "deadline":
            raise OpenAIError(504, message, "server_error", None, "timeout")
        raise OpenAIError(500, message, "server_error", None, answer.reason or "failed")

    def extension(self, answer: Answer) -> dict[str, Any]:
        """The ``swarmsim`` field: what the swarm did for the query."""
        return {"task": answer.task, "outcome": answer.outcome, "latency_s": answer.latency_s,
                "ttft_s": answer.ttft_s, "recall": answer.recall, "docs": answer.docs,
                "stages": answer.stages, "controllers": answer.controllers}  # fmt: skip


def usage(answer: Answer) -> dict[str, int]:
    return {"prompt_tokens": answer.input_tokens, "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens}  # fmt: skip


def pieces(text: str) -> list[str]:
    """The answer cut into word-sized stream chunks (each keeps its trailing space)."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + ([words[-1]] if words[-1] else [])


def sse(chunks: list[dict[str, Any]]) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})  # fmt: skip


def make_app(door: FrontDoor) -> FastAPI:
    """The FastAPI application of ``door``."""
    app = FastAPI(title="swarmsim front door", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(OpenAIError)
    async def openai_error(_: Request, err: OpenAIError) -> JSONResponse:
        return err.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        return invalid(f"{'.'.join(loc) or 'body'}: {message}", ".".join(loc) or None).response()

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok, detail = await door.health()
        return JSONResponse({"status": "ok" if ok else "unavailable", **detail},
                            status_code=200 if ok else 503)  # fmt: skip

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [_model_card(m, door.created) for m in door.models.values()],
        }

    @app.get("/v1/models/{name}")
    async def model(name: str) -> dict[str, Any]:
        return _model_card(door.model(name), door.created)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(req: ChatRequest) -> JSONResponse | StreamingResponse:
        model = door.model(req.model)
        question, prompt = chat_question(req)
        limit = (
            req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        )
        answer = await door.run(door.payload(model, question, prompt, limit))
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": ident, "created": created, "model": req.model}
        if not req.stream:
            choice = {"index": 0, "message": {"role": "assistant", "content": answer.answer},
                      "logprobs": None, "finish_reason": "stop"}  # fmt: skip
            body = {**head, "object": "chat.completion", "choices": [choice],
                    "usage": usage(answer), "swarmsim": door.extension(answer)}  # fmt: skip
            return JSONResponse(body)
        chunk = {**head, "object": "chat.completion.chunk"}
        deltas = [{"role": "assistant", "content": ""}] + [
            {"content": p} for p in pieces(answer.answer)
        ]
        chunks = [
            {**chunk, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
        ]
        chunks.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append(_last(chunk, answer, door, req.stream_options))
        return sse(chunks)

    @app.post("/v1/completions", response_model=None)
    async def completions(req: CompletionRequest) -> JSONResponse | StreamingResponse:
        model = door.model(req.model)
        prompt = completion_question(req)
        answer = await door.run(door.payload(model, prompt, prompt, req.max_tokens))
        ident, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": ident, "object": "text_completion", "created": created, "model": req.model}
        if not req.stream:
            choice = {"index": 0, "text": answer.answer, "logprobs": None, "finish_reason": "stop"}
            return JSONResponse({**head, "choices": [choice], "usage": usage(answer),
                                 "swarmsim": door.extension(answer)})  # fmt: skip
        chunks = [{**head, "choices": [{"index": 0, "text": p, "logprobs": None,
                                        "finish_reason": None}]}
                  for p in pieces(answer.answer)]  # fmt: skip
        chunks.append({**head, "choices": [{"index": 0, "text": "", "logprobs": None,
                                            "finish_reason": "stop"}]})  # fmt: skip
        chunks.append(_last(head, answer, door, req.stream_options))
        return sse(chunks)

    return app


def _last(
    head: dict[str, Any], answer: Answer, door: FrontDoor, opts: StreamOptions | None
) -> dict[str, Any]:
    """The stream's closing chunk: no choices, the ``swarmsim`` field, and ``usage`` when
    ``stream_options.include_usage`` asks for it (as OpenAI sends it)."""
    out: dict[str, Any] = {**head, "choices": [], "swarmsim": door.extension(answer)}
    if opts is not None and opts.include_usage:
        out["usage"] = usage(answer)
    return out


def _model_card(model: Model, created: int) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": created, "owned_by": "swarmsim",
            "max_model_len": model.window}  # fmt: skip


class BodyLimit:
    """ASGI middleware: the body is read whole before the app sees it; one larger than
    ``limit`` bytes (by its Content-Length or as it arrives) gets 413, one that takes longer
    than ``BODY_TIMEOUT_S`` to arrive 408."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _refuse(send, 413, f"the body is larger than {self.limit} bytes")
            return
        try:
            body = await asyncio.wait_for(self._body(receive), BODY_TIMEOUT_S)
        except TimeoutError:
            await _refuse(send, 408, f"the body took longer than {BODY_TIMEOUT_S:g} s to arrive")
            return
        if body is None:
            await _refuse(send, 413, f"the body is larger than {self.limit} bytes")
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())  # after the body: the client's disconnect

        await self.app(scope, replay, send)

    async def _body(self, receive: Any) -> bytes | None:
        """The whole body, or None once it passes ``limit``."""
        parts, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts)
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                return None
            parts.append(chunk)
            if not message.get("more_body"):
                return b"".join(parts)


def bounded_h11() -> type:
    """uvicorn's h11 protocol with a bound on the time a request's headers take to arrive:
    uvicorn has none before a connection's first request (and none once a keep-alive
    connection starts sending the next), so an idle or trickling client would hold one of
    the ``max_connections`` for good. Past ``HEADER_TIMEOUT_S`` it is closed."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11(H11Protocol):
        header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is None or self.cycle.response_complete:  # between requests
                self._arm()

        def _arm(self) -> None:
            if self.header_timer is None:
                self.header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._expire, self.cycle)

        def _expire(self, cycle: Any) -> None:
            self.header_timer = None
            if self.cycle is cycle and not self.transport.is_closing():  # no request began
                self.transport.close()

    return BoundedH11


async def _refuse(send: Any, status: int, message: str) -> None:
    body = json.dumps(error_body(message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def health_probe(
    control: str, keys: Path | None
) -> Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]:
    """``/healthz``'s check: the coordinator's STATUS (asked at most once a second) shows a
    healthy worker in every layer."""
    from .operator import request

    cache: list[Any] = [-1e9, False, {}]

    def ask() -> tuple[bool, dict[str, Any]]:
        try:
            st = request(control, "STATUS", timeout_s=1.0, keys=keys)
        except LiveError as err:
            return False, {"error": str(err)}
        layers = {name: layer["healthy"] for name, layer in st["layers"].items()}
        return all(n > 0 for n in layers.values()), {"healthy": layers, "active": st["active"]}

    async def probe() -> tuple[bool, dict[str, Any]]:
        if time.monotonic() - cache[0] >= HEALTH_CACHE_S:
            cache[1:] = await asyncio.to_thread(ask)
            cache[0] = time.monotonic()
        return cache[1], cache[2]

    return probe


def parse_bind(text: str) -> tuple[str, int]:
    """HOST:PORT of ``--http`` (port 0: any free one)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--http: expected HOST:PORT, e.g. 127.0.0.1:8000, got {text!r}")
    return host.strip("[]"), int(port)


def serve(
    queries: str,
    control: str,
    scenario: Scenario,
    cfg: FrontDoorConfig,
    keys: Path | None,
    ready: Callable[[str], None],
) -> None:
    """Bind, call ``ready(url)``, serve until SIGTERM or SIGINT (uvicorn's own handling)."""
    import uvicorn

    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on sockets that say so,
    # and without it Nagle held each response's body behind its headers for a delayed ACK
    # (52 ms a request instead of 10, measured with benchmarks/frontdoor.py)
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((cfg.host, cfg.port))
    client = AsyncClient(queries, keys)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await client.close()

    door = FrontDoor(client, catalog(scenario), cfg, health_probe(control, keys))
    app = make_app(door)
    app.router.lifespan_context = lifespan
    config = uvicorn.Config(BodyLimit(app, cfg.max_body_bytes), loop="asyncio", http=bounded_h11(),
                            lifespan="on", log_level="warning", access_log=False,
                            limit_concurrency=cfg.max_connections, timeout_keep_alive=5,
                            timeout_graceful_shutdown=1)  # fmt: skip
    server = uvicorn.Server(config)
    host, port = sock.getsockname()[:2]
    ready(f"http://{host if ':' not in host else f'[{host}]'}:{port}")
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.frontdoor")
    parser.add_argument("--queries", required=True, help="the swarm's query address")
    parser.add_argument("--control", required=True, help="the swarm's control address")
    parser.add_argument("--bind", default="127.0.0.1:8000", metavar="HOST:PORT")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=FrontDoorConfig.timeout_s)
    parser.add_argument("--keys", type=Path)
    args = parser.parse_args(argv)
    host, port = parse_bind(args.bind)
    scenario = load_scenario(args.scenario, args.overrides)
    parent = os.getppid()

    def orphaned() -> None:  # the swarm went away without stopping us: stop
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=orphaned, daemon=True).start()
    cfg = FrontDoorConfig(host=host, port=port, timeout_s=args.timeout)
    serve(args.queries, args.control, scenario, cfg, args.keys,
          lambda url: print(json.dumps({"http": url}), flush=True))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A client of a running swarm's native query port (the address ``swarmsim live up`` prints
as ``queries``): ``Client(addr).ask("question")``, or ``AsyncClient`` for many queries in
flight from one asyncio loop (the HTTP front door, ``live.frontdoor``).

A query is one QUERY message (``live.protocol``) whose payload is the ``live.limits``
fields: ``qclass``, ``input_tokens``, ``output_tokens`` and either ``pool`` (a query of the
corpus's pool) or ``text`` (a free-text question; ``pool`` optional). The swarm answers with
one DONE or FAILED message under the query's task id (outcome, reason, answer, documents,
stage times: :class:`Answer`), or ERROR when it refused the query's fields. The header's
``deadline`` is the client's timeout, so the swarm stops work nobody waits for.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from . import auth, sockets
from .errors import LiveError, ProtocolError
from .keys import party
from .protocol import DATA, RESPONSE, Message, decode, encode

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_OUTPUT_TOKENS = 256  # a question's answer length when the caller gives none
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English text; a real backend reports usage


class SwarmUnavailable(LiveError):
    """No answer came from the address in time: no swarm there, or it is not answering."""


class QueryRefused(LiveError):
    """The swarm refused the query's fields (an ERROR reply naming the field)."""


@dataclass(frozen=True)
class Answer:
    """The swarm's one final answer to a query."""

    task: str
    outcome: str  # completed, failed or dropped (the simulator's outcomes)
    reason: str  # why, when not completed (deadline, backlog_full, worker_error, ...)
    answer: str
    latency_s: float  # on the coordinator, admission to answer
    recall: float | None = None
    docs: list[int] = field(default_factory=list)  # retrieved document ids, by rank
    stages: list[dict[str, Any]] = field(default_factory=list)  # layer, agent, wait, service
    input_tokens: int = 0
    output_tokens: int = 0
    controllers: dict[str, str] = field(default_factory=dict)  # Task -> acting controller
    detail: str = ""  # what a failed stage's worker said (an LLM endpoint's error, ...)
    ttft_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "completed"

    @classmethod
    def of(cls, task: str, p: Any) -> Answer:
        """The answer a DONE or FAILED payload carries (fields of the wrong type dropped:
        the payload is network input)."""
        p = p if isinstance(p, dict) else {}

        def get(name: str, kind: type | tuple[type, ...], default: Any) -> Any:
            value = p.get(name, default)
            return value if isinstance(value, kind) else default

        return cls(
            task=task,
            outcome=str(p.get("outcome", "?")),
            reason=str(p.get("reason", "")),
            answer=get("answer", str, ""),
            latency_s=float(get("latency_s", (int, float), math.nan)),
            recall=get("recall", (int, float), None),
            docs=[d for d in get("docs", list, []) if isinstance(d, int)],
            stages=[s for s in get("stages", list, []) if isinstance(s, dict)],
            input_tokens=get("input_tokens", int, 0),
            output_tokens=get("output_tokens", int, 0),
            controllers={str(k): str(v) for k, v in get("controllers", dict, {}).items()},
            detail=get("detail", str, ""),
            ttft_s=get("ttft_s", (int, float), None),
        )


def estimate_tokens(text: str) -> int:
    """A prompt's token count where no tokenizer is at hand: ``CHARS_PER_TOKEN`` a token."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def query_payload(
    text: str | None = None,
    tokens: int | None = None,
    qclass: int = 0,
    max_tokens: int | None = None,
    pool: int | None = None,
) -> dict[str, Any]:
    """A QUERY payload: a free-text question (``tokens``: its prompt length, else estimated)
    or, without text, a pool query (``pool``, default 0) of ``tokens`` prompt tokens."""
    if text is None and tokens is None:
        raise ValueError("ask needs a question text or a prompt token count")
    out: dict[str, Any] = {
        "qclass": qclass,
        "input_tokens": tokens if tokens is not None else estimate_tokens(text or ""),
        "output_tokens": DEFAULT_OUTPUT_TOKENS if max_tokens is None else max_tokens,
    }
    if text is not None:
        out["text"] = text
    if pool is not None or text is None:
        out["pool"] = 0 if pool is None else pool
    return out


def _secure(keys: Path | None) -> sockets.Secure | None:
    return None if keys is None else auth.client(party(keys, "client"))


def _identity() -> bytes:
    return f"client-{os.getpid()}-{next(_CLIENTS)}".encode()


_CLIENTS = itertools.count()


def _answer(address: str, msg: Message | ProtocolError) -> Answer | None:
    """A reply as an Answer; QueryRefused for an ERROR; None for anything else."""
    if isinstance(msg, ProtocolError) or msg.type != RESPONSE:
        return None
    if msg.action == "ERROR":
        err = msg.payload.get("error") if isinstance(msg.payload, dict) else None
        raise QueryRefused(f"{address} refused the query: {err}")
    return Answer.of(msg.task, msg.payload)


class Client:
    """A blocking client: one DEALER socket, one query at a time."""

    def __init__(
        self, address: str, timeout_s: float = DEFAULT_TIMEOUT_S, keys: Path | None = None
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout must be > 0 s, got {timeout_s}")
        self.address, self.timeout_s = address, timeout_s
        self.ctx = zmq.Context()
        try:
            self.sock = sockets.dealer(self.ctx, address, _identity(), secure=_secure(keys))
        except zmq.ZMQError as err:
            self.ctx.destroy(linger=0)
            raise LiveError(f"cannot connect to {address!r}: {err}") from None
        self.tasks = itertools.count()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    def ask(
        self,
        text: str | None = None,
        *,
        tokens: int | None = None,
        qclass: int = 0,
        max_tokens: int | None = None,
        pool: int | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        """Send one query and wait for its answer; SwarmUnavailable after the timeout,
        QueryRefused if the swarm refused its fields."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        payload = query_payload(text, tokens, qclass, max_tokens, pool)
        task = f"q{next(self.tasks)}"
        end = time.monotonic() + timeout
        msg = Message(DATA, "QUERY", task, "client", payload, deadline=time.time() + timeout)
        sockets.send(self.sock, msg)
        while (left := end - time.monotonic()) > 0:
            if not self.sock.poll(left * 1000):
                break
            got = sockets.try_recv(self.sock, routed=False)
            if got is None or (isinstance(got[1], Message) and got[1].task != task):
                continue  # a late answer to an earlier query
            answer = _answer(self.address, got[1])
            if answer is not None:
                return answer
        raise SwarmUnavailable(
            f"no answer from {self.address} within {timeout:g} s: is a swarm up there? "
            "(swarmsim live up prints its query address)"
        )


class AsyncClient:
    """Many queries in flight over one DEALER socket from an asyncio loop: each ``ask``
    awaits its own answer, matched by task id by one reader task."""

    def __init__(self, address: str, keys: Path | None = None) -> None:
        self.address = address
        self.ctx = zmq.asyncio.Context()
        self.sock = sockets.dealer(self.ctx, address, _identity(), secure=_secure(keys))
        self.waiting: dict[str, asyncio.Future[Answer]] = {}
        self.tasks = itertools.count()
        self.reader: asyncio.Task[None] | None = None

    async def ask(
        self, payload: dict[str, Any], timeout_s: float, wait_s: float | None = None
    ) -> Answer:
        """Send one QUERY payload whose deadline is ``timeout_s`` from now; its answer,
        SwarmUnavailable if none came within ``wait_s`` (default: the timeout), QueryRefused
        if the swarm refused it."""
        if self.reader is None:
            self.reader = asyncio.create_task(self._read())
        task = f"h{next(self.tasks)}"
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.waiting[task] = future
        msg = Message(DATA, "QUERY", task, "frontdoor", payload, deadline=time.time() + timeout_s)
        try:
            await self.sock.send_multipart(encode(msg))
            return await asyncio.wait_for(future, timeout_s if wait_s is None else wait_s)
        except TimeoutError:
            raise SwarmUnavailable(
                f"no answer from the swarm at {self.address} within {timeout_s:g} s"
            ) from None
        finally:
            self.waiting.pop(task, None)

    async def _read(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            try:
                msg = decode(frames)
            except ProtocolError:
                continue
            future = self.waiting.get(msg.task)
            if future is None or future.done():
                continue
            try:
                answer = _answer(self.address, msg)
            except QueryRefused as err:
                future.set_exception(err)
                continue
            if answer is not None:
                future.set_result(answer)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        self.ctx.destroy(linger=0)

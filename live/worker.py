"""A worker process: one DEALER socket, one role at a time, Paranoid-Pirate heartbeats.

The loop polls the socket until the next heartbeat or the current job's due time, runs one
job at a time in arrival order, heartbeats from this same loop (so a hung worker goes
silent, which libzmq's own heartbeats would hide), and reconnects with capped exponential
back-off when the coordinator goes quiet. Run as ``python -m live.worker --spec JSON``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import zmq

from swarmsim.kvcache import KVCache
from swarmsim.profiles import Profiles, load_profiles
from swarmsim.scenario import FailureConfig
from swarmsim.service import RetrievalConfig

from . import auth, expiry, sockets
from .backends import (
    Backend,
    BackendError,
    Embedder,
    EmulatedSynthesizer,
    Evaluator,
    OpenAISynthesizer,
    Pending,
    Retriever,
    kv_report,
    now_s,
)
from .config import LiveConfig
from .corpusfiles import CorpusFiles
from .errors import ProtocolError
from .faults import WorkerFaults
from .keys import party
from .limits import MAX_DETAIL_CHARS
from .protocol import CONTROL, DATA, RESPONSE, Message

MAX_QUEUE = 256  # jobs a worker holds; the coordinator's credit keeps it far below this
MAX_KV_BLOCKS = 10_000_000  # prefix-cache capacity an ASSIGN may ask for (80 GB at 16 tokens
# and 0.5 KB per token is 10^7 blocks)
STAGE_ACTIONS = {
    "embedder": "EMBED",
    "retriever": "SEARCH",
    "synthesizer": "SYNTH",
    "evaluator": "EVAL",
}


@dataclass(frozen=True)
class WorkerSpec:
    """Who a worker is and what it plays: everything a launcher passes to a new process."""

    id: int
    address: str  # the coordinator's worker endpoint
    layer: str
    role: str
    device: str  # device profile name (emulated timings)
    corpus_dir: str
    shard: int = -1
    model: str = ""
    synth_backend: str = "emulated"  # or "openai"
    openai_url: str = ""
    openai_model: str = ""
    openai_timeout_s: float = 60.0
    real_embedding: bool = False
    heartbeat_interval_s: float = FailureConfig.heartbeat_interval_s  # the scenario's failures:
    heartbeat_liveness: int = FailureConfig.heartbeat_liveness
    reconnect_initial_s: float = LiveConfig.reconnect_initial_s
    reconnect_max_s: float = LiveConfig.reconnect_max_s
    time_scale: float = 1.0
    kv_blocks: int = 0  # an emulated synthesizer's prefix-cache capacity in blocks (0: none)
    block_tokens: int = 16  # tokens per prefix block (the scenario's workload.block_tokens)
    # the scenario's modelled index, which sets a retriever's emulated search time
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    keys: str = ""  # a key directory (``live.keys``): connect with its first worker key
    node: str = ""  # the scenario node group it is placed on (a cluster launcher's placement)
    supervisor: str = ""  # its node supervisor's endpoint: heartbeats go there (live.supervisor)

    @property
    def name(self) -> str:
        return f"w{self.id}"

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        """The spec ``to_json`` wrote (its ``retrieval`` validated as the scenario's is)."""
        fields = json.loads(text)
        ret = fields.pop("retrieval", {})
        ret["shard_weights"] = tuple(ret.get("shard_weights", ()))
        return cls(**fields, retrieval=RetrievalConfig(**ret))


def make_backend(spec: WorkerSpec, files: CorpusFiles, profiles: Profiles) -> Backend:
    """The backend that plays ``spec``'s role (emulated timings, or an OpenAI endpoint)."""
    device = profiles.device(spec.device)
    scale = spec.time_scale
    if spec.role == "retriever":
        return Retriever(files, spec.shard, spec.retrieval, device, scale)
    if spec.role == "embedder":
        model = None
        if spec.real_embedding:
            from .embedding import TextEmbedder

            model = TextEmbedder()
        return Embedder(files, device, scale, model)
    if spec.role == "synthesizer":
        if spec.synth_backend == "openai":
            return OpenAISynthesizer(
                files, spec.openai_url, spec.openai_model, spec.openai_timeout_s
            )
        kv = KVCache(spec.kv_blocks) if spec.kv_blocks > 0 else None
        return EmulatedSynthesizer(files, device, spec.model, scale, kv, spec.block_tokens)
    if spec.role == "evaluator":
        return Evaluator(files, device, scale)
    raise ValueError(f"role must be one of {sorted(STAGE_ACTIONS)}, got {spec.role!r}")


class Worker:
    """One worker's state and loop."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.files = CorpusFiles.load(Path(spec.corpus_dir))
        self.profiles = load_profiles()
        self.backend: Backend = self._backend(spec)
        self.queue: deque[tuple[float, Message]] = deque()  # (received, msg)
        self.current: tuple[Message, Pending, float, float] | None = None  # msg, job, recv, start
        self.switch_to: WorkerSpec | None = None
        self.busy_s = 0.0
        self.done = 0
        self.errors = 0
        self.progress = 0  # passes of the loop: heartbeats carry it, a hung loop stops it
        self.faults = WorkerFaults()  # injected by FAULT messages (live.faults)
        self.parent = os.getppid()
        self.running = True
        self.secure = auth.client(party(Path(spec.keys), "worker")) if spec.keys else None

    def _backend(self, spec: WorkerSpec) -> Backend:
        return make_backend(spec, self.files, self.profiles)

    # --- the loop -------------------------------------------------------------------------

    def run(self) -> int:
        """Serve until told to stop, the parent dies, or the coordinator stays unreachable."""
        ctx = zmq.Context()
        delay = self.spec.reconnect_initial_s
        try:
            while self.running:
                if self._session(ctx):
                    delay = self.spec.reconnect_initial_s
                if not self.running or os.getppid() != self.parent:
                    break
                self._nap(delay)
                delay = min(delay * 2, self.spec.reconnect_max_s)
        finally:
            ctx.destroy(linger=0)
        return 0

    def _nap(self, seconds: float) -> None:
        end = now_s() + seconds
        while self.running and now_s() < end and os.getppid() == self.parent:
            time.sleep(0.1)

    def _session(self, ctx: zmq.Context) -> bool:
        """One connection: returns whether the coordinator was ever heard from."""
        spec = self.spec
        sock = sockets.dealer(ctx, spec.address, spec.name.encode(), secure=self.secure)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        self._send(sock, CONTROL, "READY", self._state())
        up = sockets.dealer(ctx, spec.supervisor, spec.name.encode()) if spec.supervisor else None
        if up is not None:  # its supervisor relays the coordinator's liveness both ways
            poller.register(up, zmq.POLLIN)
        interval = spec.heartbeat_interval_s
        heard, last_heard = False, now_s()
        next_beat = now_s() + interval
        try:
            while self.running:
                if self.faults.hung_for(now_s()) > 0:  # an injected hang: nothing progresses
                    self._nap(self.faults.hung_for(now_s()))
                    continue
                self.progress += 1
                events = dict(poller.poll(self._timeout_ms(next_beat)))
                if sock in events:
                    for _ in range(1000):  # bounded, so heartbeats go out under a flood
                        if not self._receive(sock):
                            break
                    heard, last_heard = True, now_s()
                if up is not None and up in events:
                    while sockets.try_recv(up, routed=False) is not None:
                        last_heard = now_s()  # the supervisor hears the coordinator
                self._work(sock)
                now = now_s()
                if now >= next_beat:
                    self._send(up or sock, CONTROL, "HEARTBEAT", self._state())
                    next_beat = now + interval
                    if os.getppid() != self.parent:
                        self.running = False
                if now - last_heard > interval * spec.heartbeat_liveness:
                    return heard  # coordinator silent: reconnect
        finally:
            sock.close(linger=0)
            if up is not None:
                up.close(linger=0)
        return heard

    def _timeout_ms(self, next_beat: float) -> float:
        """Poll until the next heartbeat or the current job's due time (a job waiting on an
        HTTP call is checked every 5 ms)."""
        wait = next_beat - now_s()
        if self.current is not None:
            job = self.current[1]
            wait = min(wait, 0.005 if job.future is not None else job.due - now_s())
            wait = min(wait, expiry.remaining(self.current[0]))  # a job stops at its deadline
        return max(wait, 0.0) * 1000

    def _receive(self, sock: zmq.Socket) -> bool:
        """Take one waiting message, if any (False when none waits)."""
        got = sockets.try_recv(sock, routed=False)
        if got is None:
            return False
        msg = got[1]
        if isinstance(msg, ProtocolError):
            self.errors += 1
            return True
        if msg.type == DATA:
            if len(self.queue) >= MAX_QUEUE or self.switch_to is not None:
                self._send(sock, RESPONSE, "FAILED", {"error": "worker busy"}, msg.task)
            else:
                self.queue.append((now_s(), msg))
        elif msg.type == CONTROL and msg.action == "STOP":
            self.running = False
        elif msg.type == CONTROL and msg.action == "ASSIGN":
            self._assign(sock, msg)
        elif msg.type == CONTROL and msg.action == "FAULT":
            try:
                self.faults.take(msg.payload, now_s())
            except ValueError:
                self.errors += 1
        return True

    def _assign(self, sock: zmq.Socket, msg: Message) -> None:
        try:
            target = self._target(msg.payload)
        except (TypeError, KeyError, ValueError):
            self.errors += 1
            return
        self.switch_to = target
        self._work(sock)

    def _target(self, p: Any) -> WorkerSpec:
        """The spec an ASSIGN payload asks for, validated (it is network input): a known role
        and device profile, a retriever's shard in the corpus, a bounded prefix cache."""
        layer, role = str(p["layer"]), str(p["role"])
        shard, model = int(p.get("shard", -1)), str(p.get("model", ""))
        device = str(p.get("device", self.spec.device))
        kv_blocks = int(p.get("kv_blocks", 0))
        if role not in STAGE_ACTIONS:
            raise ValueError(f"role {role!r} unknown")
        self.profiles.device(device)  # UnknownNameError (a KeyError) if unknown
        if role == "retriever" and not 0 <= shard < self.files.n_shards:
            raise ValueError(f"shard {shard} out of range")
        if not 0 <= kv_blocks <= MAX_KV_BLOCKS:
            raise ValueError(f"kv_blocks {kv_blocks} out of range")
        return replace(self.spec, layer=layer, role=role, shard=shard, model=model,
                       device=device, kv_blocks=kv_blocks)  # fmt: skip

    def _work(self, sock: zmq.Socket) -> None:
        """Finish the current job when due, start the next; switch role when idle."""
        now = now_s()
        if self.current is not None and expiry.remaining(self.current[0]) <= 0:
            self.busy_s += now - self.current[3]
            self._expired(sock, self.current[0])
            self.current = None
        while self.queue and expiry.remaining(self.queue[0][1]) <= 0:
            self._expired(sock, self.queue.popleft()[1])
        if self.current is not None and self.current[1].ready(now):
            msg, job, recv_at, start = self.current
            self.current = None
            self._finish(sock, msg, job, recv_at, start)
        if self.current is None and self.queue:
            recv_at, msg = self.queue.popleft()
            start = now_s()
            try:
                deadline = math.inf if msg.deadline is None else msg.deadline
                job = self.backend.start(msg.payload, start, deadline)
                self.faults.stretch(job, start)
            except (ProtocolError, ValueError, TypeError, KeyError) as err:
                self._send(sock, RESPONSE, "FAILED", {"error": str(err)[:200]}, msg.task)
                return
            self.current = (msg, job, recv_at, start)
            if job.ready(now_s()):
                self._work(sock)
        if self.current is None and not self.queue and self.switch_to is not None:
            self.spec, self.switch_to = self.switch_to, None
            self.backend = self._backend(self.spec)
            self._send(sock, CONTROL, "READY", self._state())

    def _expired(self, sock: zmq.Socket, msg: Message) -> None:
        """Drop ``msg``'s job: its deadline passed (queued, or while it ran)."""
        self._send(sock, RESPONSE, "FAILED", {"error": "past its deadline",
                                              "reason": expiry.REASON}, msg.task)  # fmt: skip

    def _finish(self, sock, msg: Message, job: Pending, recv_at: float, start: float) -> None:
        end = now_s()
        self.busy_s += end - start
        self.done += 1
        try:
            value = job.value()
        except BackendError as err:  # an LLM endpoint failed: say whether to try again
            failed = {"error": str(err)[:MAX_DETAIL_CHARS], "retryable": err.retryable}
            self._send(sock, RESPONSE, "FAILED", failed, msg.task)
            return
        except Exception as err:
            self._send(sock, RESPONSE, "FAILED", {"error": str(err)[:MAX_DETAIL_CHARS]}, msg.task)
            return
        value = {**value, "service_s": end - start, "wait_s": start - recv_at}
        self._send(sock, RESPONSE, "DONE", value, msg.task)

    def _state(self) -> dict[str, Any]:
        s = self.spec
        return {
            "layer": s.layer,
            "role": s.role,
            "shard": s.shard,
            "model": s.model,
            "device": s.device,
            "pid": os.getpid(),
            "queue": len(self.queue),
            "busy_s": self.busy_s,
            "done": self.done,
            "errors": self.errors,
            "progress": self.progress,
            "switching": self.switch_to is not None,
            **kv_report(self.backend.kv if isinstance(self.backend, EmulatedSynthesizer) else None),
        }

    def _send(self, sock, kind: str, action: str, payload: Any, task: str = "") -> None:
        sockets.send(sock, Message(kind, action, task, self.spec.name, payload))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.worker")
    parser.add_argument("--spec", required=True, help="the WorkerSpec as JSON")
    args = parser.parse_args(argv)
    spec = WorkerSpec.from_json(args.spec)
    worker = Worker(spec)

    def stop(_sig, _frame) -> None:
        worker.running = False

    signal.signal(signal.SIGTERM, stop)
    # Ctrl-C in a terminal reaches the whole process group: the coordinator, not the key,
    # decides when its workers stop (STOP, then SIGTERM), so queries in flight can finish
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return worker.run()


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # its sockets are closed and its report written: skip freeing every module (numpy, faiss),
    # which on a loaded machine held a stopping swarm up for tenths of a second
    os._exit(code)

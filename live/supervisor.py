"""A node supervisor: one process per node speaks for that node's workers.

It sends the coordinator ONE ``NODE_BEAT`` per heartbeat interval carrying every local
worker's HEARTBEAT fields (``live.nodebeat`` applies them), takes the coordinator's one beat
per node in place of one per worker, and restarts a local worker whose process exits
abnormally (capped exponential back-off), reporting it ``down`` at once, so the coordinator
knows within a message instead of after the heartbeat timeout. Control is aggregated; data is
not: jobs, answers and a worker's READY (its registration and role changes) go directly
between the coordinator and the worker, since a relay would add a hop and a copy to every
job while the data rate grows with queries, not with agents.

Two modes. Real: the supervisor starts its node's ``live.worker`` processes, which send their
heartbeats to its local ROUTER; it answers each while the coordinator is heard, so a worker
still notices a silent coordinator. EMULATED (for scale benchmarks): one process hosts the
supervisors of several nodes and, per node, many EMULATED worker endpoints, each its own
DEALER identity ``w<id>`` that registers, takes jobs and answers them at once from zero-time
backends (``time_scale`` 0) shared by the workers of one role in the process.

Run as ``python -m live.supervisor --spec FILE`` (a JSON list of ``NodeSpec``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import zmq

from swarmsim.profiles import load_profiles

from . import sockets
from .backends import Backend, BackendError, kv_report
from .corpusfiles import CorpusFiles
from .errors import ProtocolError
from .launcher import SINGLE_THREAD_ENV, _terminate
from .protocol import CONTROL, DATA, RESPONSE, Message
from .worker import WorkerSpec, make_backend

RESTART_INITIAL_S = 0.5  # a local worker's restart back-off: 0.5 s doubling ...
RESTART_MAX_S = 8.0  # ... capped at 8 s
HEALTHY_S = 30.0  # a worker up this long has its back-off reset
MAX_SOCKETS = 16_384  # libzmq's default of 1023 sockets a context would cap EMULATED hosts


@dataclass(frozen=True)
class NodeSpec:
    """One node supervisor: its index (identity ``n<index>``), the coordinator, its workers."""

    index: int
    address: str  # the coordinator's worker endpoint
    workers: tuple[WorkerSpec, ...]
    heartbeat_interval_s: float = 1.0
    emulated: bool = False
    aggregate: bool = True  # EMULATED only: False heartbeats per worker (the flat baseline)
    run_dir: str = ""  # where real workers' pid files go (``w<id>.pid``)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "workers": [json.loads(w.to_json()) for w in self.workers]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeSpec:
        workers = tuple(WorkerSpec.from_json(json.dumps(w)) for w in d["workers"])
        return cls(**{**d, "workers": workers})


class Child:
    """One real worker process of a supervisor and its restart back-off."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[bytes] | None = None
        self.backoff, self.due, self.started = RESTART_INITIAL_S, 0.0, 0.0
        self.restarts = 0

    def start(self, run_dir: str) -> None:
        cmd = [sys.executable, "-m", "live.worker", "--spec", self.spec.to_json()]
        env = {**os.environ, **SINGLE_THREAD_ENV}
        proc = self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
        self.started = time.monotonic()
        if run_dir:
            Path(run_dir, f"w{self.spec.id}.pid").write_text(str(proc.pid))


class Supervisor:
    """One node's supervisor: its uplink to the coordinator and its local workers."""

    def __init__(self, spec: NodeSpec, ctx: zmq.Context) -> None:
        self.spec, self.ctx = spec, ctx
        self.up = sockets.dealer(ctx, spec.address, f"n{spec.index}".encode())
        self.beats: dict[int, dict[str, Any]] = {}  # worker id -> its latest heartbeat
        self.down: list[int] = []  # exited since the last NODE_BEAT
        self.heard = time.monotonic()  # the coordinator, last
        self.next_beat = time.monotonic() + spec.heartbeat_interval_s
        self.local: zmq.Socket | None = None
        self.children: dict[int, Child] = {}
        if not spec.emulated:
            self.local = sockets.router(ctx, "tcp://127.0.0.1:0")
            endpoint = sockets.endpoint(self.local)
            for w in spec.workers:
                self.children[w.id] = Child(replace(w, supervisor=endpoint))
                self.children[w.id].start(spec.run_dir)

    def sockets(self) -> list[zmq.Socket]:
        return [self.up] if self.local is None else [self.up, self.local]

    def take(self, sock: zmq.Socket) -> None:
        """Drain ``sock``: the coordinator's beats, or local workers' heartbeats."""
        for _ in range(1000):
            got = sockets.try_recv(sock, routed=sock is self.local)
            if got is None:
                return
            peer, msg = got
            if isinstance(msg, ProtocolError):
                continue
            if sock is self.up:
                self.heard = time.monotonic()
            elif peer is not None and msg.action == "HEARTBEAT" and peer[:1] == b"w":
                self._local_beat(peer, msg)

    def _local_beat(self, peer: bytes, msg: Message) -> None:
        try:
            wid = int(peer[1:])
        except ValueError:
            return
        if wid in self.children and isinstance(msg.payload, dict):
            self.beats[wid] = {**msg.payload, "id": wid}
            if self.local is not None and self.coordinator_alive():  # relayed liveness
                sockets.send(self.local, Message(CONTROL, "HEARTBEAT", "", self.name), peer)

    @property
    def name(self) -> str:
        return f"n{self.spec.index}"

    def coordinator_alive(self) -> bool:
        liveness = self.spec.workers[0].heartbeat_liveness if self.spec.workers else 3
        return time.monotonic() - self.heard <= self.spec.heartbeat_interval_s * liveness

    def tick(self, now: float) -> None:
        """Restart what exited, then the NODE_BEAT when due (at once when a worker exited)."""
        exited = self._reap(now)
        if now >= self.next_beat or exited:
            self.send_beat(list(self.beats.values()))
            self.beats = {}
            if now >= self.next_beat:
                self.next_beat = now + self.spec.heartbeat_interval_s

    def send_beat(self, entries: list[dict[str, Any]]) -> None:
        payload = {"entries": entries, "down": self.down}
        sockets.send(self.up, Message(CONTROL, "NODE_BEAT", "", self.name, payload))
        self.down = []

    def _reap(self, now: float) -> bool:
        exited = False
        for wid, child in list(self.children.items()):
            if child.proc is None:
                if now >= child.due:
                    child.restarts += 1
                    child.start(self.spec.run_dir)
                continue
            code = child.proc.poll()
            if code is None:
                if now - child.started > HEALTHY_S:
                    child.backoff = RESTART_INITIAL_S
                continue
            if code == 0:  # stopped on the coordinator's STOP: not restarted
                del self.children[wid]
                continue
            self.down.append(wid)
            self.beats.pop(wid, None)
            child.proc, child.due = None, now + child.backoff
            child.backoff = min(child.backoff * 2, RESTART_MAX_S)
            exited = True
        return exited

    def due(self) -> float:
        restarts = [c.due for c in self.children.values() if c.proc is None]
        return min([self.next_beat, *restarts])

    def close(self) -> None:
        _terminate([c.proc for c in self.children.values() if c.proc is not None], 1.5)
        self.up.close(linger=0)
        if self.local is not None:
            self.local.close(linger=0)


class EmulatedWorker:
    """An EMULATED worker endpoint: its own DEALER identity, answering jobs at once."""

    def __init__(self, spec: WorkerSpec, ctx: zmq.Context, host: Host) -> None:
        self.spec, self.host = spec, host
        self.sock = sockets.dealer(ctx, spec.address, spec.name.encode())
        self.backend = host.backend(spec)
        self.progress = self.done = 0
        self.busy_s = 0.0
        self.running = True
        self.send(CONTROL, "READY", self.state())

    def state(self) -> dict[str, Any]:
        s = self.spec
        kv = getattr(self.backend, "kv", None)
        return {"layer": s.layer, "role": s.role, "shard": s.shard, "model": s.model,
                "device": s.device, "pid": os.getpid(), "queue": 0, "busy_s": self.busy_s,
                "done": self.done, "errors": 0, "progress": self.progress,
                "switching": False, **kv_report(kv)}  # fmt: skip

    def send(self, kind: str, action: str, payload: Any, task: str = "") -> None:
        sockets.send(self.sock, Message(kind, action, task, self.spec.name, payload))

    def take(self) -> None:
        for _ in range(1000):
            got = sockets.try_recv(self.sock, routed=False)
            if got is None or not self.running:
                return
            msg = got[1]
            if isinstance(msg, ProtocolError):
                continue
            if msg.type == DATA:
                self._serve(msg)
            elif msg.action == "STOP":
                self.running = False
            elif msg.action == "ASSIGN" and isinstance(msg.payload, dict):
                self._assign(msg.payload)

    def _serve(self, msg: Message) -> None:
        start = time.monotonic()
        try:
            deadline = math.inf if msg.deadline is None else msg.deadline
            value = self.backend.start(msg.payload, time.monotonic(), deadline).value()
        except (BackendError, ProtocolError, ValueError, TypeError, KeyError) as err:
            self.send(RESPONSE, "FAILED", {"error": str(err)[:200]}, msg.task)
            return
        took = time.monotonic() - start
        self.busy_s += took
        self.done += 1
        self.send(RESPONSE, "DONE", {**value, "service_s": took, "wait_s": 0.0}, msg.task)

    def _assign(self, p: dict[str, Any]) -> None:
        try:
            layer, role, shard = str(p["layer"]), str(p["role"]), int(p.get("shard", -1))
            model = str(p.get("model", ""))
            self.spec = replace(self.spec, layer=layer, role=role, shard=shard, model=model)
            self.backend = self.host.backend(self.spec)
        except (KeyError, TypeError, ValueError):
            return
        self.send(CONTROL, "READY", self.state())


class Host:
    """One process's supervisors (and, EMULATED, their worker endpoints) and its loop."""

    def __init__(self, nodes: list[NodeSpec]) -> None:
        self.ctx = zmq.Context()
        self.ctx.set(zmq.MAX_SOCKETS, MAX_SOCKETS)
        self.running, self.parent = True, os.getppid()
        self.backends: dict[tuple[str, int, str, str], Backend] = {}
        self.files: CorpusFiles | None = None
        self.profiles = load_profiles()
        self.supervisors = [Supervisor(n, self.ctx) for n in nodes]
        self.emulated: dict[int, list[EmulatedWorker]] = {}  # node index -> its endpoints
        for n in nodes:
            if n.emulated:
                self.emulated[n.index] = [EmulatedWorker(w, self.ctx, self) for w in n.workers]

    def backend(self, spec: WorkerSpec) -> Backend:
        """A zero-time backend for ``spec``'s role, shared by the process's endpoints."""
        if self.files is None:
            self.files = CorpusFiles.load(Path(spec.corpus_dir))
        key = (spec.role, spec.shard, spec.device, spec.model)
        if key not in self.backends:
            spec = replace(spec, time_scale=0.0, kv_blocks=0)
            self.backends[key] = make_backend(spec, self.files, self.profiles)
        return self.backends[key]

    def run(self) -> int:
        poller = zmq.Poller()
        owner: dict[zmq.Socket, Supervisor | EmulatedWorker] = {}
        for sup in self.supervisors:
            for sock in sup.sockets():
                poller.register(sock, zmq.POLLIN)
                owner[sock] = sup
        for endpoints in self.emulated.values():
            for ew in endpoints:
                poller.register(ew.sock, zmq.POLLIN)
                owner[ew.sock] = ew
        try:
            while self.running and os.getppid() == self.parent:
                due = min(s.due() for s in self.supervisors)
                wait = min(max(due - time.monotonic(), 0.0), RESTART_INITIAL_S)  # exits: seen soon
                for sock, _ in poller.poll(int(wait * 1000)):
                    who = owner[sock]
                    who.take(sock) if isinstance(who, Supervisor) else who.take()
                now = time.monotonic()
                for sup in self.supervisors:
                    self._tick(sup, now)
        finally:
            for sup in self.supervisors:
                sup.close()
            self.ctx.destroy(linger=0)
        return 0

    def _tick(self, sup: Supervisor, now: float) -> None:
        endpoints = self.emulated.get(sup.spec.index)
        if endpoints is None:
            sup.tick(now)
            return
        if now < sup.next_beat:
            return
        sup.next_beat = now + sup.spec.heartbeat_interval_s
        live = [ew for ew in endpoints if ew.running]
        for ew in live:
            ew.progress += 1
        if sup.spec.aggregate:
            sup.send_beat([{**ew.state(), "id": ew.spec.id} for ew in live])
        else:
            for ew in live:
                ew.send(CONTROL, "HEARTBEAT", ew.state())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.supervisor")
    parser.add_argument("--spec", required=True, help="a JSON file: a list of NodeSpec")
    args = parser.parse_args(argv)
    nodes = [NodeSpec.from_dict(d) for d in json.loads(Path(args.spec).read_text())]
    host = Host(nodes)

    def stop(_sig: int, _frame: object) -> None:
        host.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides when we stop
    return host.run()


if __name__ == "__main__":
    sys.exit(main())

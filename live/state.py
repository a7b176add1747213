"""What the coordinator knows: its agents (worker processes), queries and jobs.

The names and the vocabulary are the simulator's (``swarmsim.query``): an ``Agent`` plays one
role in one layer, a ``Query`` moves through the scenario's stages, a ``Job`` is one stage of
one query on one agent. Live adds only what travels on the wire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from swarmsim import query as sim
from swarmsim.query import AgentState

if TYPE_CHECKING:
    from swarmsim.pool import Pool

    from .columns import AgentColumns

MAX_REPORTED_QUEUE = 256  # a worker holds at most this many jobs (live.worker.MAX_QUEUE)
EWMA_WEIGHT = 0.2  # weight of the newest stage latency in an agent's recent latency


@dataclass(eq=False)
class Agent:
    """One worker process as the coordinator sees it (``outstanding`` and ``pool`` are what
    ``swarmsim.pool.Pool`` buckets it by: its jobs in flight, the pool it sits in)."""

    id: int
    layer: str
    role: str
    shard: int
    model: str
    device: str
    node: int
    state: AgentState
    born: float
    last_seen: float
    jobs: dict[str, Job] = field(default_factory=dict)
    outstanding: int = 0  # len(jobs), kept in step by the roster
    pool: Pool | None = None  # the pool of accepting agents it sits in, while running
    switching_since: float = -1.0  # when a role change was sent
    queue: int = 0  # jobs waiting on the worker, from its last heartbeat
    busy_s: float = 0.0  # reported by the worker
    busy_mark: float = 0.0  # busy_s at the start of the control interval
    latency_s: float = 0.0  # EWMA of stage latencies (send to answer)
    kv_util: float = 0.0  # its prefix cache's blocks held / capacity, as it last reported
    pid: int = 0
    gone: float = -1.0  # when it died or stopped
    progress: int = -1  # the loop-pass counter its worker last reported
    columns: AgentColumns | None = None  # the view's table this agent's row is in

    def changed(self) -> None:
        """Its row in the view's table is stale (written at the next view)."""
        if self.columns is not None:
            self.columns.dirty.add(self)

    def heard(self, action: str, p: Any, now: float) -> None:
        """A message arrived: it shows the worker alive unless it is a heartbeat whose
        progress counter has not advanced (a loop that no longer runs, or a replay)."""
        progress = p.get("progress") if isinstance(p, dict) else None
        if not isinstance(progress, int) or isinstance(progress, bool):
            self.last_seen = now
            self.changed()
            return
        if action == "HEARTBEAT" and progress <= self.progress:
            return
        self.progress, self.last_seen = progress, now
        self.changed()

    @property
    def ident(self) -> bytes:
        return f"w{self.id}".encode()

    def report(self, p: dict[str, Any]) -> None:
        """Take the load a READY, HEARTBEAT or DONE payload reports (fields of the wrong type
        are ignored: the payload is network input)."""
        busy, queue, pid = p.get("busy_s"), p.get("queue"), p.get("pid")
        if isinstance(busy, float | int) and 0 <= busy < math.inf:  # NaN fails both
            self.busy_s = float(busy)
        kv = p.get("kv_util")
        if isinstance(kv, float | int) and 0 <= kv <= 1:
            self.kv_util = float(kv)
        if isinstance(queue, int) and 0 <= queue <= MAX_REPORTED_QUEUE:
            self.queue = queue
        if isinstance(pid, int):
            self.pid = pid
        self.changed()

    def observe_latency(self, seconds: float) -> None:
        self.changed()
        self.latency_s = (
            seconds
            if self.latency_s == 0
            else (EWMA_WEIGHT * seconds + (1 - EWMA_WEIGHT) * self.latency_s)
        )


class Query(sim.Query):
    """A client's query: the simulator's ``Query`` plus who asked and what came back."""

    __slots__ = ("answer", "arm", "client", "client_task", "deadline", "detail", "docs",
                 "gold_hit", "hits", "text", "vector")  # fmt: skip

    def __init__(
        self,
        qid: int,
        client: bytes,
        client_task: str,
        arrival: float,
        deadline: float,
        qclass: int,
        model: str,
        input_tokens: int,
        output_tokens: int,
        pool: int,
        blocks: tuple[int, ...] = (),
        text: str | None = None,
    ) -> None:
        super().__init__(qid, arrival, qclass, model, input_tokens, output_tokens, pool, blocks)
        self.text = text  # a free-text question (None: the pool query's)
        self.client = client
        self.client_task = client_task
        self.deadline = deadline
        self.vector: np.ndarray | None = None
        self.hits: list[tuple[float, int]] = []  # (score, doc id) merged
        self.docs: list[int] = []
        self.answer = ""
        self.gold_hit: float | None = None
        self.arm = ""  # the controller that routed it, when one is attached
        self.detail = ""  # what the last failed stage's worker said (an HTTP error, ...)
        self.timeline = []

    def to_record(self) -> dict[str, Any]:
        """The simulator's row, plus the arm that routed it when a controller did."""
        record = super().to_record()
        if self.arm:
            record["arm"] = self.arm
        return record


class Job(sim.Job):
    """One stage of one query, sent to one agent (``agent`` is its id) under a job id."""

    __slots__ = ("action", "id", "payload")
    query: Query

    def __init__(
        self, job_id: str, query: Query, layer: str, action: str, payload: Any, shard: int = -1
    ) -> None:
        super().__init__(query, layer, shard)
        self.id = job_id
        self.action = action
        self.payload = payload
        self.agent = -1

"""What the coordinator knows: its agents (worker processes), queries and jobs.

The names are the simulator's: an ``Agent`` plays one role in one layer, a ``Query`` moves
through the scenario's stages, a ``Job`` is one stage of one query on one agent (the
simulator's ``WorkItem``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EWMA_WEIGHT = 0.2  # weight of the newest stage latency in an agent's recent latency

# Agent states, as in swarmsim.view.AGENT_STATES
STARTING, RUNNING, DRAINING, SWITCHING = "starting", "running", "draining", "switching"
DEAD, STOPPED = "dead", "stopped"
GONE = (DEAD, STOPPED)


@dataclass
class Agent:
    """One worker process as the coordinator sees it."""

    id: int
    layer: str
    role: str
    shard: int
    model: str
    device: str
    node: int
    state: str
    born: float
    last_seen: float
    jobs: dict[str, Job] = field(default_factory=dict)
    switching_since: float = -1.0  # when a role change was sent
    load_mark: int = 0  # when len(jobs) last changed: ties go to the oldest, as in the sim
    queue: int = 0  # jobs waiting on the worker, from its last heartbeat
    busy_s: float = 0.0  # reported by the worker
    busy_mark: float = 0.0  # busy_s at the start of the control interval
    latency_s: float = 0.0  # EWMA of stage latencies (send to answer)
    pid: int = 0
    gone: float = -1.0  # when it died or stopped

    @property
    def ident(self) -> bytes:
        return f"w{self.id}".encode()

    def observe_latency(self, seconds: float) -> None:
        self.latency_s = (
            seconds
            if self.latency_s == 0
            else (EWMA_WEIGHT * seconds + (1 - EWMA_WEIGHT) * self.latency_s)
        )


@dataclass
class Query:
    """A client's query and its progress through the stages."""

    id: int
    client: bytes
    client_task: str
    arrival: float  # seconds since the swarm started
    deadline: float
    qclass: int
    model: str
    input_tokens: int
    output_tokens: int
    pool: int
    stage: int = 0
    stage_start: float = 0.0
    vector: np.ndarray | None = None
    pending: int = 0
    hits: list[tuple[float, int]] = field(default_factory=list)  # (score, doc id) merged
    searched: list[int] = field(default_factory=list)
    docs: list[int] = field(default_factory=list)
    answer: str = ""
    recall: float | None = None
    gold_hit: float | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    end: float = -1.0
    outcome: str = ""
    reason: str = ""
    arm: str = ""  # the controller that routed it, when one is attached


@dataclass
class Job:
    """One stage of one query, sent to one agent."""

    id: str
    query: Query
    layer: str
    action: str
    payload: Any
    shard: int = -1
    attempt: int = 1
    agent: int = -1
    sent: float = 0.0

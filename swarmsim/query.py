"""The query's vocabulary, shared by the simulator and the live runtime.

One ``Query`` moves through the scenario's stages; one ``Job`` is one stage of one query on
one agent; an agent is in one ``AgentState``; a query ends with one ``Outcome`` and, unless
it completed, one ``FailureReason``. The live runtime subclasses ``Query`` and ``Job`` only to
add what travels on the wire (client identity, vectors, job ids), so a timeline row, a summary
and a failure count mean the same on both sides.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .inference import InferenceStrategy


class Outcome(StrEnum):
    """How a query stands: in flight until it ends completed, failed or dropped."""

    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"
    FAILED = "failed"
    DROPPED = "dropped"


class FailureReason(StrEnum):
    """Why a query failed or was dropped (the keys of a summary's ``outcomes``)."""

    DEADLINE = "deadline"  # not answered within the scenario's deadline
    NO_REPLICA = "no_replica"  # a stage has no agent that can take its work
    AGENT_FAILED = "agent_failed"  # its work was on an agent that died, past the retry budget
    WORKER_ERROR = "worker_error"  # the worker answered with an error, past the retry budget
    BAD_ANSWER = "bad_answer"  # a worker's answer did not fit its stage (e.g. a bad embedding)
    NO_SHARD = "no_shard"  # a route plan with no shard to search
    NO_EMBEDDING = "no_embedding"  # a route arrived before the query's embedding
    BACKLOG_FULL = "backlog_full"  # refused at admission: the coordinator's backlog is full
    SHUTDOWN = "shutdown"  # still in flight when the swarm stopped
    HWM = "hwm"  # dropped at a socket's high-water mark
    LOSS = "loss"  # a message lost on a lossy link
    PARTITION = "partition"  # a message between partitioned nodes
    COORDINATOR_RESTART = "coordinator_restart"  # in flight when the coordinator restarted


class AgentState(IntEnum):
    """An agent's life: starting (provision + load) -> running -> draining -> stopped.

    Its value is the index a ``ClusterView`` stores in ``AgentTable.state``; its ``label``
    is the name status pages and recordings print."""

    STARTING = 0
    RUNNING = 1
    DRAINING = 2
    SWITCHING = 3  # changing role: finishing old work, then loading the new model or shard
    DEAD = 4
    STOPPED = 5

    @property
    def label(self) -> str:
        return self.name.lower()


GONE = (AgentState.DEAD, AgentState.STOPPED)

# One answered job of a query: (stage, layer, agent, node, device, sent, start, end, cached);
# cached: its prompt tokens found in its replica's prefix cache (0 for other stages)
StageRow = tuple[int, str, int, str, str, float, float, float, int]
STAGE_FIELDS = ("stage", "layer", "agent", "node", "device", "sent", "start", "end", "cached")


class Query:
    """One user query on its way through the pipeline."""

    __slots__ = (
        "arrival",
        "blocks",
        "end",
        "first_token",
        "id",
        "input_tokens",
        "model",
        "outcome",
        "output_tokens",
        "pending",
        "pool",
        "qclass",
        "reason",
        "recall",
        "searched",
        "stage",
        "stage_start",
        "strategy",
        "timeline",
    )

    def __init__(
        self,
        qid: int,
        arrival: float,
        qclass: int,
        model: str,
        input_tokens: int,
        output_tokens: int,
        pool: int,
        blocks: tuple[int, ...] = (),
    ) -> None:
        self.id = qid
        self.arrival = arrival
        self.qclass = qclass
        self.model = model
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.pool = pool  # index into the corpus's query pool
        self.blocks = blocks  # hashes of its prompt's prefix blocks (for prefix caches)
        self.stage = 0
        self.stage_start = arrival
        self.pending = 0  # fan-out answers still awaited in the current stage
        self.searched: list[int] = []  # shards whose answers arrived
        self.recall: float | None = None  # recall@k of its retrieval, once joined
        self.strategy: InferenceStrategy | None = None  # chosen at its synthesizer stage
        self.outcome = Outcome.IN_FLIGHT
        self.end = -1.0
        self.first_token = -1.0  # when its synthesizer's prefill ended (< 0: not yet)
        self.reason = ""
        self.timeline: list[StageRow] | None = None  # answered jobs, when recording

    @property
    def done(self) -> bool:
        """True once the query has its one final outcome."""
        return self.outcome is not Outcome.IN_FLIGHT

    def to_record(self) -> dict[str, Any]:
        """The query's row of a recording (``--trace-out`` / ``--record``): one JSONL schema."""
        return {
            "query": self.id,
            "class": self.qclass,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "arrival": self.arrival,
            "end": self.end,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "recall": self.recall,
            "stages": [dict(zip(STAGE_FIELDS, row, strict=True)) for row in self.timeline or ()],
        }


class Job:
    """One stage of one query for one agent (and one shard, when retrieving)."""

    __slots__ = (
        "agent",
        "attempt",
        "cached",
        "hop",
        "layer",
        "query",
        "sent",
        "shard",
        "start",
        "strategy",
    )

    def __init__(
        self,
        query: Query,
        layer: Any,
        shard: int = -1,
        strategy: InferenceStrategy | None = None,
    ) -> None:
        self.query = query
        self.layer = layer  # the simulator's Layer, or the layer's name live
        self.shard = shard
        self.strategy = strategy  # synthesizer work only: how to serve it (None: the defaults)
        self.agent: Any = None  # the agent it was sent to (the simulator's Agent, or an id live)
        self.attempt = 1  # sends so far, counting the first
        self.sent = 0.0
        self.start = 0.0
        self.hop = -1.0  # a fan-out's shared overhead draw; < 0: the job draws its own
        self.cached = 0  # prompt tokens found in its replica's prefix cache (no prefill)

"""The controller contract: ``ClusterView`` in, ``ControlPlane`` out.

``ClusterView`` is an immutable snapshot of what a controller may know; the simulator
builds it from its state and the live coordinator will build the same type from
telemetry. ``ControlPlane`` is the set of commands a controller's action turns into. Nothing
else crosses between a controller and the system it controls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .inference import InferenceStrategy

# A route plan: for each shard to search, the agent id of the replica that serves it.
RoutePlan = tuple[tuple[int, int], ...]
NO_AGENT = -1  # placed on no agent in particular: the layer's dispatch rule picks one

AGENT_STATES = ("starting", "running", "draining", "switching", "dead", "stopped")
ARRIVAL_HISTORY = 4  # completed control intervals before the last kept in arrival_history


@dataclass(frozen=True)
class AgentTable:
    """Per-agent columns, index-aligned (row i describes agent ``id[i]``)."""

    id: np.ndarray  # int64 agent id
    node: np.ndarray  # int64 node index
    layer: np.ndarray  # int64 index into ClusterView.layer_names
    shard: np.ndarray  # int64 shard held by a retriever, -1 otherwise
    state: np.ndarray  # int64 index into AGENT_STATES
    healthy: np.ndarray  # bool: alive as far as heartbeats tell
    queue: np.ndarray  # int64 jobs waiting on the agent
    in_flight: np.ndarray  # int64 jobs sent and not yet answered
    latency_s: np.ndarray  # float64 recent stage latency (EWMA)
    utilisation: np.ndarray  # float64 busy fraction since the agent started
    kv_util: np.ndarray  # float64 prefix (KV) cache blocks held / capacity (0 without a cache)
    training: np.ndarray  # bool: a background training job shares the agent's GPU


@dataclass(frozen=True)
class LayerStats:
    """One layer's aggregate state over the last control interval."""

    role: str
    on_gpu: bool  # its replicas run on GPUs (an agent changes role only within its device kind)
    running: int
    starting: int  # provisioning, loading or switching into the layer
    draining: int
    arrival_rate: float  # jobs/s dispatched to the layer over the last interval
    # jobs/s of each of up to ARRIVAL_HISTORY completed intervals before it, oldest first
    # (fewer early in a run): the recent history a forecasting controller reads
    arrival_history: tuple[float, ...]
    queue: int  # jobs waiting: in agents' queues plus the coordinator's backlog
    backlog: int  # jobs held at the coordinator for want of an agent that can take them
    in_flight: int  # jobs sent to agents and not yet answered (queued, in service, in transit)
    p95_latency_s: float  # stage latency over the last interval (0 when none finished)
    throughput: float  # jobs/s the layer answered over the last interval
    utilisation: float  # busy fraction of the live replicas over the last interval
    cost_rate: float  # USD per hour of the devices the layer occupies


@dataclass(frozen=True)
class Totals:
    """Cumulative counters since the run began; a reward is a difference of two of these."""

    submitted: int
    completed: int
    failed: int
    dropped: int
    slo_violations: int  # known late: finished past the SLO, failed, dropped, or still in
    # flight past the SLO (counted once: a late query moves from in flight to finished)
    latency_s: float  # summed end-to-end latency of completed queries
    recall: float  # summed recall@k of retrievals, credited when a retrieval's answers join
    retrievals: int  # retrievals joined
    stage_s: dict[str, float]  # per role: summed time queries spent in its stages (to the join)
    load_s: float  # agent-seconds spent loading (starting or switching), not serving
    cost_usd: float
    gpu_hours: float
    quality: float = 0.0  # summed answer quality of completed queries (precision x recall@k)


@dataclass(frozen=True)
class QueryOutcome:
    """How one query ended: what a controller learning from outcomes is told."""

    id: int
    qclass: int
    outcome: str  # "completed", "failed" or "dropped"
    latency_s: float  # arrival to end
    quality: float  # answer quality (precision factor x recall@k); 0 unless completed
    slo_violated: bool  # failed, dropped, or completed slower than the SLO


@dataclass(frozen=True)
class QueryInfo:
    """The query being decided on: its class, token counts, per-shard relevance estimate and,
    for a synthesizer placement, its prompt's prefix blocks and how many each agent holds."""

    id: int
    qclass: int
    model: str
    input_tokens: int
    output_tokens: int
    relevance: np.ndarray  # float32 (n_shards,): similarity of the query to each shard centroid
    layer: int = -1  # index into ClusterView.layer_names of the layer of its current stage
    blocks: int = 0  # prefix blocks of its prompt (swarmsim.prefix)
    # int64 per agent row: leading prompt blocks cached on that agent (0 without a cache)
    overlap: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # int64 per agent row: leading prompt blocks cached there or held by a prompt queued or in
    # service there, so cached when this query would be served (at least ``overlap``)
    pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True)
class ClusterView:
    """What a controller may know at one decision point."""

    time_s: float
    node_names: tuple[str, ...]
    node_up: np.ndarray  # bool per node
    node_group: np.ndarray  # int64 per node: index into group_names (the node's class)
    group_names: tuple[str, ...]
    layer_names: tuple[str, ...]
    layer_roles: tuple[str, ...]  # the role of each layer, aligned with layer_names
    layers: dict[str, LayerStats]  # empty when the decision did not ask for layer statistics
    agents: AgentTable  # the agents of the roles the decision asked for (all by default)
    n_shards: int
    totals: Totals
    query: QueryInfo | None = None

    def replicas(self, shard: int) -> np.ndarray:
        """Row indices into ``agents`` of the replicas holding ``shard``."""
        return np.flatnonzero(self.agents.shard == shard)


@runtime_checkable
class ControlPlane(Protocol):
    """The commands a controller's action turns into (simulator or live runtime)."""

    def route(self, query: int, plan: RoutePlan) -> None:
        """Search the plan's shards for ``query``, each on the named replica."""

    def configure(self, query: int, strategy: InferenceStrategy) -> None:
        """Serve ``query``'s synthesizer stage with ``strategy`` (batch size, precision)."""

    def place(self, query: int, agent: int) -> None:
        """Send ``query``'s synthesizer job to ``agent``, an accepting replica of its
        synthesizer layer (``NO_AGENT``: the layer's dispatch rule picks, as when none accepts)."""

    def scale(self, layer: str, target: int) -> None:
        """Set the number of replicas of ``layer`` (clamped to its min/max)."""

    def assign(self, agent: int, layer: str, shard: int | None = None) -> None:
        """Move ``agent`` into ``layer`` (a role and its model); retrievers hold ``shard``."""


@runtime_checkable
class Swarm(ControlPlane, Protocol):
    """What a decision runs against: views in, ControlPlane commands out. The simulator
    (``Simulation``) and the live coordinator are both one, so one decide loop serves both."""

    def view(
        self, query: Any = None, roles: tuple[str, ...] | None = None, layer_stats: bool = True
    ) -> ClusterView:
        """A ``ClusterView`` for a decision about ``query`` (None: an interval's decision),
        with the agent rows of ``roles`` (all when None) and, if asked, layer statistics."""

"""The metrics summary of a run: one ``Summary`` type for the simulator and the live runtime.

Both builders return the same keys (ARCHITECTURE.md's schema plus detail), so a simulated and a
live run compare line by line; a figure one side cannot measure is None there (``events`` live,
``coordinator_cpu_s`` and ``client`` in the simulator).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

import numpy as np

from .query import AgentState

if TYPE_CHECKING:
    from .cluster import Layer
    from .metrics import Metrics
    from .query import Query
    from .simulation import Simulation


class QueryCounts(TypedDict):
    submitted: int
    completed: int
    failed: int
    dropped: int
    in_flight: int


class LatencySummary(TypedDict):
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class TtftSummary(TypedDict):
    p50: float
    p99: float


class KVCacheSummary(TypedDict):
    hit_rate: float | None  # prefix blocks found cached / blocks looked up, over all replicas
    per_replica: dict[str, float | None]  # by agent id


class SloSummary(TypedDict):
    target_s: float
    overdue_in_flight: int  # post-warm-up queries still in flight past the SLO at the end
    violation_rate: float | None
    goodput_qps: float | None  # post-warm-up queries finished within the SLO per second after it


class Replicas(TypedDict):
    running: int
    starting: int  # starting or switching into the layer
    draining: int
    dead: int


class Messages(TypedDict):
    sent: int  # simulator: sent on the fabric; live: sent by the coordinator
    received: int  # simulator: delivered; live: received by the coordinator
    dropped: dict[str, int]  # by reason; live: refused (malformed or unexpected) messages


class FailureCounts(TypedDict):
    nodes: int
    agents: int  # agents (worker processes) that died
    partitions: int
    retries: int
    role_changes: int
    unmet_scale_requests: int | None


class AppliedFault(TypedDict):
    text: str  # the spec, as written
    kind: str
    at: float
    end: float | None  # when it was lifted (None: never)
    agents: list[int]  # the agents it struck (worker and link faults; [] for the others)


class FaultSummary(TypedDict):
    """What a fault schedule did (present only when the run had one)."""

    applied: list[AppliedFault]
    deaths_declared: int  # agents declared dead because of an injected fault (not kills)
    false_deaths: int  # of them, agents that were serving: their heartbeats were lost or late
    late_results_discarded: int  # answers of work already given up on (re-dispatched or failed)
    messages_dropped: int  # job and answer messages lost to drop faults
    heartbeats_lost: int  # heartbeats lost to drop faults
    guardrail_fallbacks: int  # controller decisions a controller fault spoiled (heuristic used)
    availability: float | None  # post-warm-up queries completed / those that ended
    window_availability: float | None  # post-warm-up windows with goodput > 0 / all windows
    window_s: float


class QueryFigures(TypedDict):
    """The parts of a summary both sides compute the same way from their ``Metrics``."""

    queries: QueryCounts
    latency_s: LatencySummary
    slo: SloSummary
    recall_at_k: float | None
    answer_quality: float | None
    outcomes: dict[str, int]  # failed or dropped queries by FailureReason


class Summary(QueryFigures):
    scenario: str
    seed: int
    mode: Literal["sim", "live"]
    duration_s: float  # simulated seconds, or live seconds since the load started
    wall_s: float
    gpu_hours: float
    cost_usd: float
    throughput_qps: float
    utilisation: dict[str, float | None]
    replicas: dict[str, Replicas]
    messages: Messages
    failures: FailureCounts
    controllers: dict[str, Any]  # per Task: the controller that decided and its counters
    ttft_s: TtftSummary | None  # arrival to the end of the synthesizer's prefill (None: none)
    kv_cache: KVCacheSummary | None  # prefix-cache hits (None without caches)
    sessions: Literal["timestamp", "closed-loop"] | None  # how turns were sent (None: no sessions)
    events: int | None  # SimPy events (simulator only)
    coordinator_cpu_s: float | None  # the live coordinator's CPU seconds (live only)
    client: dict[str, Any] | None  # the live load generator's own counts (live only)
    faults: NotRequired[FaultSummary]  # only for a run with a fault schedule


# postponed annotations hide NotRequired from TypedDict, so the optional keys are named here
OPTIONAL_KEYS = frozenset({"faults"})
SUMMARY_KEYS = frozenset(Summary.__required_keys__) - OPTIONAL_KEYS


def query_figures(m: Metrics, overdue: int, now: float) -> QueryFigures:
    """The query counts, latency, SLO, recall, quality and failure reasons of a run that has
    run until ``now``."""
    return QueryFigures(
        queries=m.query_summary(),
        latency_s=m.latency_summary(),
        slo=m.slo_summary(overdue, now),
        recall_at_k=float(np.mean(m.recalls)) if m.recalls else None,
        answer_quality=float(np.mean(m.qualities)) if m.qualities else None,
        outcomes=dict(sorted(m.reasons.items())),
    )


def count_overdue(active: Mapping[int, Query], now: float, slo_s: float, since: float) -> int:
    """Queries in flight (arrived at or after ``since``) older than the SLO: O(overdue),
    since ``active`` is in arrival order."""
    cutoff = now - slo_s
    count = 0
    for query in active.values():
        if query.arrival >= cutoff:
            break
        count += query.arrival >= since
    return count


class OverdueCounter:
    """``count_overdue(active, now, slo_s, since=0)`` kept as queries arrive and end: each
    query is looked at when it passes the SLO age and once more if it then ends, where the
    scan costs O(overdue) per view (thousands on an overloaded cluster)."""

    __slots__ = ("count", "cutoff", "slo_s", "young")

    def __init__(self, slo_s: float) -> None:
        self.slo_s = slo_s
        self.young: deque[Query] = deque()  # accepted, in arrival order, not yet looked at
        self.cutoff = -math.inf  # every arrival before this was looked at
        self.count = 0

    def accepted(self, query: Query, now: float) -> None:
        """``query`` arrived now (after every query before it)."""
        self.young.append(query)
        self.at(now)  # so that ``young`` stays short when nobody asks

    def ended(self, query: Query) -> None:
        """``query`` ended: it no longer counts if it was overdue when last looked at."""
        if query.arrival < self.cutoff:
            self.count -= 1

    def at(self, now: float) -> int:
        """Queries in flight at ``now`` older than the SLO (``now`` never decreases)."""
        cutoff = self.cutoff = now - self.slo_s
        young = self.young
        while young and young[0].arrival < cutoff:
            self.count += not young.popleft().done
        return self.count


def summarize(sim: Simulation, wall_s: float) -> Summary:
    """The simulator's summary: utilisation, messages, failures and cost beside the queries."""
    m, now = sim.metrics, sim.env.now
    fabric, failures = sim.fabric, sim.failures
    layers = sim.cluster.layers
    summary = Summary(
        scenario=sim.scenario.name,
        seed=sim.seed,
        mode="sim",
        duration_s=now,
        wall_s=wall_s,
        **query_figures(m, sim.coordinator.overdue(since=m.warmup_s), now),  # type: ignore[typeddict-item]  # mypy: ** with a NotRequired key
        gpu_hours=sim.cluster.gpu_hours(now),
        cost_usd=sim.cluster.cost_usd(now),
        throughput_qps=m.completed / now if now > 0 else 0.0,
        utilisation={name: _utilisation(layer, now) for name, layer in layers.items()},
        replicas={n: replica_counts(a.state for a in ly.agents) for n, ly in layers.items()},
        messages=Messages(
            sent=fabric.sent,
            received=fabric.delivered,
            dropped=dict(sorted(fabric.dropped.items())),
        ),
        failures=FailureCounts(
            nodes=failures.node_failures,
            agents=failures.agent_failures,
            partitions=failures.partitions,
            retries=m.retries,
            role_changes=m.role_changes,
            unmet_scale_requests=sim.lifecycle.unmet,
        ),
        controllers={},
        ttft_s=ttft_summary(m.ttfts),
        kv_cache=kv_cache_summary({a: (c.hits, c.lookups) for a, c in sim.cluster.caches.items()}),
        sessions=sim.scenario.workload.session_mode,
        events=sim.event_count(),
        coordinator_cpu_s=None,
        client=None,
    )
    if sim.injector is not None:
        summary["faults"] = sim.injector.summary()
    return summary


def availability(m: Metrics) -> float | None:
    """Post-warm-up queries that completed, over those that ended (completed, failed or
    dropped); None before any ended. The same counters exist live, so both compare."""
    ended = len(m.latencies) + m.late_failures
    return len(m.latencies) / ended if ended else None


def window_availability(
    ok_ends: Iterable[float], start: float, end: float, width: float
) -> float | None:
    """The fraction of ``width``-second windows from ``start`` to ``end`` (a last partial window
    counts if at least half a window) in which some query completed within its SLO (goodput >
    0), from those completions' end times; None for a span shorter than half a window."""
    n = int((end - start) / width + 0.5)
    if n <= 0:
        return None
    up = {int((t - start) // width) for t in ok_ends if start <= t < end}
    return len(up & set(range(n))) / n


def ttft_summary(ttfts: list[float]) -> TtftSummary | None:
    """Median and p99 time to first token of completed post-warm-up queries."""
    if not ttfts:
        return None
    p50, p99 = np.percentile(ttfts, [50, 99])
    return TtftSummary(p50=float(p50), p99=float(p99))


def kv_cache_summary(counts: Mapping[int, tuple[int, int]]) -> KVCacheSummary | None:
    """Prefix-cache hit rates, overall and per replica, from (blocks hit, blocks looked up)
    by agent id (None when no replica has a cache)."""
    if not counts:
        return None
    hits = sum(h for h, _ in counts.values())
    lookups = sum(n for _, n in counts.values())
    return KVCacheSummary(
        hit_rate=hits / lookups if lookups else None,
        per_replica={str(aid): h / n if n else None for aid, (h, n) in sorted(counts.items())},
    )


def _utilisation(layer: Layer, now: float) -> float | None:
    """Busy fraction of the layer's replica-time (agents ever in the layer and still there)."""
    busy = alive = 0.0
    for a in layer.agents:
        end = now if a.gone < 0 else a.gone
        busy += a.busy_s + (now - a.busy_since if a.batch else 0.0)
        alive += end - a.born
    return busy / alive if alive > 0 else None


def replica_counts(states: Iterable[AgentState]) -> Replicas:
    """A layer's replicas by state, from its agents' states (sim and live alike)."""
    counts = Counter(states)
    return Replicas(
        running=counts[AgentState.RUNNING],
        starting=counts[AgentState.STARTING] + counts[AgentState.SWITCHING],
        draining=counts[AgentState.DRAINING],
        dead=counts[AgentState.DEAD],
    )

"""What the coordinator knows, as a ``ClusterView`` for controllers and as Prometheus
metrics for people: queue depths, latency histograms per stage, workers per role, failures.

Billing is emulated: an agent on a GPU device bills its device's price from the profile for
as long as it lives, as the simulator's meter does; no GPU is used on loopback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from swarmsim.query import Outcome
from swarmsim.view import ClusterView, LayerStats, QueryInfo, Totals

if TYPE_CHECKING:
    from .coordinator import Coordinator
    from .state import Query
LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Telemetry:
    """Prometheus metrics of one coordinator, served on ``port`` (0: any free port; None:
    kept in memory only)."""

    def __init__(self, port: int | None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.queue = Gauge("swarmsim_queue_depth", "jobs waiting per layer", ["layer"], registry=r)
        self.workers = Gauge(
            "swarmsim_workers", "workers per role and state", ["role", "state"], registry=r
        )
        self.stage = Histogram(
            "swarmsim_stage_latency_seconds",
            "send-to-answer time per stage",
            ["layer"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "swarmsim_query_latency_seconds",
            "end-to-end query latency",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queries = Counter("swarmsim_queries", "queries by outcome", ["outcome"], registry=r)
        self.accepted = Counter("swarmsim_queries_accepted", "queries accepted", registry=r)
        self.deaths = Counter(
            "swarmsim_worker_deaths", "workers declared dead", ["reason"], registry=r
        )
        self.errors = Counter(
            "swarmsim_protocol_errors", "messages refused", ["reason"], registry=r
        )
        self.changes = Counter(
            "swarmsim_controller_changes",
            "controllers attached, replaced, detached, benched, reinstated and auto-detached",
            ["task", "change"],
            registry=r,
        )
        self.server = None
        self.port: int | None = None
        if port is not None:
            self.server, _thread = start_http_server(port, addr="127.0.0.1", registry=r)
            self.port = self.server.server_port
        self.last_sample = -1.0
        self._children: dict[tuple[int, str], object] = {}  # labelled series of the hot path

    def query_in(self) -> None:
        self.accepted.inc()

    def query_out(self, outcome: Outcome, latency_s: float) -> None:
        _child(self.queries, self._children, str(outcome)).inc()
        if outcome == Outcome.COMPLETED:
            self.latency.observe(latency_s)

    def stage_latency(self, layer: str, seconds: float) -> None:
        _child(self.stage, self._children, layer).observe(seconds)

    def worker_death(self, reason: str) -> None:
        self.deaths.labels(reason).inc()

    def controller_change(self, task: str, change: str) -> None:
        self.changes.labels(task, change).inc()

    def protocol_error(self, reason: str) -> None:
        self.errors.labels(reason).inc()

    def sample(self, coord: Coordinator) -> None:
        """Refresh the gauges (at most once a second)."""
        now = coord.now()
        if now - self.last_sample < 1.0:
            return
        self.last_sample = now
        for name, backlog in coord.dispatch.backlog.items():
            waiting = sum(a.queue for a in coord.roster.members(name))
            self.queue.labels(name).set(len(backlog) + waiting)
        counts: dict[tuple[str, str], int] = {}
        for a in coord.agents.values():
            key = (a.role, a.state.label)
            counts[key] = counts.get(key, 0) + 1
        self.workers.clear()
        for (role, state), n in counts.items():
            self.workers.labels(role, state).set(n)

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _child(metric, cache: dict, label: str):
    """``metric.labels(label)``, looked up once (``labels`` costs more than ``inc``)."""
    key = (id(metric), label)
    child = cache.get(key)
    if child is None:
        child = cache[key] = metric.labels(label)
    return child


def build_view(
    coord: Coordinator, query: Query | None, roles: tuple[str, ...] | None, layer_stats: bool
) -> ClusterView:
    """The live swarm as a ``ClusterView`` (the same type the simulator builds), its agent
    table read from the roster's columns (``live.columns``), not rebuilt from the agents."""
    now = coord.now()
    scenario, roster, columns = coord.scenario, coord.roster, coord.roster.columns
    names = tuple(scenario.layers)
    columns.flush()
    rows = columns.rows(roles)
    n_nodes = len(coord.node_names)
    layers = {}
    if layer_stats:
        sums = columns.layer_sums(now, coord.window.start)
        layers = {n: _layer_stats(coord, sums, i, n, now) for i, n in enumerate(names)}
    return ClusterView(
        time_s=now,
        node_names=coord.node_names,
        node_up=roster.node_up(n_nodes, now),
        node_group=np.arange(n_nodes),
        group_names=coord.node_names,
        layer_names=names,
        layer_roles=coord.layer_roles,
        layers=layers,
        agents=columns.table(rows, now, roster.dead_after_s),
        n_shards=coord.files.n_shards,
        totals=_totals(coord, now),
        query=None if query is None else _query_info(coord, query, rows),
    )


def _layer_stats(
    coord: Coordinator, sums: dict[str, np.ndarray], i: int, name: str, now: float
) -> LayerStats:
    """Layer ``name``'s statistics; ``sums`` are the columns' per-layer sums (``i`` its index)."""
    cfg, window = coord.scenario.layers[name], coord.window
    backlog = len(coord.dispatch.backlog[name])
    recent = window.recent[name]
    busy, alive = float(sums["busy_s"][i]), float(sums["alive_s"][i])
    return LayerStats(
        role=cfg.role,
        on_gpu=cfg.device == "gpu",
        running=int(sums["running"][i]),
        starting=int(sums["loading"][i]),
        draining=int(sums["draining"][i]),
        arrival_rate=window.rate(name, now),
        arrival_history=window.history(name),
        queue=int(sums["queue"][i]) + backlog,
        backlog=backlog,
        in_flight=int(sums["in_flight"][i]),
        p95_latency_s=float(np.percentile(recent, 95)) if recent else 0.0,
        throughput=len(recent) / window.elapsed(now),
        utilisation=min(busy / alive, 1.0) if alive > 0 else 0.0,
        cost_rate=float(sums["cost_rate"][i]),
    )


def billing(coord: Coordinator, now: float) -> tuple[float, float]:
    """(GPU-hours, USD) billed so far by agents on GPU devices (emulated billing)."""
    coord.roster.columns.flush()
    return coord.roster.columns.billing(now)


def _totals(coord: Coordinator, now: float) -> Totals:
    m = coord.metrics
    overdue = coord.pipeline.overdue.at(now)  # kept as queries arrive and end
    gpu_hours, cost = billing(coord, now)
    return Totals(
        submitted=m.submitted,
        completed=m.completed,
        failed=m.failed,
        dropped=m.dropped,
        slo_violations=m.slo_violations + overdue,
        latency_s=m.latency_sum,
        recall=m.recall_sum,
        retrievals=m.retrievals,
        stage_s=dict(coord.stage_s),
        load_s=m.load_s,
        cost_usd=cost,
        gpu_hours=gpu_hours,
    )


def _query_info(coord: Coordinator, query: Query, rows: np.ndarray) -> QueryInfo:
    """The query being decided on; its prompt's overlap with each agent row's prefix cache
    comes from the coordinator's ``KVIndex`` (the simulator peeks at the caches themselves)."""
    relevance = np.zeros(coord.files.n_shards, dtype=np.float32)
    if query.vector is not None:
        relevance = np.asarray(coord.files.centroids @ query.vector, dtype=np.float32)
    layer = -1
    if query.stage < len(coord.pipeline.stages):
        layer = coord.roster.columns.layer_index[coord.pipeline.layer_of(query)]
    by_row = coord.roster.columns.agents
    agents = [by_row[r] for r in rows.tolist()]
    overlap = coord.kv.overlap(query.blocks, agents)
    return QueryInfo(
        query.id,
        query.qclass,
        query.model,
        query.input_tokens,
        query.output_tokens,
        relevance,
        layer,
        len(query.blocks),
        overlap,
        coord.kv.pending(query, agents, overlap),
    )

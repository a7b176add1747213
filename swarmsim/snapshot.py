"""Build ``ClusterView`` snapshots from the simulator's state (only at decision points)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .cluster import AgentState
from .view import AgentTable, ClusterView, LayerStats, QueryInfo, Totals

if TYPE_CHECKING:
    from .coordinator import Query
    from .simulation import Simulation


def build_view(
    sim: Simulation,
    query: Query | None = None,
    roles: tuple[str, ...] | None = None,
    layer_stats: bool = True,
) -> ClusterView:
    """A read-only snapshot of nodes, layers, agents (of ``roles``; all when None), the
    cumulative totals and, when routing, the query. Per-query decisions ask for less."""
    now = sim.env.now
    cluster = sim.cluster
    names = tuple(cluster.layers)
    groups = [g.name for g in sim.scenario.nodes]
    return ClusterView(
        time_s=now,
        node_names=tuple(n.name for n in cluster.nodes),
        node_up=_ro(np.array([n.up and not n.failed for n in cluster.nodes], dtype=bool)),
        node_group=_ro(np.array([groups.index(n.group.name) for n in cluster.nodes])),
        group_names=tuple(groups),
        layer_names=names,
        layers={n: _layer_stats(sim, ly, now) for n, ly in cluster.layers.items()}
        if layer_stats
        else {},
        agents=_agent_table(sim, names, now, roles),
        n_shards=sim.n_shards,
        totals=_totals(sim, now),
        query=None if query is None else _query_info(sim, query),
    )


def _totals(sim: Simulation, now: float) -> Totals:
    m = sim.metrics
    return Totals(
        submitted=m.submitted,
        completed=m.completed,
        failed=m.failed,
        dropped=m.dropped,
        slo_violations=m.slo_violations,
        latency_s=m.latency_sum,
        recall=m.recall_sum,
        retrievals=m.retrievals,
        stage_s={name: layer.stage_s for name, layer in sim.cluster.layers.items()},
        load_s=m.load_s,
        cost_usd=sim.cluster.cost_usd(now),
        gpu_hours=sim.cluster.gpu_hours(now),
    )


def _agent_table(
    sim: Simulation, names: tuple[str, ...], now: float, roles: tuple[str, ...] | None
) -> AgentTable:
    agents = [
        a
        for a in sim.cluster.agents
        if a.state != AgentState.STOPPED and (roles is None or a.layer.role in roles)
    ]
    index = {name: i for i, name in enumerate(names)}

    def col(values, dtype):
        return _ro(np.fromiter(values, dtype=dtype, count=len(agents)))

    return AgentTable(
        id=col((a.id for a in agents), np.int64),
        node=col((a.node.id for a in agents), np.int64),
        layer=col((index[a.layer.name] for a in agents), np.int64),
        shard=col((a.shard for a in agents), np.int64),
        state=col((int(a.state) for a in agents), np.int64),
        healthy=col((a.known_alive for a in agents), bool),
        queue=col((len(a.queue) + len(a.blocked) for a in agents), np.int64),
        in_flight=col((a.outstanding for a in agents), np.int64),
        latency_s=col((a.latency_s for a in agents), np.float64),
        utilisation=col((_busy(a, now) / max(now - a.born, 1e-9) for a in agents), np.float64),
    )


def _busy(agent, now: float) -> float:
    return agent.busy_s + (now - agent.busy_since if agent.batch else 0.0)


def _layer_stats(sim: Simulation, layer, now: float) -> LayerStats:
    live = [a for a in layer.agents if a.state != AgentState.DEAD]
    lat = layer.recent_latency
    interval = sim.scenario.control_interval_s
    busy = sum(_busy(a, now) for a in live)
    alive = sum(now - a.born for a in live)
    return LayerStats(
        role=layer.role,
        running=layer.count(AgentState.RUNNING),
        starting=layer.count(AgentState.STARTING, AgentState.SWITCHING),
        draining=layer.count(AgentState.DRAINING),
        arrival_rate=layer.arrivals / interval,
        queue=sum(len(a.queue) for a in live) + len(layer.backlog),
        in_flight=sum(a.outstanding for a in live),
        p95_latency_s=float(np.percentile(lat, 95)) if lat else 0.0,
        throughput=len(lat) / interval,
        utilisation=busy / alive if alive > 0 else 0.0,
        cost_rate=sim.cluster.cost_rate(layer),
    )


def _query_info(sim: Simulation, query: Query) -> QueryInfo:
    relevance = sim.corpus.relevance[query.pool] if sim.corpus is not None else np.zeros(0)
    return QueryInfo(query.id, query.qclass, query.model, query.in_tok, query.out_tok, relevance)


def _ro(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr

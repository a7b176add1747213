"""Build ``ClusterView`` snapshots from the simulator's state (only at decision points)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

from .kvcache import pending_blocks
from .query import AgentState
from .view import AgentTable, ClusterView, LayerStats, QueryInfo, Totals

if TYPE_CHECKING:
    from .cluster import Agent, Layer
    from .query import Query
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
    names = cluster.names
    agents = _agents(sim, roles)
    return ClusterView(
        time_s=now,
        node_names=names.nodes,
        node_up=_ro(np.array([n.up and not n.failed for n in cluster.nodes], dtype=bool)),
        node_group=names.node_group,
        group_names=names.groups,
        layer_names=names.layers,
        layer_roles=names.layer_roles,
        layers={n: _layer_stats(sim, ly, now) for n, ly in cluster.layers.items()}
        if layer_stats
        else {},
        agents=_agent_table(now, agents),
        n_shards=sim.n_shards,
        totals=_totals(sim, now),
        query=None if query is None else _query_info(sim, query, agents),
    )


def _totals(sim: Simulation, now: float) -> Totals:
    m = sim.metrics
    usd, gpu_s = sim.cluster.meter.totals(now)  # Cluster.cost_usd and gpu_hours, read once
    return Totals(
        submitted=m.submitted,
        completed=m.completed,
        failed=m.failed,
        dropped=m.dropped,
        slo_violations=m.slo_violations + sim.coordinator.overdue(),
        latency_s=m.latency_sum,
        recall=m.recall_sum,
        retrievals=m.retrievals,
        stage_s=_stage_by_role(sim),
        load_s=m.load_s,
        cost_usd=usd,
        gpu_hours=gpu_s / 3600,
        quality=m.quality_sum,
    )


def _stage_by_role(sim: Simulation) -> dict[str, float]:
    out: dict[str, float] = {}
    for layer in sim.cluster.layers.values():
        out[layer.role] = out.get(layer.role, 0.0) + layer.stage_s
    return out


def _agents(sim: Simulation, roles: tuple[str, ...] | None) -> list[Agent]:
    """The agents of ``roles`` (all when None) in agent-id order: the view's rows."""
    layers = [ly for ly in sim.cluster.layers.values() if roles is None or ly.role in roles]
    agents = [a for ly in layers for a in ly.agents]  # layers hold every agent not stopped
    if len(layers) > 1:
        agents.sort(key=attrgetter("id"))
    return agents


def _agent_table(now: float, agents: list[Agent]) -> AgentTable:
    """One pass over the agents into flat integer and float lists (a quarter faster than a
    list of row tuples), then a matrix of each and column views. A layer's id is its index
    in ``ClusterView.layer_names`` (the cluster numbers its layers in that order)."""
    ints: list[int] = []
    floats: list[float] = []
    for a in agents:
        kv = a.kv
        busy = a.busy_s + (now - a.busy_since if a.batch else 0.0)  # seconds served so far
        ints += (a.id, a.node.id, a.layer.id, a.shard, a.state, a.known_alive,
                 len(a.queue) + len(a.blocked), a.outstanding, a.device.training)  # fmt: skip
        floats += (
            a.latency_s,
            busy / max(now - a.born, 1e-9),
            0.0 if kv is None else kv.utilisation,
        )
    i = np.fromiter(ints, dtype=np.int64, count=len(ints)).reshape(-1, 9)  # np.array's values
    f = np.array(floats, dtype=np.float64).reshape(-1, 3)
    flags = i[:, (5, 8)].astype(bool)
    i.flags.writeable = f.flags.writeable = flags.flags.writeable = False
    return AgentTable(
        id=i[:, 0], node=i[:, 1], layer=i[:, 2], shard=i[:, 3], state=i[:, 4],
        healthy=flags[:, 0], queue=i[:, 6], in_flight=i[:, 7],
        latency_s=f[:, 0], utilisation=f[:, 1], kv_util=f[:, 2],
        training=flags[:, 1],
    )  # fmt: skip


def _layer_stats(sim: Simulation, layer: Layer, now: float) -> LayerStats:
    running = starting = draining = 0
    live = []
    for a in layer.agents:  # Layer.count's three counts and the live agents, in one pass
        state = a.state
        if state == AgentState.RUNNING:
            running += 1
        elif state == AgentState.STARTING or state == AgentState.SWITCHING:
            starting += 1
        elif state == AgentState.DRAINING:
            draining += 1
        if state != AgentState.DEAD:
            live.append(a)
    lat = layer.recent_latency
    interval = sim.scenario.control_interval_s
    start = layer.interval_start
    busy = layer.busy_recent + sum(a.busy_recent(now) for a in live)
    alive = sum(now - max(a.born, start) for a in live)
    return LayerStats(
        role=layer.role,
        on_gpu=layer.cfg.device == "gpu",
        running=running,
        starting=starting,
        draining=draining,
        arrival_rate=layer.arrivals / interval,
        arrival_history=tuple(layer.arrival_history),
        queue=sum(len(a.queue) for a in live) + len(layer.backlog),
        backlog=len(layer.backlog),
        in_flight=sum(a.outstanding for a in live),
        p95_latency_s=p95(lat) if lat else 0.0,
        throughput=len(lat) / interval,
        utilisation=min(busy / alive, 1.0) if alive > 0 else 0.0,
        cost_rate=sim.cluster.cost_rate(layer),
    )


def p95(values: Sequence[float]) -> float:
    """``float(np.percentile(values, 95))`` bit for bit, for numbers that are not NaN, at a
    tenth of its cost: the same virtual index, neighbours and linear interpolation (numpy's
    ``_lerp``, which interpolates from the upper neighbour from half way)."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("p95 of no values")
    virtual = (n - 1) * 0.95  # numpy: (n - 1) * (95 / 100)
    if virtual >= n - 1:
        return float(ordered[-1])
    i = math.floor(virtual)
    below, above = ordered[i], ordered[i + 1]
    t = virtual - i
    diff = above - below
    return float(above - diff * (1 - t) if t >= 0.5 else below + diff * t)


def _query_info(sim: Simulation, query: Query, agents: list[Agent]) -> QueryInfo:
    relevance = sim.corpus.relevance[query.pool] if sim.corpus is not None else np.zeros(0)
    layer = -1
    if query.stage < len(sim.stage_layers):
        layers = sim.stage_layers[query.stage]
        # a layer's id is its index in the view's layer_names (see ``_agent_table``)
        layer = layers.id if not isinstance(layers, dict) else layers[query.model].id
    overlap = _overlap(query, agents)
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
        _pending(query, agents, overlap),
    )


def _overlap(query: Query, agents: list[Agent]) -> np.ndarray:
    """Per agent row: the query's leading prefix blocks its cache holds (peeked, not touched)."""
    blocks = query.blocks
    if not blocks:
        return np.zeros(len(agents), dtype=np.int64)
    return np.array([0 if a.kv is None else a.kv.peek(blocks) for a in agents], dtype=np.int64)


def _pending(query: Query, agents: list[Agent], overlap: np.ndarray) -> np.ndarray:
    """Per agent row: the query's leading prefix blocks cached there or held by a prompt
    queued or in service there (cached by the time the query would be served)."""
    held = (() if a.kv is None else (j.query.blocks for j in (*a.batch, *a.queue)) for a in agents)
    return pending_blocks(query.blocks, overlap, held)


def _ro(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr

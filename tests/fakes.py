"""Hand-built ClusterViews and a recording ControlPlane, for unit tests of the Tasks; a tiny
trace writer and a launcher that starts nothing, shared by tests in several directories."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmsim.view import AgentTable, ClusterView, LayerStats, QueryInfo, Totals


@dataclass
class RecordingPlane:
    """A ControlPlane that records the calls a Task makes."""

    calls: list[tuple] = field(default_factory=list)
    refuse_assign: bool = False

    def route(self, query: int, plan) -> None:
        self.calls.append(("route", query, tuple(plan)))

    def configure(self, query: int, strategy) -> None:
        self.calls.append(("configure", query, strategy))

    def place(self, query: int, agent: int) -> None:
        self.calls.append(("place", query, agent))

    def scale(self, layer: str, target: int) -> None:
        self.calls.append(("scale", layer, target))

    def assign(self, agent: int, layer: str, shard: int | None = None) -> None:
        if self.refuse_assign:
            raise ValueError("does not fit")
        self.calls.append(("assign", agent, layer))


def totals(**kw) -> Totals:
    base = dict(
        submitted=0, completed=0, failed=0, dropped=0, slo_violations=0, latency_s=0.0,
        recall=0.0, retrievals=0, stage_s={}, load_s=0.0, cost_usd=0.0, gpu_hours=0.0,
    )  # fmt: skip
    base.update(kw)
    return Totals(**base)


def agents(rows: list[dict]) -> AgentTable:
    """An agent table from dicts with keys id, node, layer, shard, state, healthy, queue,
    in_flight, latency_s, utilisation, kv_util, training (defaults: running, healthy, idle,
    no cache, no training job on its GPU)."""
    defaults = dict(node=0, layer=0, shard=-1, state=1, healthy=True, queue=0, in_flight=0,
                    latency_s=0.0, utilisation=0.0, kv_util=0.0, training=False)  # fmt: skip
    full = [{**defaults, **r} for r in rows]

    def col(key, dtype):
        return np.array([r[key] for r in full], dtype=dtype)

    return AgentTable(
        id=col("id", np.int64), node=col("node", np.int64), layer=col("layer", np.int64),
        shard=col("shard", np.int64), state=col("state", np.int64), healthy=col("healthy", bool),
        queue=col("queue", np.int64), in_flight=col("in_flight", np.int64),
        latency_s=col("latency_s", np.float64), utilisation=col("utilisation", np.float64),
        kv_util=col("kv_util", np.float64),
        training=col("training", bool),
    )  # fmt: skip


def layer(role: str, **kw) -> LayerStats:
    base = dict(role=role, on_gpu=True, running=1, starting=0, draining=0, arrival_rate=0.0,
                arrival_history=(), queue=0, backlog=0, in_flight=0, p95_latency_s=0.0,
                throughput=0.0, utilisation=0.0, cost_rate=0.0)  # fmt: skip
    base.update(kw)
    return LayerStats(**base)


def view(
    agent_rows: list[dict],
    layers: dict[str, LayerStats] | None = None,
    n_shards: int = 0,
    query: QueryInfo | None = None,
    node_group: tuple[int, ...] = (0,),
    group_names: tuple[str, ...] = ("g",),
    total: Totals | None = None,
) -> ClusterView:
    layers = layers or {"retriever": layer("retriever")}
    return ClusterView(
        time_s=10.0,
        node_names=tuple(f"n{i}" for i in range(len(node_group))),
        node_up=np.ones(len(node_group), dtype=bool),
        node_group=np.array(node_group, dtype=np.int64),
        group_names=group_names,
        layer_names=tuple(layers),
        layer_roles=tuple(st.role for st in layers.values()),
        layers=layers,
        agents=agents(agent_rows),
        n_shards=n_shards,
        totals=total or totals(),
        query=query,
    )


def write_trace(path: Path, arrivals: Sequence[float], input_tokens: int = 100) -> Path:
    """A CSV trace with one query per arrival time (seconds), 100 input and 10 output tokens."""
    rows = [f"{t},{input_tokens},10" for t in arrivals]
    path.write_text("\n".join(["t,input_tokens,output_tokens", *rows]) + "\n")
    return path


class NoLauncher:
    """Starts nothing: the agents exist only in the coordinator's tables."""

    def start(self, spec: object) -> None: ...
    def stop(self, worker_id: int) -> None: ...
    def alive(self, worker_id: int) -> bool:
        return True

    def close(self) -> None: ...

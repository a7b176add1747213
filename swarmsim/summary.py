"""The metrics summary of a finished (or paused) simulation run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .query import AgentState

if TYPE_CHECKING:
    from .simulation import Simulation


def summarize(sim: Simulation, wall_s: float) -> dict[str, Any]:
    """The ARCHITECTURE.md metrics summary plus utilisation, messages, failures and cost."""
    m, now = sim.metrics, sim.env.now
    fabric, failures = sim.fabric, sim.failures
    return {
        "scenario": sim.scenario.name,
        "seed": sim.seed,
        "sim_s": now,
        "queries": m.query_summary(),
        "latency_s": m.latency_summary(),
        "slo": m.slo_summary(sim.coordinator.overdue(since=m.warmup_s)),
        "recall_at_k": float(np.mean(m.recalls)) if m.recalls else None,
        "answer_quality": float(np.mean(m.qualities)) if m.qualities else None,
        "gpu_hours": sim.cluster.gpu_hours(now),
        "cost_usd": sim.cluster.cost_usd(now),
        "wall_s": wall_s,
        "throughput_qps": m.completed / now if now > 0 else 0.0,
        "outcomes": dict(sorted(m.reasons.items())),
        "utilisation": {
            name: _utilisation(layer, now) for name, layer in sim.cluster.layers.items()
        },
        "replicas": {name: _replicas(layer) for name, layer in sim.cluster.layers.items()},
        "messages": {
            "sent": fabric.sent,
            "delivered": fabric.delivered,
            "dropped": dict(sorted(fabric.dropped.items())),
        },
        "failures": {
            "nodes": failures.node_failures,
            "agents": failures.agent_failures,
            "partitions": failures.partitions,
            "retries": m.retries,
            "role_changes": m.role_changes,
            "unmet_scale_requests": sim.lifecycle.unmet,
        },
        "events": sim.event_count(),
    }


def _utilisation(layer, now: float) -> float | None:
    """Busy fraction of the layer's replica-time (agents ever in the layer and still there)."""
    busy = alive = 0.0
    for a in layer.agents:
        end = now if a.gone < 0 else a.gone
        busy += a.busy_s + (now - a.busy_since if a.batch else 0.0)
        alive += end - a.born
    return busy / alive if alive > 0 else None


def _replicas(layer) -> dict[str, int]:
    return {
        "running": layer.count(AgentState.RUNNING),
        "starting": layer.count(AgentState.STARTING, AgentState.SWITCHING),
        "draining": layer.count(AgentState.DRAINING),
        "dead": layer.count(AgentState.DEAD),
    }

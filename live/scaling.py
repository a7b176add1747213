"""Scaling a live layer: start workers through the launcher, or drain and stop them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from swarmsim.query import GONE, AgentState
from swarmsim.scenario import LayerConfig

from .protocol import CONTROL, Message
from .roster import Roster
from .state import Agent

ON_WAY = (AgentState.RUNNING, AgentState.STARTING, AgentState.SWITCHING)


def scale_layer(
    roster: Roster,
    layers: Mapping[str, LayerConfig],
    n_shards: int,
    layer: str,
    target: int,
    kv_blocks: Callable[[str, str], int],
) -> None:
    """Bring ``layer`` to ``target`` replicas (clamped to the layer's min/max); a new
    replica's prefix cache holds ``kv_blocks(layer, device)`` blocks."""
    cfg = layers.get(layer)
    if cfg is None:
        return
    target = max(cfg.min_replicas, min(int(target), cfg.max_replicas))
    members = roster.members(layer)
    live = [a for a in members if a.state in ON_WAY]
    if target > len(live):
        for _ in range(target - len(live)):
            _start(roster, cfg, layer, n_shards, members, kv_blocks)
    elif target < len(live):
        for agent in _drain_order(live, cfg.role)[: len(live) - target]:
            roster.leave(agent, AgentState.DRAINING)


def _start(
    roster: Roster,
    cfg: LayerConfig,
    layer: str,
    n_shards: int,
    members: list[Agent],
    kv_blocks: Callable[[str, str], int],
) -> None:
    template = next((roster.specs[a.id] for a in members if a.id in roster.specs), None)
    if template is None:
        template = next(iter(roster.specs.values()))
    shard = -1
    if cfg.role == "retriever":
        counts = [0] * n_shards
        for a in members:
            if a.state not in (*GONE, AgentState.DRAINING) and 0 <= a.shard < len(counts):
                counts[a.shard] += 1
        shard = counts.index(min(counts))
    spec = dataclasses.replace(
        template,
        id=max(roster.agents, default=-1) + 1,
        layer=layer,
        role=cfg.role,
        shard=shard,
        model=cfg.model or "",
        kv_blocks=kv_blocks(layer, template.device),
    )
    node = roster.agents[template.id].node if template.id in roster.agents else 0
    roster.launch(spec, node)


def _drain_order(live: list[Agent], role: str) -> list[Agent]:
    """Idle running agents first; a retriever never drains its shard's last replica."""
    running = (a for a in live if a.state == AgentState.RUNNING)
    order = sorted(running, key=lambda a: (len(a.jobs), -a.id))
    if role != "retriever":
        return order
    left: dict[int, int] = {}
    for a in live:
        left[a.shard] = left.get(a.shard, 0) + 1
    chosen = []
    for a in order:
        if left[a.shard] > 1:
            left[a.shard] -= 1
            chosen.append(a)
    return chosen


def retire_drained(roster: Roster, send: Callable[[Agent, Message], bool]) -> None:
    """Stop draining agents whose work is done."""
    for agent in roster.agents.values():
        if agent.state == AgentState.DRAINING and not agent.jobs:
            send(agent, Message(CONTROL, "STOP", "", "coordinator"))
            roster.stop(agent)

"""Scaling a live layer: start workers through the launcher, or drain and stop them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .protocol import CONTROL, Message
from .state import DRAINING, GONE, RUNNING, STARTING, STOPPED, SWITCHING, Agent

if TYPE_CHECKING:
    from .coordinator import Coordinator


def scale_layer(coord: Coordinator, layer: str, target: int) -> None:
    """Bring ``layer`` to ``target`` replicas (clamped to the layer's min/max)."""
    cfg = coord.scenario.layers.get(layer)
    if cfg is None:
        return
    target = max(cfg.min_replicas, min(int(target), cfg.max_replicas))
    members = [a for a in coord.agents.values() if a.layer == layer]
    live = [a for a in members if a.state in (RUNNING, STARTING, SWITCHING)]
    if target > len(live):
        for _ in range(target - len(live)):
            _start(coord, layer, members)
    elif target < len(live):
        for agent in _drain_order(live, cfg.role)[: len(live) - target]:
            agent.state = DRAINING


def _start(coord: Coordinator, layer: str, members: list[Agent]) -> None:
    cfg = coord.scenario.layers[layer]
    template = next((coord.specs[a.id] for a in members if a.id in coord.specs), None)
    if template is None:
        template = next(iter(coord.specs.values()))
    shard = -1
    if cfg.role == "retriever":
        counts = [0] * coord.files.n_shards
        for a in members:
            if a.state not in (*GONE, DRAINING) and 0 <= a.shard < len(counts):
                counts[a.shard] += 1
        shard = counts.index(min(counts))
    spec = dataclasses.replace(
        template,
        id=max(coord.agents, default=-1) + 1,
        layer=layer,
        role=cfg.role,
        shard=shard,
        model=cfg.model or "",
    )
    node = coord.agents[template.id].node if template.id in coord.agents else 0
    coord.launch(spec, node)


def _drain_order(live: list[Agent], role: str) -> list[Agent]:
    """Idle running agents first; a retriever never drains its shard's last replica."""
    order = sorted((a for a in live if a.state == RUNNING), key=lambda a: (len(a.jobs), -a.id))
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


def retire_drained(coord: Coordinator) -> None:
    """Stop draining agents whose work is done."""
    for agent in coord.agents.values():
        if agent.state == DRAINING and not agent.jobs:
            coord.send_worker(agent, Message(CONTROL, "STOP", "", "coordinator"))
            agent.state, agent.gone = STOPPED, coord.now()
            coord.launcher.stop(agent.id)

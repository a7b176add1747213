"""Re-placing workers whose process is gone (issue 19: "kill a worker actor: the swarm
notices and re-places it"), through whichever launcher the swarm runs on.

A worker whose process the launcher no longer sees is declared dead at once (reason
``exited``; its jobs are retried elsewhere, as after a heartbeat timeout) and a new worker is
launched in its place: the same layer, role, shard, model, device and node, a new id, starting
until it reports READY. A worker declared dead while its process lives (paused, hung, cut off)
is left to re-register by itself, as without re-placement. A worker that never reported
(it died while starting: a crash loop, whose cause is in its stderr) and one being drained
(scaled away) are not re-placed. Off by default: the simulator's ``kill`` is for good.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from swarmsim.query import GONE, AgentState

from .roster import Roster
from .state import Agent

EXITED = "exited"  # why a worker whose process is gone is declared dead before its heartbeats


def replace_gone(
    roster: Roster,
    declare_dead: Callable[[Agent, str], None],
    kv_blocks: Callable[[str, str], int],
    replaced: set[int],
) -> list[int]:
    """Declare dead and re-place each worker whose process is gone; the new workers' ids.
    ``replaced`` holds the ids already re-placed (each is re-placed once)."""
    started = []
    for agent in list(roster.agents.values()):
        if agent.id in replaced or not _gone(roster, agent):
            continue
        if agent.state not in GONE:
            declare_dead(agent, EXITED)
        replaced.add(agent.id)
        started.append(_relaunch(roster, agent, kv_blocks))
    return started


def _gone(roster: Roster, agent: Agent) -> bool:
    """A worker that had reported, is not stopped or draining, and whose process is gone."""
    if agent.pid == 0 or agent.state in (AgentState.STOPPED, AgentState.DRAINING):
        return False
    return agent.id in roster.specs and not roster.launcher.alive(agent.id)


def _relaunch(roster: Roster, agent: Agent, kv_blocks: Callable[[str, str], int]) -> int:
    spec = dataclasses.replace(
        roster.specs[agent.id],
        id=max(roster.agents) + 1,
        layer=agent.layer,
        role=agent.role,
        shard=agent.shard,
        model=agent.model,
        kv_blocks=kv_blocks(agent.layer, agent.device),
    )
    roster.launch(spec, agent.node)
    return spec.id

"""The coordinator's index of what each synthesizer replica's prefix (KV) cache holds.

Per replica, a ``swarmsim.kvcache.KVCache`` mirror of its emulated worker's own cache, of the
same capacity (``swarmsim.cluster.replica_capacity``, as the simulator sizes it), updated from
the worker's answers: for each answered synthesis, ``match`` then ``insert`` of the blocks the
coordinator sent with it. A worker serves one job at a time, matching at its start and
inserting at its end, so replaying them in answer order repeats its cache's operations in its
own order, and between answers the mirror holds exactly the blocks the worker holds. llm-d's
scheduler keeps the same kind of approximate per-replica index; it updates it from what it
routed, this one from answers, so a block counts once it is really cached, as in the
simulator's view. The mirror goes stale only when answers are lost (a worker that died, or
that reconnected keeping its cache): it is emptied at the worker's next READY.

The mirror serves routing (``overlap``) only; the hit counts the summary reports are the
workers' own, sent with every answer and heartbeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from swarmsim.cluster import replica_capacity
from swarmsim.kvcache import KVCache, pending_blocks
from swarmsim.profiles import Profiles
from swarmsim.scenario import Scenario
from swarmsim.summary import KVCacheSummary, kv_cache_summary

from .state import Agent, Query


class KVIndex:
    """Per synthesizer replica: its cache mirror and the (hits, lookups) it reported."""

    def __init__(self, scenario: Scenario, profiles: Profiles) -> None:
        self.scenario, self.profiles = scenario, profiles
        self.block_tokens = scenario.workload.block_tokens
        self.mirrors: dict[int, KVCache] = {}  # by agent id, while it serves a cached layer
        self.counts: dict[int, tuple[int, int]] = {}  # by agent id: its cache's (hits, lookups)

    def capacity(self, layer: str, device: str) -> int:
        """Blocks of one ``layer`` replica's prefix cache on ``device`` (0: no cache)."""
        cfg = self.scenario.layers.get(layer)
        if cfg is None:
            return 0
        device_profile = self.profiles.device(device)
        size = replica_capacity(cfg, device_profile, self.profiles, self.block_tokens)
        return size or 0

    def ready(self, agent: Agent) -> None:
        """``agent`` (re)joined its layer: an empty mirror of its fresh cache, or none."""
        size = self.capacity(agent.layer, agent.device)
        if size:
            self.mirrors[agent.id] = KVCache(size)
            self.counts[agent.id] = (0, 0)
        else:
            self.mirrors.pop(agent.id, None)

    def served(self, agent: int, blocks: Sequence[int]) -> None:
        """``agent`` answered a synthesis of ``blocks``: its cache matched, then took them."""
        mirror = self.mirrors.get(agent)
        if mirror is not None and blocks:
            mirror.match(blocks)
            mirror.insert(blocks)

    def reported(self, agent: int, p: dict[str, Any]) -> None:
        """Take the hit counts an answer or heartbeat of ``agent`` reports (network input:
        ignored unless two integers with 0 <= hits <= lookups)."""
        hits, lookups = p.get("kv_hits"), p.get("kv_lookups")
        if agent in self.mirrors and _is_int(hits) and _is_int(lookups) and 0 <= hits <= lookups:
            self.counts[agent] = (hits, lookups)

    def overlap(self, blocks: Sequence[int], agents: Sequence[Agent]) -> np.ndarray:
        """Per agent: the leading ``blocks`` its cache holds (peeked: nothing is touched)."""
        out = np.zeros(len(agents), dtype=np.int64)
        if blocks:
            for i, a in enumerate(agents):
                mirror = self.mirrors.get(a.id)
                out[i] = 0 if mirror is None else mirror.peek(blocks)
        return out

    def pending(self, query: Query, agents: Sequence[Agent], overlap: np.ndarray) -> np.ndarray:
        """Per agent: the leading blocks of ``query``'s prompt cached there or shared with
        another prompt sent there and not yet answered (its jobs in flight), as the simulator
        counts the prompts queued or in service on a replica."""
        held = (
            (j.query.blocks for j in a.jobs.values() if j.query is not query)
            if a.id in self.mirrors
            else ()
            for a in agents
        )
        return pending_blocks(query.blocks, overlap, held)

    def summary(self) -> KVCacheSummary | None:
        """The summary's ``kv_cache``: the workers' reported hit rates, as the simulator's."""
        return kv_cache_summary(self.counts)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)

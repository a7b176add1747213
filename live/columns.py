"""The agent table of the live ``ClusterView``, kept as numpy columns that follow the agents
as their messages arrive, so that a decision reads the table instead of rebuilding it.

An agent that changes (a message from it, a job sent or answered, a state change) is marked
dirty; a view writes only the dirty agents' columns, then copies the columns it shows (its
rows of the table), in id order, as the simulator's table is. ``table`` gives what a rebuild
from the agents would.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from swarmsim.profiles import load_profiles
from swarmsim.query import AgentState
from swarmsim.view import AgentTable

if TYPE_CHECKING:
    from .state import Agent

_DEAD, _STOPPED = int(AgentState.DEAD), int(AgentState.STOPPED)
_STARTING, _SWITCHING = int(AgentState.STARTING), int(AgentState.SWITCHING)
_RUNNING, _DRAINING = int(AgentState.RUNNING), int(AgentState.DRAINING)
# rows of the two blocks (a column per agent, so the rows a view selects copy in two takes);
# the last of each is written once, when the agent is added (its device does not change)
ID, NODE, LAYER, SHARD, STATE, QUEUE, IN_FLIGHT, ROLE, GPU = range(9)
LATENCY, BUSY, BORN, LAST_SEEN, KV, GONE, BUSY_MARK, PRICE = range(8)
_WRITTEN_INTS, _WRITTEN_FLOATS = 8, 7  # rows a flush rewrites


@functools.cache
def gpu_price(device: str) -> float | None:
    """USD per hour of a GPU device from the profiles; None for a device that is no GPU."""
    spec = load_profiles().device(device)
    return spec.price_per_hour if spec.kind == "gpu" else None


class AgentColumns:
    """One column per agent the roster knows, in id order; none is removed (a stopped
    agent's stays, shown by no view), as the roster keeps its agents."""

    def __init__(self, layer_names: Sequence[str], capacity: int = 64) -> None:
        self.layer_index = {name: i for i, name in enumerate(layer_names)}
        self.ints = np.zeros((9, capacity), dtype=np.int64)
        self.floats = np.zeros((8, capacity), dtype=np.float64)
        self.roles: dict[str, int] = {}  # role -> its code in the ROLE row
        self.agents: list[Agent] = []  # by column
        self.col: dict[int, int] = {}  # agent id -> column
        self.dirty: set[Agent] = set()
        self.sorted = True  # columns are in id order (agents are added in id order)
        self.layout = 0  # counts changes of which agents a view shows (roles, stopped)
        self.states = 0  # counts changes of any agent's state or node
        self._up: tuple[int, int, float, np.ndarray] | None = None  # node_up, while exact
        self._rows: dict[tuple[str, ...] | None, tuple[int, np.ndarray]] = {}

    def add(self, agent: Agent) -> None:
        """A new agent: its column, written at the next view."""
        n = len(self.agents)
        if n == self.ints.shape[1]:
            self.ints = np.concatenate([self.ints, np.zeros_like(self.ints)], axis=1)
            self.floats = np.concatenate([self.floats, np.zeros_like(self.floats)], axis=1)
        if self.agents and agent.id < self.agents[-1].id:
            self.sorted = False
        self.col[agent.id] = n
        self.agents.append(agent)
        agent.columns = self
        self.ints[STATE, n] = _STOPPED  # shown once written
        price = gpu_price(agent.device)
        self.ints[GPU, n], self.floats[PRICE, n] = price is not None, price or 0.0
        self.dirty.add(agent)

    def flush(self) -> None:
        """Write the columns of the agents that changed since the last view."""
        ints, floats, index, roles = self.ints, self.floats, self.layer_index, self.roles
        for a in self.dirty:
            c = self.col[a.id]
            role = roles.setdefault(a.role, len(roles))
            state = int(a.state)
            if role != ints[ROLE, c] or (state == _STOPPED) != (ints[STATE, c] == _STOPPED):
                self.layout += 1
            if state != ints[STATE, c] or a.node != ints[NODE, c]:
                self.states += 1
            ints[:_WRITTEN_INTS, c] = (a.id, a.node, index.get(a.layer, -1), a.shard, state,
                                       a.queue, len(a.jobs), role)  # fmt: skip
            floats[:_WRITTEN_FLOATS, c] = (a.latency_s, a.busy_s, a.born, a.last_seen, a.kv_util,
                                           a.gone, a.busy_mark)  # fmt: skip
        self.dirty.clear()
        if not self.sorted:
            self._sort()

    def _sort(self) -> None:
        n = len(self.agents)
        order = np.argsort(self.ints[ID, :n], kind="stable")
        self.ints[:, :n] = self.ints[:, order]
        self.floats[:, :n] = self.floats[:, order]
        self.agents = [self.agents[i] for i in order]
        self.col = {a.id: c for c, a in enumerate(self.agents)}
        self.sorted = True
        self.layout += 1
        self.states += 1

    def rows(self, roles: tuple[str, ...] | None) -> np.ndarray:
        """The agents (columns) a view of ``roles`` (None: all) shows: those not stopped."""
        cached = self._rows.get(roles)
        if cached is not None and cached[0] == self.layout:
            return cached[1]
        n = len(self.agents)
        keep = self.ints[STATE, :n] != _STOPPED
        if roles is not None:
            codes = [self.roles[r] for r in roles if r in self.roles]
            keep &= np.isin(self.ints[ROLE, :n], codes)
        rows = np.flatnonzero(keep)
        self._rows[roles] = (self.layout, rows)
        return rows

    def table(self, rows: np.ndarray, now: float, dead_after_s: float) -> AgentTable:
        """The agent table of ``rows`` at ``now`` (copies: a view is a snapshot)."""
        ints, floats = self.ints[:, rows], self.floats[:, rows]
        state = ints[STATE]
        return AgentTable(
            id=ints[ID],
            node=ints[NODE],
            layer=ints[LAYER],
            shard=ints[SHARD],
            state=state,
            healthy=(state != _DEAD) & (now - floats[LAST_SEEN] <= dead_after_s),
            queue=ints[QUEUE],
            in_flight=ints[IN_FLIGHT],
            latency_s=floats[LATENCY],
            utilisation=np.minimum(floats[BUSY] / np.maximum(now - floats[BORN], 1e-9), 1.0),
            kv_util=floats[KV],
            training=np.zeros(len(rows), dtype=bool),  # live runs no background training jobs
        )

    def node_up(self, n_nodes: int, now: float, dead_after_s: float) -> np.ndarray:
        """Per node: some agent placed on it is alive, or none was placed there yet (a node
        whose agents all stopped or died is known down only if one of them died). Kept
        until a state changes or the first live agent's silence passes ``dead_after_s`` (a
        message only postpones that), so it is the same as if computed now; read-only."""
        up = self._up
        if up is not None and up[0] == self.states and up[1] == n_nodes and now < up[2]:
            return up[3]
        n = len(self.agents)
        node, state = self.ints[NODE, :n], self.ints[STATE, :n]
        placed = (state != _STOPPED) & (node >= 0) & (node < n_nodes)
        last_seen = self.floats[LAST_SEEN, :n]
        heard = placed & (state != _DEAD) & (state != _STARTING) & (now - last_seen <= dead_after_s)
        alive = heard | (placed & (state == _STARTING))
        result = (np.bincount(node[placed], minlength=n_nodes)[:n_nodes] == 0) | (
            np.bincount(node[alive], minlength=n_nodes)[:n_nodes] > 0
        )
        result.setflags(write=False)
        until = float(last_seen[heard].min()) + dead_after_s if heard.any() else np.inf
        self._up = (self.states, n_nodes, until, result)
        return result

    def billing(self, now: float) -> tuple[float, float]:
        """(GPU-hours, USD) billed by agents on GPU devices from when each was born to when
        it died or stopped (or now): emulated billing, at the profiles' prices."""
        n = len(self.agents)
        gpu = self.ints[GPU, :n] == 1
        born, gone = self.floats[BORN, :n][gpu], self.floats[GONE, :n][gpu]
        hours = (np.where(gone < 0, now, gone) - born) / 3600
        return float(hours.sum()), float((hours * self.floats[PRICE, :n][gpu]).sum())

    def layer_sums(self, now: float, since: float) -> dict[str, np.ndarray]:
        """Per layer (by index): its agents running, loading (starting or switching) and
        draining, and over those not dead their queued jobs, jobs in flight, busy seconds
        since their mark, seconds alive since ``since`` and USD per hour of GPU."""
        n, n_layers = len(self.agents), len(self.layer_index)
        layer, state = self.ints[LAYER, :n], self.ints[STATE, :n]
        f = self.floats
        member = layer >= 0
        live = member & (state != _DEAD)

        def count(mask: np.ndarray) -> np.ndarray:
            return np.bincount(layer[member & mask], minlength=n_layers)

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(layer[live], weights=values[live], minlength=n_layers)

        return {
            "running": count(state == _RUNNING),
            "loading": count((state == _STARTING) | (state == _SWITCHING)),
            "draining": count(state == _DRAINING),
            "queue": total(self.ints[QUEUE, :n]),
            "in_flight": total(self.ints[IN_FLIGHT, :n]),
            "busy_s": total(f[BUSY, :n] - f[BUSY_MARK, :n]),
            "alive_s": total(now - np.maximum(f[BORN, :n], since)),
            "cost_rate": total(f[PRICE, :n]),
        }

"""RoleAssignment: which agent plays which role as the query mix shifts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from swarmsim.view import ClusterView, ControlPlane, Totals

from .task import Task, squash, unit_box

MAX_LAYERS = 8
MAX_GROUPS = 8  # node classes: the scenario's node groups
LAYER_FEATURES = 6
BACKLOG_SCALE = 16.0  # squash scales (see the observation table)
THROUGHPUT_SCALE = 10.0
P95_SCALE_S = 5.0
COUNT_SCALE = 4.0
RUNNING = 1  # index of "running" in swarmsim.view.AGENT_STATES
STOPPED = 5


@dataclass(frozen=True)
class RoleReward:
    """Weights of the role-assignment reward (see RoleAssignmentTask.reward)."""

    latency: float = 1.0  # per second of mean end-to-end latency over the interval
    slo: float = 5.0  # per unit of the interval's SLO-violation fraction
    switching: float = 0.1  # per agent kept loading (not serving), on average over the interval


class RoleAssignmentTask(Task):
    """One decision per control interval: move at most one agent per node class.

    ## Action Space
    ``MultiDiscrete([MAX_LAYERS + 1, MAX_LAYERS] * MAX_GROUPS)``: for node class ``g`` the
    pair ``(from, to)``; ``from = 0`` moves nothing, ``from = l + 1`` moves the running agent
    of layer ``l`` on a node of class ``g`` with the fewest jobs in flight into layer ``to``
    (it finishes its work, then loads the new model or shard). Moves naming absent classes
    or layers, ``from == to``, a class with no such agent, or a model that does not fit the
    agent's device are not executed and are counted invalid.

    ## Observation Space
    ``Box(0, 1, (MAX_LAYERS * LAYER_FEATURES + MAX_GROUPS * (2 + MAX_LAYERS),), float32)``.
    Layer ``l``'s block at ``l * LAYER_FEATURES``:

    | offset | meaning | range |
    | --- | --- | --- |
    | 0 | layer exists | {0, 1} |
    | 1 | backlog (queued + in flight) / (backlog + 16) | [0, 1) |
    | 2 | service rate: jobs answered per second / (rate + 10) | [0, 1) |
    | 3 | utilisation | [0, 1] |
    | 4 | p95 stage latency / (p95 + 5 s) | [0, 1) |
    | 5 | its replicas run on GPUs (agents move only between layers of one device kind) | {0, 1} |

    Then, for node class ``g``, the block at ``MAX_LAYERS * LAYER_FEATURES + g * 9``: offset 0
    the class exists {0, 1}; offset ``1 + l``: agents of layer ``l`` on the class's nodes,
    ``n / (n + 4)`` in [0, 1). Last, at ``MAX_LAYERS * LAYER_FEATURES + MAX_GROUPS * 9 + g``,
    the share of class ``g``'s live GPU-layer agents whose GPU a background training job
    holds (``AgentTable.training``; such a replica serves slower), in [0, 1].

    ## Rewards
    ``-latency * mean latency - slo * violation fraction - switching * Δ(load seconds) / dt``
    over the interval.

    ## Starting State
    The scenario's warm cluster at t=0 (its agents running, queues empty), seeded from
    ``reset(seed=...)``; the first observation is taken at the first decision point.

    ## Episode End
    Truncation at ``episode_s`` simulated seconds (default: the scenario's duration);
    termination when some pipeline stage has no agent left at all. ``info["summary"]``
    then holds the metrics summary.

    ## Arguments
    ``gymnasium.make("swarmsim/RoleAssignment-v0", scenario="escape-velocity", overrides=[...],
    episode_s=..., controllers={...}, reward=RoleReward(...))`` after ``import envs``
    (or with the id ``"envs:swarmsim/RoleAssignment-v0"``); see ``envs.sim_env.SwarmEnv``.

    ## Version History
    - v0: initial version.
    - v1: per node class, the share of its GPU agents sharing their GPU with training.
    """

    name = "role-assignment"
    env_id = "swarmsim/RoleAssignment-v0"
    version = 1
    decision = "control"
    roles = None
    layer_stats = True

    def __init__(self, reward: RoleReward | None = None) -> None:
        super().__init__()
        self.weights = reward or RoleReward()
        size = MAX_LAYERS * LAYER_FEATURES + MAX_GROUPS * (2 + MAX_LAYERS)
        self.observation_space = unit_box(size)
        self.action_space = spaces.MultiDiscrete([MAX_LAYERS + 1, MAX_LAYERS] * MAX_GROUPS)

    def encode(self, view: ClusterView) -> np.ndarray:
        layers = np.zeros((MAX_LAYERS, LAYER_FEATURES))
        for i, name in enumerate(view.layer_names[:MAX_LAYERS]):
            st = view.layers[name]
            layers[i] = np.array(
                [
                    1.0,
                    squash(st.queue + st.in_flight, BACKLOG_SCALE),
                    squash(st.throughput, THROUGHPUT_SCALE),
                    min(max(st.utilisation, 0.0), 1.0),
                    squash(st.p95_latency_s, P95_SCALE_S),
                    float(st.on_gpu),
                ]
            )
        groups = np.zeros((MAX_GROUPS, 1 + MAX_LAYERS))
        groups[: min(len(view.group_names), MAX_GROUPS), 0] = 1.0
        counts = self.counts(view)
        groups[:, 1:] = squash(counts, COUNT_SCALE)
        parts = [layers.reshape(-1), groups.reshape(-1), self.training_share(view)]
        return np.concatenate(parts).astype(np.float32)

    def counts(self, view: ClusterView) -> np.ndarray:
        """Live agents per (node class, layer), shape (MAX_GROUPS, MAX_LAYERS)."""
        a = view.agents
        group = view.node_group[a.node]
        live = (a.state != STOPPED) & (group < MAX_GROUPS) & (a.layer < MAX_LAYERS)
        counts = np.zeros((MAX_GROUPS, MAX_LAYERS))
        np.add.at(counts, (group[live], a.layer[live]), 1)
        return counts

    def training_share(self, view: ClusterView) -> np.ndarray:
        """Per node class, the share of its live GPU-layer agents on a GPU held by training,
        shape (MAX_GROUPS,); 0 for a class without GPU agents."""
        a = view.agents
        group = view.node_group[a.node]
        on_gpu = np.array([view.layers[n].on_gpu for n in view.layer_names], dtype=bool)
        live = (a.state != STOPPED) & (group < MAX_GROUPS) & on_gpu[a.layer]
        gpu_agents = np.bincount(group[live], minlength=MAX_GROUPS)[:MAX_GROUPS]
        shared = np.bincount(group[live & a.training], minlength=MAX_GROUPS)[:MAX_GROUPS]
        return np.divide(shared, gpu_agents, out=np.zeros(MAX_GROUPS), where=gpu_agents > 0)

    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        invalid = 0
        for g in range(MAX_GROUPS):
            src, dst = int(action[2 * g]) - 1, int(action[2 * g + 1])
            if src < 0:
                continue
            agent = self._mover(view, g, src, dst)
            if agent < 0:
                invalid += 1
                continue
            try:
                plane.assign(agent, view.layer_names[dst])
            except ValueError:
                invalid += 1
        return invalid

    def _mover(self, view: ClusterView, group: int, src: int, dst: int) -> int:
        """The agent id to move from layer ``src`` on class ``group`` into ``dst``, or -1."""
        n_layers = len(view.layer_names)
        if group >= len(view.group_names) or src >= n_layers or dst >= n_layers or src == dst:
            return -1
        a = view.agents
        ok = (view.node_group[a.node] == group) & (a.layer == src)
        ok &= (a.state == RUNNING) & a.healthy
        rows = np.flatnonzero(ok)
        if rows.size == 0:
            return -1
        return int(a.id[rows[np.argmin(a.in_flight[rows])]])

    def estimate(self, view: ClusterView, action: np.ndarray) -> dict[str, float]:
        """The agents the action would move to another layer."""
        moves = sum(
            self._mover(view, g, int(action[2 * g]) - 1, int(action[2 * g + 1])) >= 0
            for g in range(MAX_GROUPS)
            if int(action[2 * g]) >= 1
        )
        return {"moves": float(moves)}

    def heuristic(self, view: ClusterView) -> np.ndarray:
        """Move nothing (the simulator's default: fixed roles)."""
        return np.zeros(2 * MAX_GROUPS, dtype=np.int64)

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        done = after.completed - before.completed
        judged = done + (after.failed - before.failed) + (after.dropped - before.dropped)
        mean_latency = (after.latency_s - before.latency_s) / done if done else 0.0
        violations = (after.slo_violations - before.slo_violations) / judged if judged else 0.0
        loading = (after.load_s - before.load_s) / dt if dt > 0 else 0.0
        return -w.latency * mean_latency - w.slo * violations - w.switching * loading

"""ShardRouting: which shards a query searches, and which replica of each serves it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from swarmsim.view import ClusterView, ControlPlane, Totals

from .task import Task, unit_box

MAX_SHARDS = 16
MAX_REPLICAS = 8  # replicas of a shard addressable per decision (the lowest agent ids)
REPLICA_FEATURES = 5  # present, accepting, queue, in flight, recent latency
SHARD_FEATURES = 2 + MAX_REPLICAS * REPLICA_FEATURES  # present, relevance, replica slots
QUERY_FEATURES = 3  # large model, input tokens, output tokens
RUNNING = 1  # index of "running" in swarmsim.view.AGENT_STATES
QUEUE_SCALE = 4.0  # squash scales of the replica features (see the observation table)
IN_FLIGHT_SCALE = 4.0
LATENCY_SCALE_S = 0.05
_SHARDS = np.arange(MAX_SHARDS)


@dataclass(frozen=True)
class RoutingReward:
    """Weights of the routing reward (see ShardRoutingTask.reward)."""

    recall: float = 1.0  # per unit of recall@k of a joined retrieval
    latency: float = 10.0  # per second of retrieval-stage time (10 ms costs 0.1)
    slo: float = 1.0  # per query that violated the SLO (slow, failed or dropped)


class ShardRoutingTask(Task):
    """One decision per query reaching the retrieval layer.

    ## Action Space
    ``MultiDiscrete([MAX_REPLICAS + 1] * MAX_SHARDS)``: for shard ``s``, 0 skips it and
    ``r + 1`` searches it on replica slot ``r``. Replica slots of a shard are its retriever
    agents in ascending agent id, the first ``MAX_REPLICAS`` of them. Choices of absent
    shards, empty slots or replicas that cannot take work are masked by ``action_masks`` and,
    if chosen anyway, replaced by the shard's least-loaded accepting replica (or dropped when
    it has none); a plan that searches nothing searches the most relevant servable shard.

    ## Observation Space
    ``Box(0, 1, (MAX_SHARDS * SHARD_FEATURES + QUERY_FEATURES,), float32)``; for shard ``s``
    the block at ``s * SHARD_FEATURES`` holds:

    | offset | meaning | range |
    | --- | --- | --- |
    | 0 | shard exists in the scenario | {0, 1} |
    | 1 | relevance: (cosine of query and shard centroid + 1) / 2 | [0, 1] |
    | 2 + 5r + 0 | replica slot r exists | {0, 1} |
    | 2 + 5r + 1 | replica r accepts work (running and heartbeating) | {0, 1} |
    | 2 + 5r + 2 | queue / (queue + 4) | [0, 1) |
    | 2 + 5r + 3 | in flight / (in flight + 4) | [0, 1) |
    | 2 + 5r + 4 | recent stage latency / (latency + 50 ms) | [0, 1) |

    The last three features: the query is for the large model {0, 1}; input tokens / (input
    + 1024); output tokens / (output + 128). Absent shards and slots are all zeros.

    ## Rewards
    ``recall * Δ(recall@k of joined retrievals) - latency * Δ(retrieval-stage seconds)
    - slo * Δ(SLO violations)`` between consecutive decisions: credit arrives when the
    query's retrieval joins (milliseconds later), violations when queries finish.

    ## Starting State
    The scenario's warm cluster at t=0 (its agents running, queues empty), seeded from
    ``reset(seed=...)``; the first observation is taken at the first decision point.

    ## Episode End
    Truncation at ``episode_s`` simulated seconds (default: the scenario's duration);
    termination when some pipeline stage has no agent left at all. ``info["summary"]``
    then holds the metrics summary.

    ## Arguments
    ``gymnasium.make("swarmsim/ShardRouting-v0", scenario="escape-velocity", overrides=[...],
    episode_s=..., controllers={...}, reward=RoutingReward(...))`` after ``import envs``
    (or with the id ``"envs:swarmsim/ShardRouting-v0"``); see ``envs.sim_env.SwarmEnv``.

    ## Version History
    - v0: initial version.
    """

    name = "shard-routing"
    env_id = "swarmsim/ShardRouting-v0"
    version = 0
    decision = "route"
    roles = ("retriever",)
    layer_stats = False

    def __init__(self, reward: RoutingReward | None = None) -> None:
        super().__init__()
        self.weights = reward or RoutingReward()
        self.observation_space = unit_box(MAX_SHARDS * SHARD_FEATURES + QUERY_FEATURES)
        self.action_space = spaces.MultiDiscrete([MAX_REPLICAS + 1] * MAX_SHARDS)
        self._slots_view: ClusterView | None = None
        self._slots = np.full((MAX_SHARDS, MAX_REPLICAS), -1, dtype=np.int64)
        self._layout_key = b""  # the agents' shards when the slot layout below was computed
        self._layout: tuple[np.ndarray, np.ndarray, np.ndarray] = _slot_layout(self._slots)
        self._choices_view: ClusterView | None = None  # the view ``_choices`` was computed for
        self._choices = (self._slots >= 0, np.full(MAX_SHARDS, -1, dtype=np.int64))

    def slots(self, view: ClusterView) -> np.ndarray:
        """Rows of ``view.agents`` per (shard, slot); -1 where empty. Shape (MAX_SHARDS, R)."""
        if self._slots_view is view:
            return self._slots
        shard = view.agents.shard
        key = shard.tobytes()  # rows and shards rarely change between decisions: reuse
        if key == self._layout_key:
            self._slots_view = view
            return self._slots
        idx = np.flatnonzero((shard >= 0) & (shard < MAX_SHARDS))
        idx = idx[np.argsort(shard[idx], kind="stable")]  # by shard, then ascending agent row
        s = shard[idx]
        rank = np.arange(s.size) - np.searchsorted(s, s, side="left")
        keep = rank < MAX_REPLICAS
        rows = np.full((MAX_SHARDS, MAX_REPLICAS), -1, dtype=np.int64)
        rows[s[keep], rank[keep]] = idx[keep]
        self._slots_view, self._slots = view, rows
        self._layout_key, self._layout = key, _slot_layout(rows)
        return rows

    def encode(self, view: ClusterView) -> np.ndarray:
        a = view.agents
        self.slots(view)
        agent_rows, positions, present = self._layout
        q, f, lat = a.queue[agent_rows], a.in_flight[agent_rows], a.latency_s[agent_rows]
        obs = np.zeros(MAX_SHARDS * SHARD_FEATURES + QUERY_FEATURES, dtype=np.float32)
        obs[present] = 1.0
        obs[present + 1] = (a.state[agent_rows] == RUNNING) & a.healthy[agent_rows]
        obs[present + 2] = q / (q + QUEUE_SCALE)
        obs[present + 3] = f / (f + IN_FLIGHT_SCALE)
        obs[present + 4] = lat / (lat + LATENCY_SCALE_S)
        n = min(view.n_shards, MAX_SHARDS)
        obs[positions[:n]] = 1.0
        query = view.query
        if query is not None:
            if query.relevance.size:
                obs[positions[:n] + 1] = (np.clip(query.relevance[:n], -1, 1) + 1) / 2
            # plain floats: x / (x + scale), as ``squash``, without building arrays
            obs[-QUERY_FEATURES:] = (
                1.0 if query.model == "large" else 0.0,
                query.input_tokens / (query.input_tokens + 1024.0),
                query.output_tokens / (query.output_tokens + 128.0),
            )
        return obs

    def accepting(self, view: ClusterView) -> np.ndarray:
        """Boolean (MAX_SHARDS, MAX_REPLICAS): slot holds a replica that can take work."""
        return self._choices_for(view)[0]

    def _choices_for(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """``accepting`` and, per shard, its least-loaded accepting slot (-1 when none),
        computed once per view: ``apply`` and ``heuristic`` both read them."""
        if self._choices_view is view:
            return self._choices
        rows = self.slots(view)
        ok = (view.agents.state == RUNNING) & view.agents.healthy
        filled = rows >= 0
        safe = np.where(filled, rows, 0)
        accepting: np.ndarray = filled & ok[safe]
        self._choices = (accepting, _least_loaded(accepting, safe, view.agents.in_flight))
        self._choices_view = view
        return self._choices

    def action_masks(self, view: ClusterView) -> np.ndarray:
        mask = np.zeros((MAX_SHARDS, MAX_REPLICAS + 1), dtype=bool)
        mask[:, 0] = True
        mask[:, 1:] = self.accepting(view)
        return mask.reshape(-1)

    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        if view.query is None:
            raise RuntimeError("shard-routing: the view has no query to route")
        rows = self.slots(view)
        ok, fallback = self._choices_for(view)
        choice = action[:MAX_SHARDS]
        chosen = choice != 0
        slot = choice - 1
        in_range = (slot >= 0) & (slot < MAX_REPLICAS)
        valid = chosen & in_range & ok[_SHARDS, np.where(in_range, slot, 0)]
        slot = np.where(valid, slot, fallback)  # an invalid choice: the least-loaded replica
        shards = np.flatnonzero(chosen & (slot >= 0))
        invalid = int(np.count_nonzero(chosen & ~valid))
        agents = view.agents.id[rows[shards, slot[shards]]]
        plan = list(zip(shards.tolist(), agents.tolist(), strict=True))
        if not plan:
            invalid += 1
            plan = self._most_relevant(view, rows, fallback)
        plane.route(view.query.id, tuple(plan))
        return invalid

    def _most_relevant(
        self, view: ClusterView, rows: np.ndarray, fallback: np.ndarray
    ) -> list[tuple[int, int]]:
        rel = view.query.relevance if view.query is not None else np.zeros(view.n_shards)
        for s in np.argsort(-rel[:MAX_SHARDS], kind="stable"):
            if fallback[s] >= 0:
                return [(int(s), int(view.agents.id[rows[s, fallback[s]]]))]
        return []

    def estimate(self, view: ClusterView, action: np.ndarray) -> dict[str, float]:
        """Shards searched and the retrieval time the plan would take with the queues as
        measured: the slowest chosen replica's (jobs in flight + 1) x its recent latency."""
        rows, ok = self.slots(view), self.accepting(view)
        a = view.agents
        shards, slowest = 0, 0.0
        for s, choice in enumerate(np.asarray(action, dtype=np.int64).reshape(-1)[:MAX_SHARDS]):
            slot = int(choice) - 1
            if 0 <= slot < MAX_REPLICAS and ok[s, slot]:
                row = rows[s, slot]
                shards += 1
                slowest = max(slowest, (a.in_flight[row] + 1) * a.latency_s[row])
        return {"shards": float(shards), "retrieval_s": float(slowest)}

    def heuristic(self, view: ClusterView) -> np.ndarray:
        """Every shard, each on its accepting replica with the fewest jobs in flight."""
        action = np.zeros(MAX_SHARDS, dtype=np.int64)
        n = min(view.n_shards, MAX_SHARDS)
        action[:n] = self._choices_for(view)[1][:n] + 1
        return action

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        stage = after.stage_s.get("retriever", 0.0) - before.stage_s.get("retriever", 0.0)
        return (
            w.recall * (after.recall - before.recall)
            - w.latency * stage
            - w.slo * (after.slo_violations - before.slo_violations)
        )


def _slot_layout(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``encode``: the agent row of each filled slot, the flat offset of each shard's
    block, and the flat offset of each filled slot's first feature."""
    shard, slot = np.nonzero(rows >= 0)
    blocks = np.arange(MAX_SHARDS) * SHARD_FEATURES
    return rows[shard, slot], blocks, blocks[shard] + 2 + slot * REPLICA_FEATURES


def _least_loaded(ok: np.ndarray, rows: np.ndarray, load: np.ndarray) -> np.ndarray:
    """Per shard, the accepting slot with the fewest jobs in flight (lowest slot on ties),
    or -1 when it has none; ``ok`` and ``rows`` are (MAX_SHARDS, MAX_REPLICAS)."""
    cost = np.where(ok, load[rows], np.iinfo(np.int64).max)
    best: np.ndarray = cost.argmin(axis=1)
    best[~ok.any(axis=1)] = -1
    return best


def mask_from_obs(obs: np.ndarray) -> np.ndarray:
    """The flat action mask of ``action_masks`` recovered from an observation alone (the
    accepting flags are in it), for controllers that see nothing else."""
    shards = np.asarray(obs[: MAX_SHARDS * SHARD_FEATURES]).reshape(MAX_SHARDS, SHARD_FEATURES)
    replicas = shards[:, 2:].reshape(MAX_SHARDS, MAX_REPLICAS, REPLICA_FEATURES)
    mask = np.zeros((MAX_SHARDS, MAX_REPLICAS + 1), dtype=bool)
    mask[:, 0] = True
    mask[:, 1:] = replicas[:, :, 1] > 0.5
    return mask.reshape(-1)

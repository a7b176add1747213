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
        self._layout = _SlotLayout(self._slots)
        self._choices_view: ClusterView | None = None  # the view ``_choices`` was computed for
        self._choices = _Choices(self._layout, [], [[]] * MAX_SHARDS, [-1] * MAX_SHARDS)

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
        self._layout_key, self._layout = key, _SlotLayout(rows)
        return rows

    def encode(self, view: ClusterView) -> np.ndarray:
        a = view.agents
        choices = self._choices_for(view)
        layout = choices.layout
        queue, flight, lat = a.queue.tolist(), a.in_flight.tolist(), a.latency_s.tolist()
        up = choices.up
        features: list[float] = []
        for row in layout.agent_rows:  # Python floats: the IEEE arithmetic of float64 arrays
            q, f, t = queue[row], flight[row], lat[row]
            features += (1.0, up[row], q / (q + QUEUE_SCALE), f / (f + IN_FLIGHT_SCALE),
                         t / (t + LATENCY_SCALE_S))  # fmt: skip
        obs = np.zeros(MAX_SHARDS * SHARD_FEATURES + QUERY_FEATURES, dtype=np.float32)
        obs[layout.features] = features
        n = min(view.n_shards, MAX_SHARDS)
        positions = layout.blocks[:n]
        obs[positions] = 1.0
        query = view.query
        if query is not None:
            if query.relevance.size:
                # np.clip(x, -1, 1) is minimum(maximum(x, -1), 1); two bare ufuncs cost less
                obs[positions + 1] = (np.minimum(np.maximum(query.relevance[:n], -1), 1) + 1) / 2
            # plain floats: x / (x + scale), as ``squash``, without building arrays
            obs[-QUERY_FEATURES:] = (
                1.0 if query.model == "large" else 0.0,
                query.input_tokens / (query.input_tokens + 1024.0),
                query.output_tokens / (query.output_tokens + 128.0),
            )
        return obs

    def accepting(self, view: ClusterView) -> np.ndarray:
        """Boolean (MAX_SHARDS, MAX_REPLICAS): slot holds a replica that can take work."""
        choices = self._choices_for(view)
        ok = np.zeros((MAX_SHARDS, MAX_REPLICAS), dtype=bool)
        for s, shard_ok in enumerate(choices.ok):
            ok[s, : len(shard_ok)] = shard_ok
        return ok

    def _choices_for(self, view: ClusterView) -> _Choices:
        """Per view, once: which agents accept work, per shard which of its slots do, and
        its least-loaded accepting slot (-1 when none); encode, apply and heuristic read them."""
        if self._choices_view is view:
            return self._choices
        self.slots(view)
        a = view.agents
        up = ((a.state == RUNNING) & a.healthy).tolist()
        flight = a.in_flight.tolist()
        ok, best = [], []
        for shard_rows in self._layout.shard_rows:
            shard_ok = [up[row] for row in shard_rows]
            low, pick = 0, -1
            for slot, row in enumerate(shard_rows):  # the fewest in flight, lowest slot on ties
                if shard_ok[slot] and (pick < 0 or flight[row] < low):
                    low, pick = flight[row], slot
            ok.append(shard_ok)
            best.append(pick)
        self._choices = _Choices(self._layout, up, ok, best)
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
        choices = self._choices_for(view)
        shard_rows, ok, fallback = choices.layout.shard_rows, choices.ok, choices.best
        ids = view.agents.id.tolist()
        plan, invalid = [], 0
        for shard, choice in enumerate(action[:MAX_SHARDS].tolist()):
            if choice == 0:
                continue
            slot = choice - 1
            if not (0 <= slot < len(ok[shard]) and ok[shard][slot]):
                invalid += 1  # an invalid choice: the least-loaded replica, if any
                slot = fallback[shard]
            if slot >= 0:
                plan.append((shard, ids[shard_rows[shard][slot]]))
        if not plan:
            invalid += 1
            plan = self._most_relevant(view, choices)
        plane.route(view.query.id, tuple(plan))
        return invalid

    def _most_relevant(self, view: ClusterView, choices: _Choices) -> list[tuple[int, int]]:
        rel = view.query.relevance if view.query is not None else np.zeros(view.n_shards)
        for s in np.argsort(-rel[:MAX_SHARDS], kind="stable").tolist():
            slot = choices.best[s]
            if slot >= 0:
                return [(s, int(view.agents.id[choices.layout.shard_rows[s][slot]]))]
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
        action[:n] = np.array(self._choices_for(view).best[:n], dtype=np.int64) + 1
        return action

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        stage = after.stage_s.get("retriever", 0.0) - before.stage_s.get("retriever", 0.0)
        return (
            w.recall * (after.recall - before.recall)
            - w.latency * stage
            - w.slo * (after.slo_violations - before.slo_violations)
        )


class _SlotLayout:
    """Where each filled slot's agent row and observation features are, for a slot table
    ``rows`` (MAX_SHARDS, MAX_REPLICAS); recomputed only when the agents' shards change."""

    __slots__ = ("agent_rows", "blocks", "features", "shard_rows")

    def __init__(self, rows: np.ndarray) -> None:
        shard, slot = np.nonzero(rows >= 0)
        self.blocks = np.arange(MAX_SHARDS) * SHARD_FEATURES  # each shard's block offset
        self.agent_rows: list[int] = rows[shard, slot].tolist()  # filled slots, shard-major
        first = self.blocks[shard] + 2 + slot * REPLICA_FEATURES
        self.features = (first[:, None] + np.arange(REPLICA_FEATURES)).reshape(-1)
        self.shard_rows: list[list[int]] = [[r for r in row if r >= 0] for row in rows.tolist()]


class _Choices:
    """One view's accepting agents (by row), accepting slots per shard and each shard's
    least-loaded accepting slot (-1 when none), as Python lists for the per-decision loops."""

    __slots__ = ("best", "layout", "ok", "up")

    def __init__(
        self, layout: _SlotLayout, up: list[bool], ok: list[list[bool]], best: list[int]
    ) -> None:
        self.layout = layout
        self.up = up  # per agent row: running and heartbeating
        self.ok = ok  # per shard, per filled slot: its replica accepts work
        self.best = best  # per shard: the accepting slot with the fewest jobs in flight, or -1


def mask_from_obs(obs: np.ndarray) -> np.ndarray:
    """The flat action mask of ``action_masks`` recovered from an observation alone (the
    accepting flags are in it), for controllers that see nothing else."""
    shards = np.asarray(obs[: MAX_SHARDS * SHARD_FEATURES]).reshape(MAX_SHARDS, SHARD_FEATURES)
    replicas = shards[:, 2:].reshape(MAX_SHARDS, MAX_REPLICAS, REPLICA_FEATURES)
    mask = np.zeros((MAX_SHARDS, MAX_REPLICAS + 1), dtype=bool)
    mask[:, 0] = True
    mask[:, 1:] = replicas[:, :, 1] > 0.5
    return mask.reshape(-1)

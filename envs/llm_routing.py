"""LlmRouting: which replica of its synthesizer layer serves a query (prefix-cache aware)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from swarmsim.view import NO_AGENT, ClusterView, ControlPlane, Totals

from .task import Task, unit_box

MAX_REPLICAS = 16  # synthesizer replicas addressable per decision (the lowest agent ids)
# present, accepting, outstanding, overlap fraction, KV utilisation, uncached prompt tokens,
# recent stage latency, overlap fraction counting the prompts queued there
REPLICA_FEATURES = 8
QUERY_FEATURES = 2  # input tokens, output tokens
RUNNING = 1  # index of "running" in swarmsim.view.AGENT_STATES
OUTSTANDING_SCALE = 4.0  # squash scales (see the observation table)
INPUT_SCALE = 1024.0
OUTPUT_SCALE = 128.0
UNCACHED_SCALE = 2048.0
LATENCY_SCALE = 10.0


@dataclass(frozen=True)
class LlmRoutingReward:
    """Weights of the LLM-routing reward (see LlmRoutingTask.reward)."""

    # per second of synthesizer-stage time: prefix-cache.yaml's 10 s SLO then costs as much
    # as one violation
    latency: float = 0.1
    slo: float = 1.0  # per query that violated the SLO (slow, failed or dropped)


class LlmRoutingTask(Task):
    """One decision per query reaching its synthesizer stage: the replica that serves it.

    ## Action Space
    ``MultiDiscrete([MAX_REPLICAS])``: the replica slot that serves the query. Slots are the
    agents of the query's synthesizer layer in ascending agent id, the first ``MAX_REPLICAS``
    of them. An empty slot or a replica that cannot take work is masked by ``action_masks``
    and, if chosen anyway, replaced by the heuristic's slot (fewest outstanding jobs) and
    counted invalid; with no accepting replica at all the layer's dispatch rule places it.
    Not offered while an inference-strategy controller is attached (its hook comes first).

    ## Observation Space
    ``Box(0, 1, (MAX_REPLICAS * REPLICA_FEATURES + QUERY_FEATURES,), float32)``; for slot
    ``r`` the block at ``r * REPLICA_FEATURES`` holds:

    | offset | meaning | range |
    | --- | --- | --- |
    | 0 | replica slot r exists | {0, 1} |
    | 1 | replica r accepts work (running and heartbeating) | {0, 1} |
    | 2 | outstanding jobs / (outstanding + 4) | [0, 1) |
    | 3 | prefix overlap: leading prompt blocks cached on r / the prompt's blocks | [0, 1] |
    | 4 | KV utilisation: prefix-cache blocks held / capacity (0 without a cache) | [0, 1] |
    | 5 | tokens to prefill on r, u = input x (1 - pending overlap): u / (u + 2048) | [0, 1) |
    | 6 | r's recent stage latency (EWMA, s) l: l / (l + 10) | [0, 1) |
    | 7 | pending overlap: leading prompt blocks cached on r or held by a prompt queued or in
    service there (so cached when r serves this one) / the prompt's blocks | [0, 1] |

    The last two features: input tokens / (input + 1024); output tokens / (output + 128).
    Absent slots are all zeros; a prompt without prefix blocks has overlap 0 everywhere.

    ## Rewards
    ``- latency * Δ(synthesizer-stage seconds) - slo * Δ(SLO violations)`` between
    consecutive decisions: stage time is credited when a synthesis finishes, violations when
    queries finish (the same shape as ShardRouting's, without its recall term).

    ## Starting State
    The scenario's warm cluster at t=0 (its agents running, caches empty), seeded from
    ``reset(seed=...)``; the first observation is taken when the first query reaches a
    synthesizer.

    ## Episode End
    Truncation at ``episode_s`` simulated seconds (default: the scenario's duration);
    termination when some pipeline stage has no agent left at all. ``info["summary"]`` then
    holds the metrics summary (with ``kv_cache`` and ``ttft_s``).

    ## Arguments
    ``gymnasium.make("swarmsim/LlmRouting-v1", scenario="prefix-cache", overrides=[...],
    episode_s=..., controllers={...}, reward=LlmRoutingReward(...))`` after ``import envs``;
    see ``envs.sim_env.SwarmEnv``.

    ## Version History
    - v0: initial version.
    - v1: per replica the overlap counting the prompts queued there (a conversation's next
      turn finds its previous one still queued a third of the time on prefix-cache), the
      prompt tokens it would prefill (what a miss costs, which a fraction hides for long
      prompts) and its recent stage latency.
    """

    name = "llm-routing"
    env_id = "swarmsim/LlmRouting-v1"
    version = 1
    decision = "place"
    roles = ("synthesizer",)
    layer_stats = False

    def __init__(self, reward: LlmRoutingReward | None = None) -> None:
        super().__init__()
        self.weights = reward or LlmRoutingReward()
        self.observation_space = unit_box(MAX_REPLICAS * REPLICA_FEATURES + QUERY_FEATURES)
        self.action_space = spaces.MultiDiscrete([MAX_REPLICAS])
        self._slots_view: ClusterView | None = None  # the view ``_slots`` was computed for
        self._slots = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool))

    def slots(self, view: ClusterView) -> np.ndarray:
        """Rows of ``view.agents`` in the query's layer, by agent id, at most MAX_REPLICAS."""
        return self._slots_for(view)[0]

    def accepting(self, view: ClusterView, rows: np.ndarray) -> np.ndarray:
        """Per slot row: the replica is running and heartbeating."""
        if self._slots_view is view and rows is self._slots[0]:
            return self._slots[1]
        a = view.agents
        return np.asarray((a.state[rows] == RUNNING) & a.healthy[rows], dtype=bool)

    def _slots_for(self, view: ClusterView) -> tuple[np.ndarray, np.ndarray]:
        """The slot rows and their accepting flags, computed once per view (encode, apply and
        the heuristic all read them)."""
        if self._slots_view is not view:
            a = view.agents
            layer = view.query.layer if view.query is not None else -1
            rows = np.flatnonzero(a.layer == layer)
            rows = rows[np.argsort(a.id[rows], kind="stable")][:MAX_REPLICAS]
            ok = np.asarray((a.state[rows] == RUNNING) & a.healthy[rows], dtype=bool)
            self._slots_view, self._slots = view, (rows, ok)
        return self._slots

    def encode(self, view: ClusterView) -> np.ndarray:
        a, q = view.agents, view.query
        rows, ok = self._slots_for(view)
        obs = np.zeros(MAX_REPLICAS * REPLICA_FEATURES + QUERY_FEATURES, dtype=np.float32)
        k = rows.size
        # A few replicas: per-row Python floats (the same IEEE arithmetic as float64 arrays,
        # x / (x + s) as ``squash``) and one assignment beat a dozen tiny array operations.
        overlap = pending = [0.0] * k
        if q is not None and q.blocks and q.overlap.size:
            n = q.blocks
            overlap = [min(x / n, 1.0) for x in q.overlap[rows].tolist()]
            if q.pending.size:
                pending = [min(x / n, 1.0) for x in q.pending[rows].tolist()]
            else:
                pending = overlap
        tokens = None if q is None else q.input_tokens
        features: list[float] = []
        for f, up, util, lat, cached, held in zip(
            a.in_flight[rows].tolist(), ok.tolist(), a.kv_util[rows].tolist(),
            a.latency_s[rows].tolist(), overlap, pending, strict=True,
        ):  # fmt: skip
            u = 0.0 if tokens is None else tokens * (1.0 - held)
            features += (1.0, up, f / (f + OUTSTANDING_SCALE), cached, min(max(util, 0.0), 1.0),
                         0.0 if tokens is None else u / (u + UNCACHED_SCALE),
                         lat / (lat + LATENCY_SCALE), held)  # fmt: skip
        obs[: k * REPLICA_FEATURES] = features
        if q is not None:
            obs[-QUERY_FEATURES:] = (
                q.input_tokens / (q.input_tokens + INPUT_SCALE),
                q.output_tokens / (q.output_tokens + OUTPUT_SCALE),
            )
        return obs

    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        if view.query is None:
            return 0
        rows = self.slots(view)
        ok = self.accepting(view, rows)
        if not ok.any():
            plane.place(view.query.id, NO_AGENT)
            return 0
        slot = int(action[0])
        invalid = 0
        if not (0 <= slot < rows.size and ok[slot]):
            invalid = 1
            slot = int(self.heuristic(view)[0])
        plane.place(view.query.id, int(view.agents.id[rows[slot]]))
        return invalid

    def heuristic(self, view: ClusterView) -> np.ndarray:
        """The accepting slot with the fewest outstanding jobs (lowest slot on ties); slot 0
        when none accepts."""
        rows = self.slots(view)
        ok = np.flatnonzero(self.accepting(view, rows))
        if ok.size == 0:
            return np.zeros(1, dtype=np.int64)
        return np.array([ok[np.argmin(view.agents.in_flight[rows[ok]])]], dtype=np.int64)

    def action_masks(self, view: ClusterView) -> np.ndarray:
        """The accepting slots (slot 0 alone when none accepts: the layer's rule places it)."""
        rows = self.slots(view)
        mask = np.zeros(MAX_REPLICAS, dtype=bool)
        mask[: rows.size] = self.accepting(view, rows)
        if not mask.any():
            mask[0] = True
        return mask

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        stage = after.stage_s.get("synthesizer", 0.0) - before.stage_s.get("synthesizer", 0.0)
        return -w.latency * stage - w.slo * (after.slo_violations - before.slo_violations)


def mask_from_obs(obs: np.ndarray) -> np.ndarray:
    """The mask of ``action_masks`` recovered from an observation alone (the present and
    accepting flags are in it), for a masked policy that sees nothing else."""
    rep = np.asarray(obs[: MAX_REPLICAS * REPLICA_FEATURES]).reshape(MAX_REPLICAS, -1)
    mask = (rep[:, 0] > 0.5) & (rep[:, 1] > 0.5)
    if not mask.any():
        mask[0] = True
    return mask

"""Autoscaling: how many replicas each layer runs, under a latency SLO, at least cost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from swarmsim.view import ClusterView, ControlPlane, Totals

from .task import Task, squash, unit_box

MAX_LAYERS = 8
LAYER_FEATURES = 9
DOWN, HOLD, UP = 0, 1, 2
STEP_FRACTION = 0.1  # a scale step moves max(1, round(10% of live replicas))


@dataclass(frozen=True)
class ScalingReward:
    """Weights of the autoscaling reward (see AutoscalingTask.reward)."""

    cost: float = 1.0  # per USD billed
    slo: float = 0.1  # per query that violated the SLO (slow, failed or dropped)


class AutoscalingTask(Task):
    """One decision per control interval: scale each layer down, hold, or up.

    ## Action Space
    ``MultiDiscrete([3] * MAX_LAYERS)``: for layer ``l`` (in the scenario's order) 0 scales
    in, 1 holds, 2 scales out, by ``max(1, round(0.1 * (running + starting)))`` replicas,
    clamped to the layer's ``min_replicas``/``max_replicas``. A replica asked for now serves
    after its provisioning and load delay. Non-hold choices for absent layers are ignored
    and counted invalid.

    ## Observation Space
    ``Box(0, 1, (MAX_LAYERS * LAYER_FEATURES,), float32)``; layer ``l``'s block at
    ``l * LAYER_FEATURES``:

    | offset | meaning | range |
    | --- | --- | --- |
    | 0 | layer exists | {0, 1} |
    | 1 | arrival rate / (rate + 10 jobs/s), over the last interval | [0, 1) |
    | 2 | queue / (queue + 16) | [0, 1) |
    | 3 | utilisation (busy fraction of live replicas) | [0, 1] |
    | 4 | p95 stage latency over the interval / (p95 + 5 s) | [0, 1) |
    | 5 | running replicas / (running + 16) | [0, 1) |
    | 6 | starting replicas / (starting + 16) | [0, 1) |
    | 7 | cost rate / (rate + 20 USD/h) | [0, 1) |
    | 8 | throughput / (throughput + 10 jobs/s) | [0, 1) |

    ## Rewards
    ``-cost * Δ(USD billed) - slo * Δ(SLO violations)`` over the interval.

    ## Starting State
    The scenario's warm cluster at t=0 (its agents running, queues empty), seeded from
    ``reset(seed=...)``; the first observation is taken at the first decision point.

    ## Episode End
    Truncation at ``episode_s`` simulated seconds (default: the scenario's duration);
    termination when some pipeline stage has no agent left at all. ``info["summary"]``
    then holds the metrics summary.

    ## Arguments
    ``gymnasium.make("swarmsim/Autoscaling-v0", scenario="escape-velocity", overrides=[...],
    episode_s=..., controllers={...}, reward=ScalingReward(...))`` after ``import envs``
    (or with the id ``"envs:swarmsim/Autoscaling-v0"``); see ``envs.sim_env.SwarmEnv``.

    ## Version History
    - v0: initial version.
    """

    name = "autoscaling"
    env_id = "swarmsim/Autoscaling-v0"
    version = 0
    decision = "control"
    roles = ()
    layer_stats = True

    def __init__(self, reward: ScalingReward | None = None) -> None:
        super().__init__()
        self.weights = reward or ScalingReward()
        self.observation_space = unit_box(MAX_LAYERS * LAYER_FEATURES)
        self.action_space = spaces.MultiDiscrete([3] * MAX_LAYERS)

    def encode(self, view: ClusterView) -> np.ndarray:
        obs = np.zeros((MAX_LAYERS, LAYER_FEATURES))
        for i, name in enumerate(view.layer_names[:MAX_LAYERS]):
            st = view.layers[name]
            obs[i] = [
                1.0,
                squash(st.arrival_rate, 10.0),
                squash(st.queue, 16.0),
                min(max(st.utilisation, 0.0), 1.0),
                squash(st.p95_latency_s, 5.0),
                squash(st.running, 16.0),
                squash(st.starting, 16.0),
                squash(st.cost_rate, 20.0),
                squash(st.throughput, 10.0),
            ]
        return obs.reshape(-1).astype(np.float32)

    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        invalid = 0
        for i, choice in enumerate(action):
            if choice == HOLD:
                continue
            if i >= len(view.layer_names) or choice not in (DOWN, UP):
                invalid += 1
                continue
            name = view.layer_names[i]
            st = view.layers[name]
            live = st.running + st.starting
            step = max(1, round(STEP_FRACTION * live))
            plane.scale(name, live + step if choice == UP else max(live - step, 0))
        return invalid

    def heuristic(self, view: ClusterView) -> np.ndarray:
        """Hold every layer (the simulator's default: fixed replicas)."""
        return np.full(MAX_LAYERS, HOLD, dtype=np.int64)

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        return -w.cost * (after.cost_usd - before.cost_usd) - w.slo * (
            after.slo_violations - before.slo_violations
        )

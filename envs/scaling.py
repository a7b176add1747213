"""Autoscaling: how many replicas each layer runs, under a latency SLO, at least cost."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from swarmsim.view import ARRIVAL_HISTORY, ClusterView, ControlPlane, LayerStats, Totals

from .task import Task, unit_box, unsquash

MAX_LAYERS = 8
HISTORY = 10  # offset of the first earlier interval's arrival rate (see the class docstring)
TREND = HISTORY + ARRIVAL_HISTORY  # offset of the arrival-rate trend
LAYER_FEATURES = TREND + 1
TREND_SCALE = 2.0  # jobs/s per interval that the trend feature maps to 0.75 (or -2 to 0.25)
# Target replicas as a multiple of the live ones; log-spaced so that a policy reaches big
# and small layers alike. A ratio other than 1 moves at least one replica.
RATIOS = (0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)
HOLD = RATIOS.index(1.0)
# Squash scales of the observation features, by offset (see the class docstring).
SCALES = {1: 10.0, 2: 16.0, 3: 16.0, 5: 5.0, 6: 16.0, 7: 16.0, 8: 20.0, 9: 10.0}
SCALES.update(dict.fromkeys(range(HISTORY, TREND), 10.0))  # earlier arrival rates, as offset 1
COUNTS = [2, 3, 6, 7]  # offsets holding whole numbers (jobs, replicas)
_SQUASHED = np.array([o in SCALES for o in range(1, TREND)])  # offsets 1..TREND-1 squashed
_SCALE_ROW = np.array([SCALES.get(o, 1.0) for o in range(1, TREND)])  # 1.0: unused (clipped)


@dataclass(frozen=True)
class ScalingReward:
    """Weights of the autoscaling reward (see AutoscalingTask.reward)."""

    cost: float = 1.0  # per USD billed
    slo: float = 0.1  # per query that violated the SLO (slow, failed or dropped)


def scale_target(live: int, choice: int) -> int:
    """Replicas asked for when a layer with ``live`` replicas takes action ``choice``."""
    ratio = RATIOS[choice]
    target = round(live * ratio)
    if ratio > 1.0:
        return max(target, live + 1)
    if ratio < 1.0:
        return max(min(target, live - 1), 0)
    return live


def arrival_rates(st: LayerStats) -> np.ndarray:
    """The layer's arrival rate over the last ``ARRIVAL_HISTORY + 1`` intervals, oldest first,
    the last interval's at the end; intervals before the run began repeat its oldest known."""
    known = [*st.arrival_history[-ARRIVAL_HISTORY:], st.arrival_rate]
    return np.array([known[0]] * (ARRIVAL_HISTORY + 1 - len(known)) + known, dtype=np.float64)


def arrival_trend(st: LayerStats) -> float:
    """Least-squares slope of the arrival rate over the intervals known (jobs/s per interval;
    0 with a single one), so a policy sees a rise before the queue forms."""
    known = np.array([*st.arrival_history[-ARRIVAL_HISTORY:], st.arrival_rate])
    if len(known) < 2:
        return 0.0
    x = np.arange(len(known)) - (len(known) - 1) / 2
    return float(x @ known / (x @ x))


def signed_squash(x: float, scale: float) -> float:
    """Map a signed ``x`` into (0, 1): ``0.5 + 0.5 x / (|x| + scale)``; 0 maps to 0.5."""
    return 0.5 + 0.5 * x / (abs(x) + scale)


def signed_unsquash(y: np.ndarray, scale: float) -> np.ndarray:
    """Invert ``signed_squash``."""
    z = 2.0 * np.asarray(y, dtype=np.float64) - 1.0
    return scale * z / np.maximum(1.0 - np.abs(z), np.finfo(np.float32).eps)


def choice_for(live: int, desired: int) -> int:
    """The action whose target is nearest ``desired`` (on a log scale): how a heuristic that
    computes a replica count expresses it in this action space."""
    if desired == live:
        return HOLD
    targets = np.array([scale_target(live, c) for c in range(len(RATIOS))], dtype=float)
    gap = np.abs(np.log(np.maximum(targets, 0.5)) - math.log(max(desired, 0.5)))
    return int(np.argmin(gap))


class AutoscalingTask(Task):
    """One decision per control interval: a target replica count for every layer.

    ## Action Space
    ``MultiDiscrete([len(RATIOS)] * MAX_LAYERS)``: for layer ``l`` (in the scenario's order),
    choice ``c`` asks for ``round(live * RATIOS[c])`` replicas (``live`` = running + starting;
    at least one more or one fewer when the ratio is not 1), clamped by the simulator to the
    layer's ``min_replicas``/``max_replicas``. ``RATIOS = (0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25,
    1.5, 2)``; choice 4 holds. A replica asked for now serves after its provisioning and load
    delay. Non-hold choices for absent layers are ignored and counted invalid.

    ## Observation Space
    ``Box(0, 1, (MAX_LAYERS * LAYER_FEATURES,), float32)``; layer ``l``'s block at
    ``l * LAYER_FEATURES`` (``x / (x + s)`` maps a count or rate ``x`` to [0, 1)):

    | offset | meaning | range |
    | --- | --- | --- |
    | 0 | layer exists | {0, 1} |
    | 1 | arrival rate (jobs/s over the last interval), s = 10 | [0, 1) |
    | 2 | ongoing jobs (in flight + coordinator backlog), s = 16 | [0, 1) |
    | 3 | queued jobs (agents' queues + backlog), s = 16 | [0, 1) |
    | 4 | utilisation of live replicas over the last interval | [0, 1] |
    | 5 | p95 stage latency over the interval (s), s = 5 | [0, 1) |
    | 6 | running replicas, s = 16 | [0, 1) |
    | 7 | starting replicas (provisioning or loading), s = 16 | [0, 1) |
    | 8 | cost rate (USD/h), s = 20 | [0, 1) |
    | 9 | throughput (jobs/s answered over the interval), s = 10 | [0, 1) |
    | 10-13 | arrival rate 1, 2, 3, 4 intervals before the last (jobs/s), s = 10; before the
      run began, the oldest known | [0, 1) |
    | 14 | arrival-rate trend: least-squares slope over offsets 13..10 and 1 (jobs/s per
      interval), ``0.5 + 0.5 x / (abs(x) + 2)`` | (0, 1) |

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
    ``gymnasium.make("swarmsim/Autoscaling-v1", scenario="escape-velocity", overrides=[...],
    episode_s=..., controllers={...}, reward=ScalingReward(...))`` after ``import envs``
    (or with the id ``"envs:swarmsim/Autoscaling-v1"``); see ``envs.sim_env.SwarmEnv``.

    ## Version History
    - v0: initial version.
    - v1: per layer the arrival rates of the 4 intervals before the last and their trend
      (offsets 10-14), so a policy can act before a queue forms; 15 features per layer.
    """

    name = "autoscaling"
    env_id = "swarmsim/Autoscaling-v1"
    version = 1
    decision = "control"
    roles = ()
    layer_stats = True

    def __init__(self, reward: ScalingReward | None = None) -> None:
        super().__init__()
        self.weights = reward or ScalingReward()
        self.observation_space = unit_box(MAX_LAYERS * LAYER_FEATURES)
        self.action_space = spaces.MultiDiscrete([len(RATIOS)] * MAX_LAYERS)

    def encode(self, view: ClusterView) -> np.ndarray:
        obs = np.zeros((MAX_LAYERS, LAYER_FEATURES))
        names = view.layer_names[:MAX_LAYERS]
        raw = []
        for i, name in enumerate(names):
            st = view.layers[name]
            ongoing = st.in_flight + st.backlog
            earlier = arrival_rates(st)[-2::-1]  # 1, 2, 3, 4 intervals before the last
            raw.append((st.arrival_rate, ongoing, st.queue, st.utilisation, st.p95_latency_s,
                        st.running, st.starting, st.cost_rate, st.throughput,
                        *earlier))  # fmt: skip
            obs[i, TREND] = signed_squash(arrival_trend(st), TREND_SCALE)
        if raw:  # offsets 1..TREND-1 at once: x / (x + s), or clipped to [0, 1] without a scale
            values = np.array(raw, dtype=np.float64)
            obs[: len(names), 1:TREND] = np.where(
                _SQUASHED, values / (values + _SCALE_ROW), np.clip(values, 0.0, 1.0)
            )
            obs[: len(names), 0] = 1.0
        return obs.reshape(-1).astype(np.float32)

    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        invalid = 0
        for i, choice in enumerate(action):
            if choice == HOLD:
                continue
            if i >= len(view.layer_names) or not 0 <= choice < len(RATIOS):
                invalid += 1
                continue
            name = view.layer_names[i]
            st = view.layers[name]
            plane.scale(name, scale_target(st.running + st.starting, int(choice)))
        return invalid

    def estimate(self, view: ClusterView, action: np.ndarray) -> dict[str, float]:
        """The replicas the action asks for over all layers (before min/max clamping)."""
        total = 0
        for i, name in enumerate(view.layer_names[:MAX_LAYERS]):
            st, choice = view.layers[name], int(action[i])
            live = st.running + st.starting
            total += scale_target(live, choice) if 0 <= choice < len(RATIOS) else live
        return {"replicas": float(total)}

    def heuristic(self, view: ClusterView) -> np.ndarray:
        """Hold every layer (the simulator's default: fixed replicas)."""
        return np.full(MAX_LAYERS, HOLD, dtype=np.int64)

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        return -w.cost * (after.cost_usd - before.cost_usd) - w.slo * (
            after.slo_violations - before.slo_violations
        )


def decode(obs: np.ndarray) -> np.ndarray:
    """Raw per-layer values from an observation: shape (MAX_LAYERS, LAYER_FEATURES), the
    inverse of ``encode`` (counts and rates un-squashed)."""
    blocks = np.asarray(obs, dtype=np.float64).reshape(MAX_LAYERS, LAYER_FEATURES).copy()
    for offset, scale in SCALES.items():
        blocks[:, offset] = unsquash(blocks[:, offset], scale)
    blocks[:, TREND] = signed_unsquash(blocks[:, TREND], TREND_SCALE)
    blocks[:, COUNTS] = np.round(blocks[:, COUNTS])  # float32 rounding must not add a job
    return blocks

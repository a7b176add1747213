"""InferenceStrategy: how a synthesizer serves each query (weight precision, batch size)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from swarmsim.inference import InferenceStrategy
from swarmsim.view import ClusterView, ControlPlane, QueryOutcome, Totals

from .task import Task, squash, unit_box

MAX_CLASSES = 8  # query classes told apart; class indices >= 8 share the last slot
RUNNING = 1  # index of "running" in swarmsim.view.AGENT_STATES
# The arms, fixed so that an action keeps its meaning across scenarios. None keeps the layer's
# batch size. int4 is the precision the device profiles describe (llama.cpp Q4_0); fp16 is left
# out: Llama-2-13B in fp16 (24.4 GB of weights) fits none of the home lab's cards.
STRATEGIES = (
    InferenceStrategy(None, "int4"),
    InferenceStrategy(None, "int8"),
    InferenceStrategy(4, "int4"),
    InferenceStrategy(4, "int8"),
)
DEFAULT = 0  # the simulator's behaviour without a strategy controller
QUERY_FEATURES = MAX_CLASSES + 3  # class one-hot, large model, input and output tokens
LAYER_FEATURES = 3  # running replicas, jobs in flight and waiting per running replica


@dataclass(frozen=True)
class StrategyReward:
    """Weights of the inference-strategy reward (see InferenceStrategyTask.reward)."""

    quality: float = 1.0  # per unit of answer quality (precision factor x recall@k)
    latency: float = 0.01  # per second of end-to-end latency (3.2 s costs int8's quality gain)
    slo: float = 0.1  # per query that violated the SLO (slow, failed or dropped)


class InferenceStrategyTask(Task):
    """One decision per query reaching its synthesizer stage: which inference strategy serves it.

    ## Action Space
    ``MultiDiscrete([4])``: an index into ``STRATEGIES`` = (layer batch size, int4), (layer
    batch size, int8), (batch 4, int4), (batch 4, int8). Precision scales the synthesizer's
    prefill and decode speed and the answer's quality (``swarmsim/data/inference.yaml``); the
    batch size caps the batch the query opens or joins (jobs of one precision batch together).
    Index 0 is what the simulator does without this Task. An index out of range is replaced by
    0 and counted invalid.

    ## Observation Space
    ``Box(0, 1, (14,), float32)``:

    | index | meaning | range |
    | --- | --- | --- |
    | 0-7 | query class one-hot (classes past 7 share index 7) | {0, 1} |
    | 8 | the query is for the large model | {0, 1} |
    | 9 | input tokens / (input + 1024) | [0, 1) |
    | 10 | output tokens / (output + 128) | [0, 1) |
    | 11 | running replicas of the query's synthesizer layer / (replicas + 4) | [0, 1) |
    | 12 | jobs in flight per running replica of that layer / (that + 1) | [0, 1) |
    | 13 | jobs waiting in its replicas' queues per running replica / (that + 1) | [0, 1) |

    ## Rewards
    ``quality * Δ(answer quality of completed queries) - latency * Δ(their summed latency, s)
    - slo * Δ(SLO violations)`` between consecutive decisions. Per query (``outcome_reward``,
    what an online learner is told when the query ends): ``quality * q - latency * latency_s
    - slo * [violated]``, latency counted for completed queries as in the totals. Both count
    only the query's own outcome: the delay a slow strategy causes the queries queued behind
    it reaches the reward through theirs.

    ## Starting State
    The scenario's warm cluster at t=0, seeded from ``reset(seed=...)``; the first observation
    is taken when the first query reaches a synthesizer.

    ## Episode End
    Truncation at ``episode_s`` simulated seconds (default: the scenario's duration);
    termination when some pipeline stage has no agent left at all. ``info["summary"]`` then
    holds the metrics summary (with ``answer_quality``).

    ## Arguments
    ``gymnasium.make("swarmsim/InferenceStrategy-v0", scenario="homelab", overrides=[...],
    episode_s=..., controllers={...}, reward=StrategyReward(...))`` after ``import envs``.

    ## Version History
    - v0: initial version.
    """

    name = "inference-strategy"
    env_id = "swarmsim/InferenceStrategy-v0"
    version = 0
    decision = "configure"
    roles = ("synthesizer",)
    layer_stats = False

    def __init__(self, reward: StrategyReward | None = None) -> None:
        super().__init__()
        self.weights = reward or StrategyReward()
        self.observation_space = unit_box(QUERY_FEATURES + LAYER_FEATURES)
        self.action_space = spaces.MultiDiscrete([len(STRATEGIES)])

    def encode(self, view: ClusterView) -> np.ndarray:
        obs = np.zeros(QUERY_FEATURES + LAYER_FEATURES)
        q = view.query
        if q is None:
            return obs.astype(np.float32)
        obs[min(q.qclass, MAX_CLASSES - 1)] = 1.0
        obs[MAX_CLASSES] = 1.0 if q.model == "large" else 0.0
        obs[MAX_CLASSES + 1] = squash(q.input_tokens, 1024.0)
        obs[MAX_CLASSES + 2] = squash(q.output_tokens, 128.0)
        a = view.agents
        mine = a.layer == q.layer
        running = int(np.count_nonzero(mine & (a.state == RUNNING)))
        per = max(running, 1)
        obs[QUERY_FEATURES] = squash(running, 4.0)
        obs[QUERY_FEATURES + 1] = squash(a.in_flight[mine].sum() / per, 1.0)
        obs[QUERY_FEATURES + 2] = squash(a.queue[mine].sum() / per, 1.0)
        return obs.astype(np.float32)

    def apply(self, view: ClusterView, action: np.ndarray, plane: ControlPlane) -> int:
        if view.query is None:
            raise RuntimeError("inference-strategy: the view has no query to configure")
        choice = int(action[0])
        invalid = 0
        if not 0 <= choice < len(STRATEGIES):
            choice, invalid = DEFAULT, 1
        plane.configure(view.query.id, STRATEGIES[choice])
        return invalid

    def heuristic(self, view: ClusterView) -> np.ndarray:
        """The simulator's default: the layer's batch size at the profiles' precision (int4)."""
        return np.array([DEFAULT], dtype=np.int64)

    def reward(self, before: Totals, after: Totals, dt: float) -> float:
        w = self.weights
        return (
            w.quality * (after.quality - before.quality)
            - w.latency * (after.latency_s - before.latency_s)
            - w.slo * (after.slo_violations - before.slo_violations)
        )

    def outcome_reward(self, outcome: QueryOutcome) -> float:
        w = self.weights
        return (
            w.quality * outcome.quality
            - w.latency * (outcome.latency_s if outcome.outcome == "completed" else 0.0)
            - w.slo * float(outcome.slo_violated)
        )

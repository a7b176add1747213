"""Inference-strategy controllers: a fixed strategy, or a bandit per query class.

Every controller reads the ``InferenceStrategyTask`` observation and answers with an index into
``envs.strategy.STRATEGIES``. The bandits learn online: ``envs.attach`` calls their
``feedback(obs, action, reward)`` when a query they decided ends, with the Task's per-query
reward (``outcome_reward``); the context is the query class read back from the observation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.strategy import DEFAULT, MAX_CLASSES, STRATEGIES

from .bandit import Algo, ContextualBandit, NormalGamma

TASK = "inference-strategy"
LABELS = tuple(s.label for s in STRATEGIES)


def query_class(obs: np.ndarray) -> int:
    """The query class (its one-hot slot) of an inference-strategy observation."""
    return int(np.argmax(np.asarray(obs)[:MAX_CLASSES]))


class FixedStrategy:
    """Always the same strategy."""

    task = TASK

    def __init__(self, arm: int) -> None:
        if not 0 <= arm < len(STRATEGIES):
            raise ValueError(f"arm must be in [0, {len(STRATEGIES)}), got {arm}")
        self.arm = arm

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.array([self.arm], dtype=np.int64)

    def reset(self) -> None:
        """Stateless."""


def static() -> FixedStrategy:
    return FixedStrategy(DEFAULT)


def int8() -> FixedStrategy:
    return FixedStrategy(LABELS.index("int8"))


def fixed(arm: int = DEFAULT) -> FixedStrategy:
    return FixedStrategy(arm)


class ByClass:
    """A fixed strategy per query class: ``c0=1:c1=0`` plays arm 1 for class 0 and arm 0 for
    class 1; classes not named play the default."""

    task = TASK

    def __init__(self, **arms: int) -> None:
        self.arms = np.full(MAX_CLASSES, DEFAULT, dtype=np.int64)
        for key, arm in arms.items():
            c = int(key[1:]) if key[:1] == "c" and key[1:].isdigit() else -1
            if not 0 <= c < MAX_CLASSES or not 0 <= int(arm) < len(STRATEGIES):
                raise ValueError(f"expected c0..c{MAX_CLASSES - 1}=ARM, got {key}={arm}")
            self.arms[c] = int(arm)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.arms[[query_class(obs)]]

    def reset(self) -> None:
        """Stateless."""


class BanditStrategy:
    """One bandit per query class over ``STRATEGIES``, learning from per-query rewards."""

    task = TASK

    def __init__(self, algo: Algo, seed: int | None = 0, **params: Any) -> None:
        self.algo, self.seed, self.params = algo, seed, params
        self.reset()

    def reset(self) -> None:
        """Forget everything learned (a fresh bandit per class, re-seeded)."""
        self.bandit = ContextualBandit(
            range(MAX_CLASSES), STRATEGIES, self.algo, self.seed, **self.params
        )

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.array([self.bandit.select(query_class(obs))], dtype=np.int64)

    def feedback(self, obs: np.ndarray, action: np.ndarray, reward: float) -> None:
        """Credit ``reward`` to the arm ``action`` chose for the class in ``obs``."""
        arm = int(np.asarray(action).reshape(-1)[0])
        self.bandit.update(query_class(obs), arm, float(reward))

    def stats(self) -> dict[str, dict[str, float]]:
        """Share of pulls per strategy, over all classes and per class pulled at all."""
        counts = {c: b.counts for c, b in self.bandit.bandits.items() if b.counts.sum()}
        total = sum(counts.values(), np.zeros(len(STRATEGIES)))
        out = {"arm_share": _shares(total)}
        out |= {f"arm_share_class{c}": _shares(n) for c, n in counts.items()}
        return out


def _shares(counts: np.ndarray) -> dict[str, float]:
    n = max(float(np.sum(counts)), 1.0)
    return {label: float(k) / n for label, k in zip(LABELS, counts, strict=True)}


def ucb1(c: float = 0.1) -> BanditStrategy:
    """UCB1 with exploration ``c``: per-query rewards spread over ~0.1-0.3, not UCB1's [0, 1],
    so the textbook sqrt(2) would explore for most of an hour."""
    return BanditStrategy("ucb1", c=c)


def thompson(seed: int = 0, prior_mean: float = 0.9) -> BanditStrategy:
    """Normal-gamma Thompson sampling; the prior mean sits near a good answer's reward
    (quality ~0.97 minus a few seconds' latency) so the first draws are not all optimistic."""
    return BanditStrategy("thompson", seed, prior=NormalGamma(mean=prior_mean))

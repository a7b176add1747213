"""Bandits choosing an inference strategy (batch size, precision) per query class.

``UCB1`` and ``ThompsonSampling`` are generic multi-armed bandits over arm indices;
``ContextualBandit`` keeps one independent bandit per context (query class) over a set of
``InferenceStrategy`` arms. ``controllers.strategy`` wires them to the inference-strategy Task.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import numpy as np

from swarmsim.errors import UnknownNameError
from swarmsim.inference import PRECISIONS as PRECISIONS  # re-exported: one strategy type
from swarmsim.inference import InferenceStrategy

Seed = int | np.random.SeedSequence | None
Algo = Literal["ucb1", "thompson"]
ALGORITHMS: tuple[Algo, ...] = get_args(Algo)


DEFAULT_STRATEGIES = tuple(
    InferenceStrategy(b, p) for b in (1, 4, 8) for p in ("fp16", "int8", "int4")
)


class Bandit(Protocol):
    """A multi-armed bandit over arms ``0 .. n_arms - 1``."""

    n_arms: int
    counts: np.ndarray  # pulls per arm

    def select(self) -> int:
        """The arm to pull next."""

    def update(self, arm: int, reward: float) -> None:
        """Record the reward one pull of ``arm`` earned."""


class _ArmStats:
    """Per-arm pull counts, means and sums of squared deviations (Welford)."""

    def __init__(self, n_arms: int) -> None:
        if n_arms < 1:
            raise ValueError(f"n_arms must be >= 1, got {n_arms}")
        self.n_arms = n_arms
        self.counts = np.zeros(n_arms, dtype=np.int64)
        self.means = np.zeros(n_arms)
        self.m2 = np.zeros(n_arms)

    def update(self, arm: int, reward: float) -> None:
        """Fold one reward of ``arm`` into its running statistics."""
        if not 0 <= arm < self.n_arms:
            raise ValueError(f"arm must be in [0, {self.n_arms}), got {arm}")
        self.counts[arm] += 1
        delta = reward - self.means[arm]
        self.means[arm] += delta / self.counts[arm]
        self.m2[arm] += delta * (reward - self.means[arm])


class UCB1(_ArmStats):
    """UCB1 (Auer et al. 2002): each arm once, then the highest ``mean + c * sqrt(ln t / n)``.

    ``c = sqrt(2)`` is the original bound for rewards in [0, 1]; scale ``c`` with the
    reward range otherwise. Ties go to the lower arm.
    """

    def __init__(self, n_arms: int, c: float = math.sqrt(2.0)) -> None:
        super().__init__(n_arms)
        if c < 0:
            raise ValueError(f"c must be >= 0, got {c}")
        self.c = c

    def select(self) -> int:
        """An unpulled arm if any, else the arm with the highest upper confidence bound."""
        unpulled = np.flatnonzero(self.counts == 0)
        if unpulled.size:
            return int(unpulled[0])
        bonus = self.c * np.sqrt(math.log(self.counts.sum()) / self.counts)
        return int(np.argmax(self.means + bonus))


@dataclass(frozen=True)
class NormalGamma:
    """Normal-gamma prior on an arm's unknown mean and precision (1 / variance).

    ``mean`` is worth ``kappa`` pseudo-observations; the precision is Gamma(alpha, rate=beta),
    so ``beta / alpha`` is a prior guess at the reward variance.
    """

    mean: float = 0.0
    kappa: float = 1.0
    alpha: float = 1.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        if min(self.kappa, self.alpha, self.beta) <= 0:
            raise ValueError(f"kappa, alpha and beta must be > 0, got {self}")


class ThompsonSampling(_ArmStats):
    """Gaussian Thompson sampling with unknown mean and variance (normal-gamma conjugate).

    Each pull draws a mean from every arm's posterior and plays the largest draw. Learning
    the variance makes it indifferent to the reward's scale (latency, throughput, score).
    """

    def __init__(self, n_arms: int, prior: NormalGamma | None = None, seed: Seed = None) -> None:
        super().__init__(n_arms)
        self.prior = prior or NormalGamma()
        self.rng = np.random.default_rng(seed)

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per-arm posterior parameters ``(mean, kappa, alpha, beta)``."""
        p, n = self.prior, self.counts
        kappa = p.kappa + n
        mean = (p.kappa * p.mean + n * self.means) / kappa
        alpha = p.alpha + n / 2
        beta = p.beta + self.m2 / 2 + p.kappa * n * (self.means - p.mean) ** 2 / (2 * kappa)
        return mean, kappa, alpha, beta

    def select(self) -> int:
        """The arm whose posterior draw of the mean is largest."""
        mean, kappa, alpha, beta = self.posterior()
        precision = self.rng.gamma(alpha, 1.0 / beta)
        return int(np.argmax(self.rng.normal(mean, 1.0 / np.sqrt(kappa * precision))))


class ContextualBandit:
    """One independent bandit per context (query class), each over the same strategies.

    ``params`` go to every bandit (``c`` for UCB1, ``prior`` for Thompson sampling); each
    Thompson bandit draws from its own stream spawned from ``seed``.
    """

    def __init__(
        self,
        contexts: Sequence[Hashable],
        arms: Sequence[InferenceStrategy] = DEFAULT_STRATEGIES,
        algo: Algo = "ucb1",
        seed: int | None = None,
        **params: Any,
    ) -> None:
        if algo not in ALGORITHMS:
            raise UnknownNameError("bandit algorithm", algo, ALGORITHMS)
        if not contexts or not arms:
            raise ValueError(f"need contexts and arms, got {len(contexts)} and {len(arms)}")
        if len(set(contexts)) != len(contexts):
            raise ValueError(f"contexts must be distinct, got {list(contexts)}")
        self.arms = tuple(arms)
        seeds = np.random.SeedSequence(seed).spawn(len(contexts))
        self.bandits: dict[Hashable, Bandit] = {
            c: _bandit(algo, len(self.arms), s, params)
            for c, s in zip(contexts, seeds, strict=True)
        }

    def select(self, context: Hashable) -> int:
        """The index into ``arms`` of the strategy to use for ``context``."""
        return self._bandit(context).select()

    def update(self, context: Hashable, arm: int, reward: float) -> None:
        """Record the reward the strategy ``arm`` earned on a query of ``context``."""
        self._bandit(context).update(arm, reward)

    def strategy(self, context: Hashable) -> InferenceStrategy:
        """The strategy to use for ``context`` (``arms[select(context)]``)."""
        return self.arms[self.select(context)]

    def _bandit(self, context: Hashable) -> Bandit:
        """The bandit of ``context``; unknown contexts suggest the nearest."""
        if context not in self.bandits:
            raise UnknownNameError("context", str(context), map(str, self.bandits))
        return self.bandits[context]


def _bandit(
    algo: Algo, n_arms: int, seed: np.random.SeedSequence, params: dict[str, Any]
) -> Bandit:
    """A new bandit of algorithm ``algo`` (a key of ``ALGORITHMS``)."""
    if algo == "ucb1":
        return UCB1(n_arms, **params)
    return ThompsonSampling(n_arms, seed=seed, **params)

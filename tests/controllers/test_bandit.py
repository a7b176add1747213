"""Bandits on a synthetic Gaussian bandit, and one independent bandit per query class."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.bandit import (
    DEFAULT_STRATEGIES,
    UCB1,
    ContextualBandit,
    InferenceStrategy,
    NormalGamma,
    ThompsonSampling,
)
from swarmsim.errors import UnknownNameError

MEANS = np.array([0.2, 0.5, 0.8])  # arm 2 is best
SD = 0.3


def play(bandit, pulls: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Arms pulled and per-pull (expected) regret on the Gaussian bandit ``MEANS``."""
    rng = np.random.default_rng(seed)
    arms = np.empty(pulls, dtype=np.int64)
    for t in range(pulls):
        arms[t] = bandit.select()
        bandit.update(int(arms[t]), rng.normal(MEANS[arms[t]], SD))
    return arms, MEANS.max() - MEANS[arms]


@pytest.mark.parametrize(
    "make", [lambda: UCB1(3), lambda: ThompsonSampling(3, seed=1)], ids=["ucb1", "thompson"]
)
def test_pulls_the_best_arm_most_with_sublinear_regret(make):
    arms, regret = play(make())
    counts = np.bincount(arms, minlength=3)
    assert counts.argmax() == 2 and counts[2] > 0.8 * arms.size
    assert regret[1000:].sum() < regret[:1000].sum()


def test_ucb1_tries_every_arm_once_first():
    bandit = UCB1(4)
    first = []
    for _ in range(4):
        first.append(bandit.select())
        bandit.update(first[-1], 1.0)
    assert first == [0, 1, 2, 3]


def test_thompson_posterior_follows_the_normal_gamma_update():
    bandit = ThompsonSampling(1, prior=NormalGamma(mean=0.0, kappa=1.0, alpha=1.0, beta=1.0))
    for r in (1.0, 3.0):
        bandit.update(0, r)
    mean, kappa, alpha, beta = (x[0] for x in bandit.posterior())
    # n=2, mean 2, sum of squares 2: kappa 3, mean 4/3, alpha 2, beta 1 + 1 + 2*4/6
    assert (mean, kappa, alpha, beta) == pytest.approx((4 / 3, 3.0, 2.0, 1 + 1 + 8 / 6))


def test_thompson_is_deterministic_given_the_seed():
    runs = [play(ThompsonSampling(3, seed=s), pulls=200)[0] for s in (5, 5, 6)]
    assert (runs[0] == runs[1]).all() and not (runs[0] == runs[2]).all()


@pytest.mark.parametrize("algo", ["ucb1", "thompson"])
def test_each_query_class_learns_its_own_best_strategy(algo):
    bandit = ContextualBandit(["short", "long"], algo=algo, seed=0)
    best = {"short": 0, "long": len(DEFAULT_STRATEGIES) - 1}
    rng = np.random.default_rng(0)
    picks = {c: [] for c in best}
    for t in range(1200):
        c = ("short", "long")[t % 2]
        arm = bandit.select(c)
        picks[c].append(arm)
        bandit.update(c, arm, rng.normal(1.0 if arm == best[c] else 0.0, 0.1))
    for c, arm in best.items():
        assert np.bincount(picks[c][-200:]).argmax() == arm
    assert bandit.strategy("long") == InferenceStrategy(8, "int4")


def test_updates_to_one_class_leave_the_others_choices_unchanged():
    quiet = ContextualBandit([0, 1], algo="thompson", seed=3)
    busy = ContextualBandit([0, 1], algo="thompson", seed=3)
    for arm in range(9):
        busy.update(0, arm, float(arm))
        busy.select(0)
    for arm in (2, 5, 5):
        quiet.update(1, arm, 1.0)
        busy.update(1, arm, 1.0)
    assert [quiet.select(1) for _ in range(30)] == [busy.select(1) for _ in range(30)]


def test_default_arms_and_argument_checks():
    assert len(DEFAULT_STRATEGIES) == 9 and len(set(DEFAULT_STRATEGIES)) == 9
    assert {s.batch_size for s in DEFAULT_STRATEGIES} == {1, 4, 8}
    with pytest.raises(ValueError, match="batch_size"):
        InferenceStrategy(0, "fp16")
    with pytest.raises(ValueError, match="precision"):
        InferenceStrategy(4, "fp12")
    with pytest.raises(UnknownNameError, match="ucb1"):
        ContextualBandit([0], algo="ucb")
    with pytest.raises(UnknownNameError, match="context"):
        ContextualBandit(["short"]).select("shrot")
    with pytest.raises(ValueError, match="arm must be"):
        UCB1(3).update(3, 1.0)

"""Closed forms the simulator is validated against (M/M/1, M/M/c with Erlang C, tandem)."""

from __future__ import annotations

import math


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with offered load ``a = λ/μ``."""
    if not 0 <= a < c:
        raise ValueError(f"offered load must be in [0, c={c}), got {a}")
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def mmc_sojourn(lam: float, mu: float, c: int) -> float:
    """Mean time in an M/M/c system: Erlang C wait plus one service."""
    return erlang_c(c, lam / mu) / (c * mu - lam) + 1 / mu


def mm1_sojourn(lam: float, mu: float) -> float:
    """Mean time in an M/M/1 system."""
    if not 0 <= lam < mu:
        raise ValueError(f"M/M/1 needs 0 <= lambda < mu, got lambda={lam}, mu={mu}")
    return 1 / (mu - lam)


def mm1_sojourn_quantile(lam: float, mu: float, q: float) -> float:
    """Quantile ``q`` of the M/M/1 (FIFO) sojourn time, exponential with rate μ - λ."""
    return -math.log(1 - q) / (mu - lam)


def tandem_sojourn(lam: float, mus: list[float]) -> float:
    """Mean time through M/M/1 stations in series (Burke: each sees Poisson arrivals)."""
    return sum(mm1_sojourn(lam, mu) for mu in mus)

"""The hop-and-handling overhead of a recording's stages, fitted as quantile tables by load.

A stage's overhead is what its jobs spent between the first being sent and the last answer
that was neither queueing nor service: ``(last end - first sent) - longest service``, over the
stages whose jobs all found their agents idle (a job sent while its agent still served the
one before waited in its queue, which the simulator models itself). Taken per stage, a
retrieval fan-out keeps what its jobs share live: the coordinator sends them one after
another and their overheads are correlated (about 0.7 at 100 q/s on two cores), so the
simulator gives a fan-out's jobs one draw. The overhead grows with the number of queries in
the swarm (CPU contention: the p50 doubles from one query in flight to three), so the
table has one row per load, fitted on the stages sent at that load. A stage's dispatch is the
coordinator's handling before it: from the stage being ready (the previous stage's last
answer, or the query's arrival) to its first send; a routing controller's decision (about
1 ms live, against 0.1 ms without one) is part of it.
"""

from __future__ import annotations

import numpy as np

# probabilities of the table: every 5% to 90%, then denser to the sample's maximum
OVERHEAD_LEVELS = (*(i / 20 for i in range(18)), 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98,
                   0.985, 0.99, 0.995, 0.998, 0.999, 1.0)  # fmt: skip
MIN_ROW = 100  # stages a row is fitted on at least; loads with fewer share a row


def queries_in_flight(arrivals: np.ndarray, ends: np.ndarray, at: np.ndarray) -> np.ndarray:
    """How many queries had arrived and not yet ended at each time of ``at`` (as the
    simulator counts its active queries)."""
    return np.searchsorted(np.sort(arrivals), at, "right") - np.searchsorted(np.sort(ends), at)


def stage_overheads(
    stage: np.ndarray, sent: np.ndarray, service: np.ndarray, hop: np.ndarray,
    waited: np.ndarray, load: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(overhead s, load at the first send) of each stage whose jobs all found their agent
    idle; ``stage`` numbers each job's (query, stage), ``hop`` is its ``(end - sent) - service``."""
    keys, group = np.unique(stage, return_inverse=True)
    first = np.full(len(keys), np.inf)
    np.minimum.at(first, group, sent)
    last, longest, any_wait = (np.full(len(keys), -np.inf) for _ in range(3))
    np.maximum.at(last, group, sent + hop + service)
    np.maximum.at(longest, group, service)
    np.maximum.at(any_wait, group, waited)
    at_first = np.zeros(len(keys), dtype=np.int64)
    at_first[group[sent == first[group]]] = load[sent == first[group]]
    idle = any_wait == 0
    if not idle.any():  # every stage queued somewhere: the queueing is in the overhead
        idle[:] = True
    return np.maximum(last - first - longest, 0.0)[idle], at_first[idle]


def stage_gaps(
    stage: np.ndarray, sent: np.ndarray, ready: np.ndarray, load: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(coordinator handling s, load when ready) of each stage: from its being ready (the
    previous stage's last answer, or the arrival) to its first job being sent."""
    keys, first_job = np.unique(stage, return_index=True)
    _, group = np.unique(stage, return_inverse=True)
    first = np.full(len(keys), np.inf)
    np.minimum.at(first, group, sent)
    return np.maximum(first - ready[first_job], 0.0), load[first_job]


def fit_overhead(overhead: np.ndarray, load: np.ndarray) -> tuple[tuple[float, ...], ...]:
    """One row of quantiles at ``OVERHEAD_LEVELS`` per load from 1: consecutive loads are
    pooled until ``MIN_ROW`` stages were sent at them, each row fitted on its load's pool; the
    last row (that load and heavier) takes every load left."""
    load = np.maximum(load, 1)
    loads, counts = np.unique(load, return_counts=True)
    pools, n = [[]], 0  # loads pooled per row, the last pool still open
    for k, c in zip(loads, counts, strict=True):
        pools[-1].append(k)
        n += c
        if n >= MIN_ROW:
            pools.append([])
            n = 0
    if len(pools) > 1 and n < MIN_ROW:  # too few (or none) left: they join the last full pool
        left = pools.pop()
        pools[-1] += left
    rows = []
    for pool in pools:
        q = tuple(float(x) for x in np.quantile(overhead[np.isin(load, pool)], OVERHEAD_LEVELS))
        rows += [q] * (max(pool) - len(rows) if pool is not pools[-1] else 1)
    return tuple(rows)

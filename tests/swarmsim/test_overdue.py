"""The incremental overdue count agrees with the scan it replaces in views."""

from __future__ import annotations

import numpy as np

from swarmsim.query import Outcome, Query
from swarmsim.summary import OverdueCounter, count_overdue


def test_counter_matches_the_scan_as_queries_arrive_and_end() -> None:
    """Random arrivals (1/s) and ends, SLO 5 s; after every event the counter equals
    ``count_overdue`` over the queries in flight, and some queries are overdue at times."""
    rng = np.random.default_rng(4)
    counter, active = OverdueCounter(5.0), {}
    now, seen = 0.0, set()
    for qid in range(2000):
        now += float(rng.exponential(1.0))
        query = Query(qid, now, 0, "small", 10, 10, 0)
        active[qid] = query
        counter.accepted(query, now)
        for old in [q for q in active.values() if rng.random() < 0.1]:
            old.outcome = Outcome.COMPLETED
            del active[old.id]
            counter.ended(old)
        expected = count_overdue(active, now, 5.0, since=0.0)
        assert counter.at(now) == expected
        seen.add(expected)
    assert max(seen) >= 5

"""Run metrics: counters, the per-query timeline and the metrics summary.

The summary's schema is shared with the live runtime (ARCHITECTURE.md): ``queries.*``,
``latency_s.*``, ``slo.violation_rate``, ``recall_at_k``, ``gpu_hours``, ``wall_s`` and more.
Conservation holds at the end of every run:
``submitted = completed + failed + dropped + in_flight``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .query import Outcome, Query

if TYPE_CHECKING:
    from .summary import LatencySummary, QueryCounts, SloSummary, Summary


class Metrics:
    """Counters and samples collected while a simulation runs."""

    def __init__(self, warmup_s: float, slo_s: float) -> None:
        self.warmup_s = warmup_s
        self.slo_s = slo_s
        self.submitted = 0
        self.completed = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self.reasons: dict[str, int] = {}
        self.latencies: list[float] = []  # completed queries that arrived after warm-up
        self.ttfts: list[float] = []  # their times to first token (those with a synthesis)
        self.late_failures = 0  # failed or dropped after warm-up: count as SLO violations
        self.recalls: list[float] = []
        self.qualities: list[float] = []  # answer quality of completed post-warm-up queries
        self.slo_violations = 0  # over the whole run, for rewards (see view.Totals)
        self.latency_sum = 0.0
        self.recall_sum = 0.0
        self.quality_sum = 0.0  # answer quality of all completed queries, for rewards
        self.retrievals = 0
        self.load_s = 0.0
        self.role_changes = 0
        self.timeline: list[dict[str, Any]] | None = None
        self.ok_ends: list[float] | None = None  # ends of completions within the SLO, if asked

    def record_end(self, query: Query, latency: float, quality: float | None) -> None:
        """Account a query's one final outcome (``quality`` None where it is not known)."""
        if query.outcome is not Outcome.COMPLETED:
            self.count_end(query.outcome, query.reason, query.arrival)
            return
        self.completed += 1
        if self.ok_ends is not None and latency <= self.slo_s:
            self.ok_ends.append(query.end)
        self.latency_sum += latency
        self.slo_violations += latency > self.slo_s
        if quality is not None:
            self.quality_sum += quality
        if query.arrival >= self.warmup_s:
            self.latencies.append(latency)
            if query.first_token >= 0:
                self.ttfts.append(query.first_token - query.arrival)
            if quality is not None:
                self.qualities.append(quality)
            if query.recall is not None:
                self.recalls.append(query.recall)

    def count_end(self, outcome: str, reason: str, arrival: float) -> None:
        """Account a query that failed or was dropped, by ``reason``."""
        if outcome == Outcome.FAILED:
            self.failed += 1
        else:
            self.dropped += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        self.slo_violations += 1
        if arrival >= self.warmup_s:
            self.late_failures += 1

    @property
    def in_flight(self) -> int:
        return self.submitted - self.completed - self.failed - self.dropped

    def latency_summary(self) -> LatencySummary:
        if not self.latencies:
            return {"mean": None, "p50": None, "p95": None, "p99": None}
        lat = np.asarray(self.latencies)
        p50, p95, p99 = np.percentile(lat, [50, 95, 99])
        return {"mean": float(lat.mean()), "p50": float(p50), "p95": float(p95), "p99": float(p99)}

    def slo_summary(self, overdue: int, now: float) -> SloSummary:
        """Violation rate over post-warm-up queries: finished slower than the SLO, failed,
        dropped, or (``overdue``) still in flight past the SLO when the run ends, so that a
        controller cannot hide violations by starving queries. Goodput: those finished within
        the SLO per second from the end of warm-up to ``now`` (None before it)."""
        met = sum(1 for x in self.latencies if x <= self.slo_s)
        judged = len(self.latencies) + self.late_failures + overdue
        rate = (judged - met) / judged if judged else None
        measured = now - self.warmup_s
        goodput = met / measured if measured > 0 else None
        return {
            "target_s": self.slo_s,
            "overdue_in_flight": overdue,
            "violation_rate": rate,
            "goodput_qps": goodput,
        }

    def query_summary(self) -> QueryCounts:
        return {
            "submitted": self.submitted,
            "completed": self.completed,
            "failed": self.failed,
            "dropped": self.dropped,
            "in_flight": self.in_flight,
        }


def check_conservation(summary: Summary) -> None:
    """Raise AssertionError unless submitted = completed + failed + dropped + in_flight."""
    q = summary["queries"]
    total = q["completed"] + q["failed"] + q["dropped"] + q["in_flight"]
    if (
        q["submitted"] != total
        or min(q["completed"], q["failed"], q["dropped"], q["in_flight"]) < 0
    ):
        raise AssertionError(f"query conservation violated: {q}")


def write_timeline(records: list[dict[str, Any]], out: Path | IO[str]) -> None:
    """Write per-query timeline records as JSONL (one query per line)."""
    if isinstance(out, Path):
        with out.open("w") as fh:
            write_timeline(records, fh)
        return
    for rec in records:
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")

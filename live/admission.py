"""Admission by deadline: refuse at once a query that cannot finish within its SLO.

A full backlog is a late signal: by the time it fills, every query admitted waits behind it
and misses its SLO, so goodput (queries completed within the SLO) collapses under overload.
Here each arriving query's latency is predicted from the work already admitted ahead of it
and the measured service rates, and the query is answered ``dropped`` (reason
``would_miss_slo``) at admission when the prediction exceeds its budget. The ``objective``
sets the budget: ``deadline`` (the default) refuses only queries predicted to miss their
deadline, which would fail anyway; ``slo`` refuses those predicted to take more than
``slo_target`` x the SLO (or their deadline, if sooner), which keeps goodput near its peak
under overload at the price of refusing queries that might have finished late; ``off``
admits by backlog length alone.

The prediction, per layer L on the query's path: ``service(L) x (1 + ahead(L) x jobs(L) /
replicas(L))``, summed, where ``ahead(L)`` counts admitted queries that have not yet
finished their stage at L (queued, in service, or still upstream of it), ``jobs(L)`` is the
jobs a query makes there (one per shard for retrievers), ``replicas(L)`` its running
replicas, and ``service(L)`` an EWMA of the service times its workers report. It is a mean,
blind to one query's own size (a huge prompt is bounded by its deadline at the worker
instead), and a layer with no measurement yet adds nothing, so a cold swarm admits
everything until its first answers arrive.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from swarmsim.errors import check

from .roster import Roster
from .state import Query

REASON = "would_miss_slo"
OBJECTIVES = ("deadline", "slo", "off")
EWMA_WEIGHT = 0.05  # of the newest service time in a layer's estimate


@dataclass(frozen=True)
class AdmissionConfig:
    """Admission by deadline of one coordinator."""

    objective: str = "deadline"  # or "slo", or "off"
    slo_target: float = 0.5  # objective slo: the share of the SLO a prediction may take

    def __post_init__(self) -> None:
        check(self.objective in OBJECTIVES, "objective", self.objective, f"one of {OBJECTIVES}")
        check(0 < self.slo_target <= 1, "slo_target", self.slo_target, "in (0, 1]")


class Admission:
    """Queries admitted per layer still ahead of it, service estimates, and the verdict."""

    def __init__(
        self,
        cfg: AdmissionConfig,
        roster: Roster,
        path: Callable[[Query], list[str]],
        slo_s: float,
    ) -> None:
        self.cfg, self.roster, self.path, self.slo_s = cfg, roster, path, slo_s
        self.ahead: dict[str, int] = {}
        self.service: dict[str, float] = {}
        self.inside: set[int] = set()  # the ids of the queries admitted and not yet ended
        self.refused = 0

    def predict(self, query: Query) -> float:
        """Seconds ``query`` would take, from the work ahead of it and the measured rates."""
        total = 0.0
        for layer in self.path(query):
            service = self.service.get(layer)
            if service is None:
                continue
            pools = [p for (name, _), p in self.roster.pools.items() if name == layer]
            replicas = sum(p.size for p in pools)
            if replicas == 0:
                continue  # no replica runs now: dispatch holds or fails it, not admission
            total += service * (1 + self.ahead.get(layer, 0) * len(pools) / replicas)
        return total

    def admit(self, query: Query, budget_s: float) -> bool:
        """Whether ``query`` may start (it then counts as ahead of later ones); False: it
        would miss its budget (``budget_s``, its deadline; or its share of the SLO)."""
        cfg = self.cfg
        if cfg.objective == "slo":
            budget_s = min(cfg.slo_target * self.slo_s, budget_s)
        if cfg.objective != "off" and self.predict(query) > budget_s:
            self.refused += 1
            return False
        for layer in self.path(query):
            self.ahead[layer] = self.ahead.get(layer, 0) + 1
        self.inside.add(query.id)
        return True

    def passed(self, query: Query, stage: int) -> None:
        """``query`` finished its ``stage``: it is no longer ahead of anyone there."""
        if query.id in self.inside:
            self._leave(self.path(query)[stage : stage + 1])

    def left(self, query: Query) -> None:
        """``query`` ended at its current stage: it is ahead of no one further on."""
        if query.id in self.inside:
            self.inside.discard(query.id)
            self._leave(self.path(query)[query.stage :])

    def observe(self, layer: str, service_s: object) -> None:
        """A worker of ``layer`` reported a job's service time (network input: checked)."""
        if not isinstance(service_s, float | int) or isinstance(service_s, bool):
            return
        s = float(service_s)
        if not math.isfinite(s) or s < 0:
            return
        old = self.service.get(layer)
        self.service[layer] = s if old is None else EWMA_WEIGHT * s + (1 - EWMA_WEIGHT) * old

    def _leave(self, layers: list[str]) -> None:
        for layer in layers:
            self.ahead[layer] -= 1

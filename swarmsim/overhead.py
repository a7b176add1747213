"""A layer's coordination overheads: per-stage draws from their fitted distributions by load.

Live, a job spends time between being sent and being served that is neither queueing nor
service: the hop to the worker and back, and the coordinator's and the worker's handling. On
two cores shared by ten processes it has a heavy tail that grows with the number of queries
in the swarm (a ready process waits for a core), so a median alone understates every stage's
p99; a routing controller's decision adds to the coordinator's handling before a stage's
sends. The scenario gives the distributions as tables of quantiles by load
(:class:`OverheadConfig`); a stage draws by inverse-CDF linear
interpolation in its load's row, from the layer's own stream: one seed gives the same draws,
and a layer's draws do not shift when another layer's job order changes.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_right
from dataclasses import dataclass

from .errors import check
from .rng import Stream


@dataclass(frozen=True)
class OverheadConfig:
    """A stage's coordination time, as tables of its distribution by load: row ``k`` applies
    when ``k + 1`` queries are in the swarm (the last row: that many or more; one row: any
    load) and ``row[i]`` is the ``probabilities[i]`` quantile. ``quantiles_s``: the hops and
    handling from its jobs being sent to their being served, less any queueing; drawn once per
    stage (a fan-out's jobs share it) and spent on the way to the agents, it delays service
    without occupying the agent. ``dispatch_quantiles_s`` (optional): the coordinator's
    handling from the stage becoming ready (the previous stage's last answer, or the query's
    arrival) to its first job being sent, a routing controller's decision included.
    ``swarmsim calibrate`` fits both to a live recording, whose CPU contention makes them
    grow with load."""

    quantiles_s: tuple[tuple[float, ...], ...]
    probabilities: tuple[float, ...] = ()  # default: evenly spaced from 0 to 1
    dispatch_quantiles_s: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        check(len(self.quantiles_s) >= 1, "quantiles_s", self.quantiles_s, "at least one row")
        for name in ("quantiles_s", "dispatch_quantiles_s"):
            for k, q in enumerate(getattr(self, name)):
                where = f"{name}[{k}]"
                check(len(q) >= 2, where, q, "at least two quantiles")
                ok = all(math.isfinite(x) and x >= 0 for x in q)
                check(ok, where, q, "numbers >= 0 (seconds)")
                check(all(a <= b for a, b in itertools.pairwise(q)), where, q, "non-decreasing")
                n = len(self.levels)
                check(len(q) == n, where, q, f"{n} quantiles, one a level")
        p = self.levels
        check(p[0] == 0 and p[-1] == 1, "probabilities", p, "levels from 0 to 1")
        check(all(a < b for a, b in itertools.pairwise(p)), "probabilities", p, "increasing")

    @property
    def levels(self) -> tuple[float, ...]:
        """The probability of each quantile: as given, or evenly spaced from 0 to 1."""
        n = len(self.quantiles_s[0]) if self.quantiles_s else 0
        return self.probabilities or tuple(i / max(n - 1, 1) for i in range(n))


class Overhead:
    """Draws one layer's per-stage overheads, deterministic per seed."""

    __slots__ = ("dispatch_rows", "levels", "rows", "stream")

    def __init__(self, cfg: OverheadConfig, stream: Stream) -> None:
        self.levels = list(cfg.levels)
        self.rows = [list(q) for q in cfg.quantiles_s]
        self.dispatch_rows = [list(q) for q in cfg.dispatch_quantiles_s]
        self.stream = stream

    def draw(self, load: int) -> float:
        """Seconds of hops and handling with ``load`` queries in the swarm."""
        return self._quantile(self.rows, load)

    def dispatch(self, load: int) -> float:
        """Seconds of the coordinator's handling before the stage's first send."""
        return self._quantile(self.dispatch_rows, load)

    def _quantile(self, rows: list[list[float]], load: int) -> float:
        """The quantile function of the load's row at a uniform draw."""
        q = rows[min(max(load, 1), len(rows)) - 1]
        u = self.stream.uniform()
        levels = self.levels
        i = bisect_right(levels, u)  # levels[i - 1] <= u < levels[i]: levels run 0 to 1
        lo, hi = levels[i - 1], levels[i]
        return q[i - 1] + (q[i] - q[i - 1]) * (u - lo) / (hi - lo)

"""A layer's coordination overheads: per-stage draws from their fitted distributions by load.

Live, a job spends time between being sent and being served that is neither queueing nor
service: the hop to the worker and back, and the coordinator's and the worker's handling. On
two cores shared by ten processes it has a heavy tail that grows with the number of queries
in the swarm (a ready process waits for a core), so a median alone understates every stage's
p99; a routing controller's decision adds to the coordinator's handling before a stage's
sends. The scenario gives the distributions as tables of quantiles by load
(:class:`~swarmsim.scenario.OverheadConfig`); a stage draws by inverse-CDF linear
interpolation in its load's row, from the layer's own stream: one seed gives the same draws,
and a layer's draws do not shift when another layer's job order changes.
"""

from __future__ import annotations

from bisect import bisect_right

from .rng import Stream
from .scenario import OverheadConfig


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

"""A layer's hop-and-handling overhead: per-stage draws from its fitted distribution by load.

Live, a job spends time between being sent and being served that is neither queueing nor
service: the hop to the worker and back, and the coordinator's and the worker's handling. On
two cores shared by ten processes it has a heavy tail that grows with the number of queries
in the swarm (a ready process waits for a core), so a median alone understates every stage's
p99. The scenario gives the distribution as tables of quantiles by load
(:class:`~swarmsim.scenario.OverheadConfig`); a stage draws by inverse-CDF linear
interpolation in its load's row, from the layer's own stream: one seed gives the same draws,
and a layer's draws do not shift when another layer's job order changes.
"""

from __future__ import annotations

from bisect import bisect_right

from .rng import Stream
from .scenario import OverheadConfig


class Overhead:
    """Draws one layer's per-stage overhead, deterministic per seed."""

    __slots__ = ("levels", "rows", "stream")

    def __init__(self, cfg: OverheadConfig, stream: Stream) -> None:
        self.levels = list(cfg.levels)
        self.rows = [list(q) for q in cfg.quantiles_s]
        self.stream = stream

    def draw(self, load: int) -> float:
        """Seconds of overhead with ``load`` queries in the swarm: the quantile function of the
        load's row at a uniform draw."""
        q = self.rows[min(max(load, 1), len(self.rows)) - 1]
        u = self.stream.uniform()
        levels = self.levels
        i = bisect_right(levels, u)  # levels[i - 1] <= u < levels[i]: levels run 0 to 1
        lo, hi = levels[i - 1], levels[i]
        return q[i - 1] + (q[i] - q[i - 1]) * (u - lo) / (hi - lo)

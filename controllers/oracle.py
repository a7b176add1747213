"""The autoscaling oracle: a reference that knows the run's future arrivals, not a heuristic.

It is the upper bound beside the tuned heuristics and the learned autoscaler: what sizing for
the load that will come, rather than forecasting it (``Predictive``), is worth. It cannot be
deployed: only the simulator knows a run's future, which ``envs.attach`` hands it through
``foresee`` (a ``swarmsim.foresight.Foresight``) before the run starts, and the live runtime
refuses it (``controllers.spec.resolve_live``).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from swarmsim.foresight import Foresight

from .scaling import ARRIVALS, RUNNING, STARTING, THROUGHPUT, UTILISATION, _PerLayer

MEASURED_INTERVALS = 20  # control intervals a layer's work per query is measured over
GRID_S = 1.0  # spacing of the times at which the future rate is evaluated


@dataclass
class Oracle(_PerLayer):
    """Sizes each layer for the peak of the run's actual arrival rate one start-up ahead.

    At each control interval, for layer ``l`` with start-up ``S`` (the longest a replica asked
    for now takes to serve: ``Foresight.startup_s``), the future rate ``r(t)`` is the run's
    arrivals in ``[t - window_s / 2, t + window_s / 2)`` per second. A replica's work per query
    is measured from the view as ``Predictive`` measures capacity: busy replica-seconds per job
    answered, times the layer's jobs per query arrived, summed over the last
    ``MEASURED_INTERVALS`` intervals. ``need(r) = ceil(r x work / target_utilization)``.
    Scale up to ``need`` of the peak of ``r`` over ``[now + S, now + S + horizon_s]`` (what
    replicas asked for now will serve); scale down only to ``need`` of the peak over
    ``[now, now + S + horizon_s]``, so no replica is released that will be wanted again
    before a new one could start. Until a layer has answered a job it holds.
    """

    target_utilization: float = 0.7
    horizon_s: float = 60.0
    window_s: float = 60.0
    foresight: Foresight | None = field(default=None, init=False, repr=False, compare=False)

    def foresee(self, foresight: Foresight) -> None:
        """Be told the run's future (by ``envs.attach``, before the run starts)."""
        self.foresight = foresight
        self.reset()

    def desired(self, layer: int, raw: np.ndarray, current: int) -> int:
        future = self._future()
        now = future.clock()
        work = self.work_per_query(layer, raw, now)
        if work is None:
            return current  # no job answered yet: nothing measured
        lead, end = now + future.startup_s[layer], now + future.startup_s[layer] + self.horizon_s
        up = self.need(self.peak_rate(lead, end), work)
        keep = self.need(self.peak_rate(now, end), work)
        return max(up, min(current, keep))

    def need(self, rate: float, work: float) -> int:
        """Replicas that serve ``rate`` queries/s of ``work`` replica-seconds each at the target
        utilisation."""
        return max(0, math.ceil(rate * work / self.target_utilization - 1e-9))

    def peak_rate(self, start: float, end: float) -> float:
        """The highest future arrival rate (queries/s, averaged over ``window_s``) at the times
        from ``start`` to ``end``."""
        times = np.arange(start, max(start, end) + GRID_S / 2, GRID_S)
        half = self.window_s / 2
        counts = self._future().count(times - half, times + half)
        return float(counts.max()) / self.window_s

    def work_per_query(self, layer: int, raw: np.ndarray, now: float) -> float | None:
        """Replica-seconds of ``layer`` per query arrived, measured over the last intervals
        (None until the layer has answered a job)."""
        future = self._future()
        arrived = float(future.count(now - future.interval_s, now)) / future.interval_s
        busy = raw[UTILISATION] * (raw[RUNNING] + raw[STARTING])
        window = self.memory(layer).setdefault("work", deque(maxlen=MEASURED_INTERVALS))
        window.append((busy, raw[THROUGHPUT], raw[ARRIVALS], arrived))
        busy_sum, answered, jobs, queries = np.sum(window, axis=0)
        if answered <= 0 or queries <= 0:
            return None
        return float(busy_sum / answered * jobs / queries)

    def _future(self) -> Foresight:
        if self.foresight is None:
            raise RuntimeError(
                "oracle: not told the run's future arrivals; it is a reference that runs only "
                "when attached to a simulation (swarmsim simulate, eval, tune)"
            )
        return self.foresight

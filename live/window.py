"""What each layer saw since the control interval began: arrivals and stage latencies."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from swarmsim.view import ARRIVAL_HISTORY


class LoadWindow:
    """Jobs sent and answer latencies per layer since ``start`` (a control interval), and the
    arrival rates of the intervals before it."""

    def __init__(self, layers: Iterable[str]) -> None:
        self.start = 0.0
        self.arrivals: dict[str, int] = dict.fromkeys(layers, 0)
        self.recent: dict[str, list[float]] = {n: [] for n in self.arrivals}
        self.past: dict[str, deque[float]] = {
            n: deque(maxlen=ARRIVAL_HISTORY) for n in self.arrivals
        }  # jobs/s of the completed intervals, oldest first

    def arrive(self, layer: str) -> None:
        """One job of ``layer`` was sent to an agent."""
        self.arrivals[layer] += 1

    def answered(self, layer: str, seconds: float) -> None:
        """One job of ``layer`` was answered ``seconds`` after it was sent."""
        self.recent[layer].append(seconds)

    def rate(self, layer: str, now: float) -> float:
        """Jobs of ``layer`` sent per second since the interval began."""
        return self.arrivals[layer] / self.elapsed(now)

    def elapsed(self, now: float) -> float:
        return max(now - self.start, 1e-9)

    def history(self, layer: str) -> tuple[float, ...]:
        """Arrival rates of ``layer``'s completed intervals, oldest first (``LayerStats``)."""
        return tuple(self.past[layer])

    def reset(self, now: float) -> None:
        """Close the interval (its rate joins the history) and begin a new one at ``now``."""
        for name, n in self.arrivals.items():
            self.past[name].append(n / self.elapsed(now))
        self.start = now
        self.arrivals = dict.fromkeys(self.arrivals, 0)
        self.recent = {n: [] for n in self.recent}

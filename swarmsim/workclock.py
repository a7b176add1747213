"""How fast each agent's work progresses over time, for injected slow, pause and hang faults.

An agent works at rate 1 normally, ``1/X`` while slowed X times and 0 while frozen (paused or
hung); overlapping windows multiply. A batch of ``s`` seconds of work started at ``t0`` ends
when the rate integrated from ``t0`` reaches ``s``, so a window that opens or closes during a
service stretches exactly the part of it inside the window.
"""

from __future__ import annotations

import math


class WorkClock:
    """Rate windows per agent id: ``(start, end, rate)``, ``end`` may be ``math.inf``."""

    def __init__(self) -> None:
        self.windows: dict[int, list[tuple[float, float, float]]] = {}

    def add(self, agent: int, start: float, end: float, rate: float) -> None:
        """From ``start`` to ``end`` the agent works at ``rate`` times its speed."""
        if not (0.0 <= rate <= 1.0 and end > start):
            raise ValueError(f"a rate in [0, 1] over end > start, got {rate} on [{start}, {end})")
        self.windows.setdefault(agent, []).append((start, end, rate))

    def rate(self, agent: int, t: float) -> float:
        """The agent's work rate at ``t``."""
        r = 1.0
        for start, end, rate in self.windows.get(agent, ()):
            if start <= t < end:
                r *= rate
        return r

    def frozen(self, agent: int, t: float) -> bool:
        """True while the agent makes no progress at all (paused or hung)."""
        return self.rate(agent, t) == 0.0

    def finish(self, agent: int, t0: float, work: float) -> float:
        """When ``work`` seconds of full-speed work started at ``t0`` are done (inf: never)."""
        t, left = t0, work
        for b in self._breaks(agent, t0):
            r = self.rate(agent, t)
            if r == 0.0 and b == math.inf:
                break
            if r > 0.0 and t + left / r <= b:
                return t + left / r
            left -= (b - t) * r
            t = b
        return math.inf

    def done(self, agent: int, t0: float, t1: float) -> float:
        """Seconds of full-speed work done between ``t0`` and ``t1``."""
        work, t = 0.0, t0
        for b in self._breaks(agent, t0):
            b = min(b, t1)
            work += (b - t) * self.rate(agent, t)
            t = b
            if t >= t1:
                break
        return work

    def _breaks(self, agent: int, t0: float) -> list[float]:
        """The window edges after ``t0``, in order, ending with inf."""
        edges = {x for w in self.windows.get(agent, ()) for x in w[:2] if t0 < x < math.inf}
        return [*sorted(edges), math.inf]

"""Seeded random streams: one root generator, one child stream per concern.

Every draw in a simulation comes from here. Streams are spawned from a single
``numpy.random.Generator`` so that one seed fixes a run, and each concern (arrivals,
service, failures, ...) has its own stream so that changing a controller does not shift
the arrivals or failures another controller sees (common random numbers).
Draws are buffered in numpy blocks: a scalar numpy call per draw would cost more than
the event it times.
"""

from __future__ import annotations

import numpy as np

STREAMS = ("workload", "queries", "service", "dispatch", "failures", "fabric", "overhead",
           "prefix", "training", "popularity", "bursts", "sessions", "faults")  # fmt: skip
# appended names leave the earlier streams' draws unchanged (spawned children are numbered)
BLOCK = 4096


class Stream:
    """A buffered source of uniform and standard-exponential draws."""

    __slots__ = ("_exp", "_i_exp", "_i_uni", "_uni", "gen")

    def __init__(self, gen: np.random.Generator) -> None:
        self.gen = gen
        self._exp: list[float] = []
        self._uni: list[float] = []
        self._i_exp = 0
        self._i_uni = 0

    def exponential(self, mean: float) -> float:
        """An exponential draw with the given mean."""
        i = self._i_exp
        if i >= len(self._exp):
            self._exp = self.gen.standard_exponential(BLOCK).tolist()
            i = 0
        self._i_exp = i + 1
        return self._exp[i] * mean

    def uniform(self) -> float:
        """A uniform draw in [0, 1)."""
        i = self._i_uni
        if i >= len(self._uni):
            self._uni = self.gen.random(BLOCK).tolist()
            i = 0
        self._i_uni = i + 1
        return self._uni[i]

    def randrange(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return int(self.uniform() * n)

    def lognormal(self, median: float, sigma: float) -> float:
        """A lognormal draw with the given median and log-space sigma."""
        return float(median * np.exp(sigma * self.gen.standard_normal()))


class RandomStreams:
    """The named streams of one run, all spawned from ``numpy.random.default_rng(seed)``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        root = np.random.default_rng(seed)
        children = root.spawn(len(STREAMS))
        self._streams = {name: Stream(g) for name, g in zip(STREAMS, children, strict=True)}

    def __getitem__(self, name: str) -> Stream:
        return self._streams[name]

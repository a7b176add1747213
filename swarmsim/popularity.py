"""Which query of the corpus's pool each arrival asks: uniformly, or by Zipf-popular topics.

With ``topic_zipf = s`` the pool's topics are ranked in a random order (drawn per run from the
``popularity`` stream) and the topic of rank ``r`` (1-based) is asked with weight ``r^-s``; a
query is then uniform among the pool's queries of that topic. Popular topics live in a few
shards (the corpus is sharded by k-means over topic-clustered vectors), so those shards run
hot for any router that searches only the relevant ones. Zipf-skewed access is the common
finding for retrieval and web workloads: RAGCache (REFERENCE.md) saw 3% of documents draw 60%
of retrievals.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

import numpy as np

from .errors import check
from .rng import Stream


@dataclass(frozen=True)
class PopularityConfig:
    """How arrivals pick their query from the pool; uniform unless ``topic_zipf`` is set."""

    topic_zipf: float | None = None  # Zipf exponent over the pool's topics; None: uniform

    def __post_init__(self) -> None:
        s = self.topic_zipf
        check(s is None or (math.isfinite(s) and s >= 0), "topic_zipf", s, "a number >= 0 or null")


class Popularity:
    """Draws pool indices with Zipf weights over topics, from its own stream."""

    def __init__(self, exponent: float, query_topics: np.ndarray, stream: Stream) -> None:
        self.stream = stream
        topics, per_query_topic, counts = np.unique(
            query_topics, return_inverse=True, return_counts=True
        )
        rank = stream.gen.permutation(len(topics)) + 1  # rank of each topic, 1 = most asked
        weight = rank.astype(np.float64) ** -exponent
        self.topic_share = weight / weight.sum()  # by position in ``self.topics``
        self.topics = topics
        per_query = (weight / counts)[per_query_topic]
        self._cdf = list(itertools.accumulate(per_query.tolist()))

    def draw(self) -> int:
        """A pool index: its topic by Zipf weight, uniform within the topic."""
        cdf = self._cdf
        i = bisect.bisect_right(cdf, self.stream.uniform() * cdf[-1])
        return min(i, len(cdf) - 1)

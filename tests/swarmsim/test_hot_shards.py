"""Hot shards: shards of unequal modelled size cost what they hold; popular topics are asked
by Zipf's law."""

from __future__ import annotations

import numpy as np
import pytest

from swarmsim import Simulation
from swarmsim.errors import ConfigError
from swarmsim.popularity import Popularity
from swarmsim.rng import Stream
from swarmsim.service import RetrievalConfig

# Four shards, one CPU replica each (agent i holds shard i), flat search on cpu-desktop
# (0.12 ns per vector-dimension, data/hardware.yaml); no fabric, so a stage is its search.
SHARDS = """
fabric: {{enabled: false}}
corpus: {{n_vectors: 2000, dim: 16, n_topics: 8, n_shards: 4, n_queries: 64, k: 10}}
retrieval: {{index: flat, vectors_total: 8000000, dim: 384{weights}}}
layers:
  retriever: {{role: retriever, device: cpu}}
stages: [{{layer: retriever}}]
nodes:
  - name: spinoza
    cpu: cpu-desktop
    agents: [{{layer: retriever, shard: 0}}, {{layer: retriever, shard: 1}},
             {{layer: retriever, shard: 2}}, {{layer: retriever, shard: 3}}]
"""
OVERHEAD_S = 50e-6  # service.SEARCH_OVERHEAD_S


def search_times(story, weights: str) -> dict[int, float]:
    sim = Simulation(story(SHARDS.format(weights=weights)), seed=0, record_timeline=True)
    sim.run()
    (rec,) = sim.timeline
    return {st["agent"]: st["end"] - st["start"] for st in rec["stages"]}


def test_equal_shards_by_default_each_scan_a_quarter_of_the_index(story) -> None:
    """2,000,000 vectors x 384 dims x 0.12 ns = 92.16 ms, plus the 50 us per-query overhead."""
    assert search_times(story, "") == pytest.approx(dict.fromkeys(range(4), 0.09216 + OVERHEAD_S))


def test_unequal_shards_cost_what_they_hold(story) -> None:
    """Weights 4:2:1:1 of 8M vectors: 4M, 2M, 1M and 1M vectors scanned."""
    got = search_times(story, ", shard_weights: [4, 2, 1, 1]")
    want = [0.18432, 0.09216, 0.04608, 0.04608]
    assert got == pytest.approx({s: t + OVERHEAD_S for s, t in enumerate(want)})


def test_shard_weights_split_the_index_and_must_match_the_corpus(story) -> None:
    assert RetrievalConfig(vectors_total=8, shard_weights=(4, 2, 1, 1)).shard_vectors(4) == [
        4, 2, 1, 1
    ]  # fmt: skip
    assert RetrievalConfig(vectors_total=8).shard_vectors(4) == [2, 2, 2, 2]
    with pytest.raises(ConfigError, match=r"retrieval\.shard_weights"):
        story(SHARDS.format(weights=", shard_weights: [1, 1]"))
    with pytest.raises(ConfigError, match=r"shard_weights\[1\]"):
        story(SHARDS.format(weights=", shard_weights: [1, 0, 1, 1]"))


def test_topics_are_asked_with_zipf_frequencies() -> None:
    """Six topics of 1 to 6 pool queries each, exponent 1.2, 200,000 draws. The shares follow
    rank^-1.2 exactly; each observed frequency is within 5 binomial standard deviations of its
    share (sd <= sqrt(0.25 / 200,000) = 0.0011; a false alarm has probability ~1e-6)."""
    topics = np.repeat(np.arange(6), np.arange(1, 7))  # topic t has t + 1 queries
    pop = Popularity(1.2, topics, Stream(np.random.default_rng(11)))
    ranked = np.sort(pop.topic_share)[::-1]
    assert ranked == pytest.approx(np.arange(1, 7) ** -1.2 / np.sum(np.arange(1, 7) ** -1.2))
    n = 200_000
    drawn = np.array([pop.draw() for _ in range(n)])
    freq = np.bincount(topics[drawn], minlength=6) / n
    sd = np.sqrt(pop.topic_share * (1 - pop.topic_share) / n)
    assert np.all(np.abs(freq - pop.topic_share) < 5 * sd)


def test_within_a_topic_queries_are_asked_uniformly() -> None:
    """One topic of 4 queries: each drawn 1/4 of the time (50,000 draws, sd 0.0019, 5 sd)."""
    pop = Popularity(1.0, np.zeros(4, dtype=np.int64), Stream(np.random.default_rng(3)))
    freq = np.bincount([pop.draw() for _ in range(50_000)], minlength=4) / 50_000
    assert np.all(np.abs(freq - 0.25) < 5 * np.sqrt(0.25 * 0.75 / 50_000))

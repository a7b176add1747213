"""Tests for the sharded vector corpus: determinism, partition, exact ground truth and recall."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from swarmsim.corpus import Corpus, CorpusConfig, synthetic_corpus
from swarmsim.errors import ConfigError

SMALL = CorpusConfig(n_vectors=2000, dim=16, n_topics=12, n_shards=6, n_queries=128, k=10)
ARRAYS = ("vectors", "shard_of", "centroids", "shard_sizes", "queries", "ground_truth")
TABLES = ("gt_shard_counts", "relevance")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return synthetic_corpus(SMALL, np.random.default_rng(7))


@pytest.fixture(scope="module")
def flat_indexes(corpus: Corpus) -> list:
    return [corpus.build_shard_index(s) for s in range(corpus.n_shards)]


def measured_recall(corpus: Corpus, query: int, shards, indexes) -> float:
    """Recall@k measured the real way: search faiss shard indexes and intersect with the truth."""
    found = corpus.search_shards(corpus.queries[query], shards, indexes, corpus.k)
    return len(set(found.tolist()) & set(corpus.ground_truth[query].tolist())) / corpus.k


def test_same_seed_gives_identical_corpus(corpus: Corpus) -> None:
    again = synthetic_corpus(SMALL, np.random.default_rng(7))
    for name in ARRAYS + TABLES:
        assert np.array_equal(getattr(corpus, name), getattr(again, name)), name
    assert again.fingerprint() == corpus.fingerprint()


def test_different_seed_gives_different_corpus(corpus: Corpus) -> None:
    other = synthetic_corpus(SMALL, np.random.default_rng(8))
    assert not np.array_equal(other.vectors, corpus.vectors)
    assert other.fingerprint() != corpus.fingerprint()


def test_result_does_not_depend_on_faiss_thread_count(corpus: Corpus) -> None:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        again = synthetic_corpus(SMALL, np.random.default_rng(7))
        assert faiss.omp_get_max_threads() == 2  # the build restores the caller's setting
    finally:
        faiss.omp_set_num_threads(before)
    assert again.fingerprint() == corpus.fingerprint()


def test_arrays_are_read_only_and_shaped(corpus: Corpus) -> None:
    n, d, q, k, s = SMALL.n_vectors, SMALL.dim, SMALL.n_queries, SMALL.k, SMALL.n_shards
    shapes = [(n, d), (n,), (s, d), (s,), (q, d), (q, k), (q, s), (q, s)]
    dtypes = [
        np.float32,
        np.int32,
        np.float32,
        np.int64,
        np.float32,
        np.int64,
        np.int64,
        np.float32,
    ]
    for name, shape, dtype in zip(ARRAYS + TABLES, shapes, dtypes, strict=True):
        array = getattr(corpus, name)
        assert (array.shape, array.dtype) == (shape, dtype), name
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 0
    np.testing.assert_allclose(np.linalg.norm(corpus.vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(corpus.queries, axis=1), 1.0, atol=1e-5)


def test_shards_partition_the_corpus(corpus: Corpus) -> None:
    assert corpus.shard_sizes.sum() == SMALL.n_vectors
    assert np.all(corpus.shard_sizes > 0)
    assert np.array_equal(np.bincount(corpus.shard_of), corpus.shard_sizes)


def test_every_shard_gets_a_vector_when_points_are_fewer_than_shards() -> None:
    rng = np.random.default_rng(0)
    distinct = rng.standard_normal((3, 8))
    tiny = Corpus.from_embeddings(np.repeat(distinct, 20, axis=0), distinct, 5, 4, rng)
    assert tiny.shard_sizes.sum() == 60
    assert np.all(tiny.shard_sizes > 0)


def test_ground_truth_is_the_brute_force_top_k(corpus: Corpus) -> None:
    sims = corpus.queries.astype(np.float64) @ corpus.vectors.astype(np.float64).T
    brute = np.argsort(-sims, axis=1, kind="stable")[:, : corpus.k]
    assert np.array_equal(corpus.ground_truth, brute)


def test_gt_shard_counts_count_true_neighbours_per_shard(corpus: Corpus) -> None:
    assert np.all(corpus.gt_shard_counts.sum(axis=1) == corpus.k)
    q = 5
    expected = np.bincount(corpus.shard_of[corpus.ground_truth[q]], minlength=corpus.n_shards)
    assert np.array_equal(corpus.gt_shard_counts[q], expected)


def test_recall_over_all_shards_is_one_and_over_none_is_zero(corpus: Corpus) -> None:
    everything, nothing = range(corpus.n_shards), []
    all_mask, no_mask = np.ones(corpus.n_shards, bool), np.zeros(corpus.n_shards, bool)
    for q in range(SMALL.n_queries):
        assert corpus.recall_at_k(q, everything) == 1.0
        assert corpus.recall_at_k(q, nothing) == 0.0
        assert corpus.recall_for_mask(q, all_mask) == 1.0
        assert corpus.recall_for_mask(q, no_mask) == 0.0


def test_repeated_shards_count_once(corpus: Corpus) -> None:
    best = int(np.argmax(corpus.gt_shard_counts[0]))
    assert corpus.recall_at_k(0, [best, best]) == corpus.recall_at_k(0, [best])


def test_recall_at_k_equals_recall_measured_with_flat_shard_indexes(
    corpus: Corpus, flat_indexes: list
) -> None:
    rng = np.random.default_rng(1)
    recalls = []
    for q in range(SMALL.n_queries):
        mask = rng.random(corpus.n_shards) < 0.4
        shards = np.flatnonzero(mask).tolist()
        measured = measured_recall(corpus, q, shards, flat_indexes)
        assert corpus.recall_at_k(q, shards) == measured, (q, shards)
        assert corpus.recall_for_mask(q, mask) == measured, (q, shards)
        recalls.append(measured)
    assert 0.0 < np.mean(recalls) < 1.0  # the subsets really were partial


def test_ivf_probing_every_list_is_exact(corpus: Corpus) -> None:
    indexes = [corpus.build_shard_index(s, "ivf", nlist=4, nprobe=4) for s in range(6)]
    for q in range(0, SMALL.n_queries, 7):
        assert measured_recall(corpus, q, [0, 2, 3], indexes) == corpus.recall_at_k(q, [0, 2, 3])


def test_approximate_search_never_beats_the_exact_bound(corpus: Corpus) -> None:
    indexes = [corpus.build_shard_index(s, "hnsw", M=8, efSearch=16) for s in range(6)]
    shards = [1, 4, 5]
    pairs = [
        (measured_recall(corpus, q, shards, indexes), corpus.recall_at_k(q, shards))
        for q in range(SMALL.n_queries)
    ]
    assert all(measured <= bound for measured, bound in pairs)
    assert np.mean([m for m, _ in pairs]) > 0.8 * np.mean([b for _, b in pairs])


def test_unknown_index_kind_is_rejected_by_name(corpus: Corpus) -> None:
    with pytest.raises(ValueError, match="'annoy'"):
        corpus.build_shard_index(0, "annoy")


def test_searching_no_shards_finds_nothing(corpus: Corpus, flat_indexes: list) -> None:
    found = corpus.search_shards(corpus.queries[0], [], flat_indexes, corpus.k)
    assert found.tolist() == [-1] * corpus.k


def test_relevance_is_cosine_to_shard_centroids(corpus: Corpus) -> None:
    np.testing.assert_allclose(np.linalg.norm(corpus.centroids, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(corpus.relevance, corpus.queries @ corpus.centroids.T, atol=1e-6)


def test_relevance_ranks_the_shard_holding_most_neighbours_high(corpus: Corpus) -> None:
    # Rank 0 is the most relevant shard; a random shard has mean rank (n_shards - 1) / 2 = 2.5.
    ranks = np.argsort(np.argsort(-corpus.relevance, axis=1), axis=1)
    best = np.argmax(corpus.gt_shard_counts, axis=1)
    best_rank = ranks[np.arange(len(best)), best]
    assert best_rank.mean() < 0.5
    assert np.mean(best_rank == 0) > 0.7


def small_real_corpus(gold: np.ndarray | None) -> Corpus:
    """A corpus built the way a real embedded one is, from fixed 'embeddings'."""
    rng = np.random.default_rng(0)
    vectors, queries = rng.standard_normal((300, 8)), rng.standard_normal((4, 8))
    return Corpus.from_embeddings(vectors, queries, 3, 5, np.random.default_rng(1), gold=gold)


def test_gold_ids_are_kept_and_fingerprinted() -> None:
    with_gold = small_real_corpus(np.array([3, 1, 4, 1]))
    assert with_gold.gold.tolist() == [3, 1, 4, 1]
    assert with_gold.fingerprint() != small_real_corpus(None).fingerprint()
    with pytest.raises(ValueError, match="gold"):
        small_real_corpus(np.array([1, 2]))


def test_constructor_rejects_inconsistent_arrays(corpus: Corpus) -> None:
    v, s, q = corpus.vectors, corpus.shard_of, corpus.queries
    with pytest.raises(ValueError, match="normalised"):
        Corpus(v * 2, s, q, 10, 6)
    with pytest.raises(ValueError, match="shard id"):
        Corpus(v, np.minimum(s, 4), q, 10, 6)
    with pytest.raises(ValueError, match="k must be"):
        Corpus(v, s, q, len(v) + 1, 6)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_shards", 0),
        ("k", 0),
        ("n_vectors", -5),
        ("dim", 2.5),
        ("n_queries", True),
        ("kmeans_iters", 0),
        ("topic_spread", -0.1),
        ("topic_spread", float("nan")),
    ],
)
def test_bad_config_values_name_their_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        CorpusConfig(**{field: value})
    assert err.value.field == field


@pytest.mark.parametrize(("field", "value"), [("k", 101), ("n_shards", 101)])
def test_config_counts_cannot_exceed_the_corpus(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field) as err:
        CorpusConfig(n_vectors=100, **{field: value})
    assert err.value.field == field

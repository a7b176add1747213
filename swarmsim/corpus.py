"""The vector corpus a retrieval layer searches, split into shards.

A :class:`Corpus` holds L2-normalised vectors, their shard assignment, a pool of queries with
their exact top-k neighbours, and per-query tables that let the simulator score a routing plan
(which shards a query searched) with its exact recall@k in a microsecond. The same object
builds real faiss shard indexes, so the live runtime serves the very corpus the simulator
scored. Free of SimPy; every random draw comes from a ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from swarmsim.errors import check

if TYPE_CHECKING:  # faiss is imported where an index is built: a run without retrieval
    import faiss  # (and swarmsim's command line) never loads it

# Topic weights follow Zipf's law with this exponent (randomly permuted over topics): a few
# large topics and a long tail, as in real document collections.
TOPIC_ZIPF_EXPONENT = 1.0


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class CorpusConfig:
    """Shape of the synthetic corpus: topic mixture, sharding and the query pool."""

    n_vectors: int = 20_000  # documents (vectors) in the corpus
    dim: int = 64  # embedding dimension
    n_topics: int = 48  # mixture components the documents and queries are drawn from
    topic_spread: float = 0.35  # per-coordinate noise std around the unit topic centres
    n_shards: int = 8  # shards the corpus is split into by spherical k-means
    n_queries: int = 1024  # size of the query pool the workload samples from
    k: int = 10  # neighbours per query: recall is measured as recall@k
    kmeans_iters: int = 20  # k-means iterations used to form the shards
    seed: int = 0  # the corpus is data: fixed by the scenario, not drawn anew per run seed

    def __post_init__(self) -> None:
        check(_is_int(self.seed) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        for name in ("n_vectors", "dim", "n_topics", "n_shards", "n_queries", "k", "kmeans_iters"):
            value = getattr(self, name)
            check(_is_int(value) and value >= 1, name, value, "an integer >= 1")
        spread = self.topic_spread
        ok = isinstance(spread, int | float) and not isinstance(spread, bool)
        check(ok and math.isfinite(spread) and spread >= 0, "topic_spread", spread, "a float >= 0")
        check(self.n_shards <= self.n_vectors, "n_shards", self.n_shards, "<= n_vectors")
        check(self.k <= self.n_vectors, "k", self.k, "<= n_vectors")


@contextmanager
def _single_thread() -> Iterator[None]:
    """Pin faiss to one OpenMP thread so results are bit-identical whatever the core count."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _normalise(x: np.ndarray, what: str) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm, as float32; zero rows are an error."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise ValueError(f"{what} must have no zero rows, got {int(np.sum(norms == 0))}")
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _frozen(a: np.ndarray, dtype: type) -> np.ndarray:
    """A read-only C-contiguous copy of ``a`` (a copy, so the caller's array stays writeable)."""
    a = np.array(a, dtype=dtype, order="C", copy=True)
    a.flags.writeable = False
    return a


def _check_shapes(
    vectors: np.ndarray,
    shard_of: np.ndarray,
    queries: np.ndarray,
    k: int,
    n_shards: int,
    gold: np.ndarray | None,
) -> int:
    """Raise ValueError unless the corpus arrays agree with each other; return the dimension."""
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"vectors must have shape (n >= 1, dim), got {vectors.shape}")
    (n, dim), q = vectors.shape, len(queries)
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise ValueError(f"queries must have shape (q, {dim}), got {queries.shape}")
    if not np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3):
        raise ValueError("vectors must be L2-normalised rows (use Corpus.from_embeddings)")
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}] (the corpus size), got {k}")
    if shard_of.shape != (n,) or not np.array_equal(np.unique(shard_of), np.arange(n_shards)):
        raise ValueError(f"shard_of must be ({n},) and use every shard id in [0, {n_shards})")
    if gold is not None and gold.shape != (q,):
        raise ValueError(f"gold must have shape ({q},), got {gold.shape}")
    return int(dim)


def _nearest(base: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``base`` by inner product for each row of ``x`` (faiss)."""
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    with _single_thread():
        return index.search(x, k)


def _fill_empty_shards(vectors: np.ndarray, shard_of: np.ndarray, centres: np.ndarray) -> None:
    """Give each empty shard the vector nearest its centre taken from a shard of size >= 2.

    k-means can leave a cluster empty (e.g. fewer distinct points than shards); every shard
    must hold at least one vector, so such shards steal one, deterministically.
    """
    n_shards = centres.shape[0]
    for shard in range(n_shards):
        sizes = np.bincount(shard_of, minlength=n_shards)
        if sizes[shard] == 0:
            sims = vectors @ centres[shard]
            sims[sizes[shard_of] < 2] = -np.inf
            shard_of[int(np.argmax(sims))] = shard


def kmeans_shards(
    vectors: np.ndarray, n_shards: int, rng: np.random.Generator, iters: int = 20
) -> np.ndarray:
    """Shard id of each (normalised) vector by spherical k-means, seeded from ``rng``.

    Deterministic: the same vectors and rng state give the same ids bit for bit.
    """
    import faiss

    if not 1 <= n_shards <= len(vectors):
        raise ValueError(f"n_shards must be in [1, {len(vectors)}], got {n_shards}")
    seed = int(rng.integers(2**31 - 1))
    kmeans = faiss.Kmeans(vectors.shape[1], n_shards, niter=iters, seed=seed, spherical=True)
    with _single_thread():
        kmeans.train(vectors)
    centres = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    shard_of = _nearest(centres, vectors, 1)[1][:, 0].astype(np.int32)
    _fill_empty_shards(vectors, shard_of, centres)
    return shard_of


def merge_topk(
    scores: Sequence[np.ndarray], ids: Sequence[np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard (scores, global ids) results into the global top-``k``, best first.

    Missing results (faiss pads with id -1) are dropped; the output is padded back to ``k``
    with score -inf and id -1 when fewer than ``k`` were found.
    """
    all_scores = np.concatenate([np.ravel(s) for s in scores]) if scores else np.empty(0)
    all_ids = np.concatenate([np.ravel(i) for i in ids]) if ids else np.empty(0, np.int64)
    keep = all_ids >= 0
    all_scores, all_ids = all_scores[keep], all_ids[keep]
    order = np.argsort(-all_scores, kind="stable")[:k]
    pad = k - len(order)
    top_scores = np.concatenate([all_scores[order], np.full(pad, -np.inf)]).astype(np.float32)
    top_ids = np.concatenate([all_ids[order], np.full(pad, -1)]).astype(np.int64)
    return top_scores, top_ids


def _flat_index(x: np.ndarray) -> faiss.Index:
    import faiss

    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    return index


def _ivf_index(x: np.ndarray, nlist: int | None = None, nprobe: int = 8) -> faiss.Index:
    """IVFFlat by inner product; ``nlist`` defaults to about sqrt(shard size)."""
    import faiss

    nlist = nlist if nlist is not None else max(1, round(math.sqrt(len(x))))
    if not 1 <= nlist <= len(x):
        raise ValueError(f"nlist must be in [1, {len(x)}] (the shard size), got {nlist}")
    quantizer = faiss.IndexFlatIP(x.shape[1])
    index = faiss.IndexIVFFlat(quantizer, x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(x)
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    return index


def _hnsw_index(x: np.ndarray, M: int = 32, efSearch: int = 64) -> faiss.Index:
    import faiss

    index = faiss.IndexHNSWFlat(x.shape[1], M, faiss.METRIC_INNER_PRODUCT)
    index.add(x)
    index.hnsw.efSearch = efSearch
    return index


_INDEX_BUILDERS: dict[str, Callable[..., faiss.Index]] = {
    "flat": _flat_index,
    "ivf": _ivf_index,
    "hnsw": _hnsw_index,
}


class Corpus:
    """Normalised vectors split into shards, a query pool, and its exact-recall tables.

    Arrays (all read-only): ``vectors`` (n, dim) float32; ``shard_of`` (n,) int32;
    ``centroids`` (n_shards, dim) float32, the normalised mean of each shard; ``shard_sizes``
    (n_shards,) int64; ``queries`` (q, dim) float32; ``ground_truth`` (q, k) int64, exact
    top-k ids by inner product over the whole corpus; ``gt_shard_counts`` (q, n_shards) int64,
    how many of each query's true top-k live in each shard; ``relevance`` (q, n_shards)
    float32, cosine of each query to each shard centroid; ``gold`` (q,) int64 or None;
    ``query_topics`` (q,) int64 or None, the mixture topic each query was drawn from.
    """

    def __init__(
        self,
        vectors: np.ndarray,
        shard_of: np.ndarray,
        queries: np.ndarray,
        k: int,
        n_shards: int,
        gold: np.ndarray | None = None,
        query_topics: np.ndarray | None = None,
    ) -> None:
        """Wrap an already-normalised, already-sharded corpus (copied) and derive its tables."""
        self.vectors = _frozen(vectors, np.float32)
        self.queries = _frozen(queries, np.float32)
        self.shard_of = _frozen(shard_of, np.int32)
        self.gold = None if gold is None else _frozen(gold, np.int64)
        self.query_topics = None if query_topics is None else _frozen(query_topics, np.int64)
        self.k, self.n_shards = k, n_shards
        self.dim = _check_shapes(self.vectors, self.shard_of, self.queries, k, n_shards, self.gold)
        self.shard_sizes = _frozen(np.bincount(self.shard_of, minlength=n_shards), np.int64)
        self.centroids = _frozen(self._shard_means(), np.float32)
        self.ground_truth = _frozen(_nearest(self.vectors, self.queries, k)[1], np.int64)
        self._gt_shards = _frozen(self.shard_of[self.ground_truth], np.int32)
        self.gt_shard_counts = _frozen(self._count_gt_per_shard(), np.int64)
        self.relevance = _frozen(self.queries @ self.centroids.T, np.float32)
        self._count_rows: list[list[int]] = self.gt_shard_counts.tolist()

    def _shard_means(self) -> np.ndarray:
        """Normalised mean vector of each shard (summed in float64, in a fixed order)."""
        order = np.argsort(self.shard_of, kind="stable")
        starts = np.concatenate([[0], np.cumsum(self.shard_sizes)[:-1]])
        sums = np.add.reduceat(self.vectors[order].astype(np.float64), starts, axis=0)
        return _normalise(sums, "shard means")

    def _count_gt_per_shard(self) -> np.ndarray:
        q = len(self.queries)
        flat = (np.arange(q)[:, None] * self.n_shards + self._gt_shards).ravel()
        return np.bincount(flat, minlength=q * self.n_shards).reshape(q, self.n_shards)

    @classmethod
    def from_embeddings(
        cls,
        vectors: np.ndarray,
        queries: np.ndarray,
        n_shards: int,
        k: int,
        rng: np.random.Generator,
        kmeans_iters: int = 20,
        gold: np.ndarray | None = None,
        query_topics: np.ndarray | None = None,
    ) -> Corpus:
        """Normalise embeddings, shard them by spherical k-means and build the tables.

        The path for any embedded corpus, synthetic or real (``gold``: optional (q,) ids of
        each query's gold document; ``query_topics``: optional (q,) topic of each query).
        Deterministic for the same inputs and rng state.
        """
        vectors = _normalise(vectors, "vectors")
        queries = _normalise(queries, "queries")
        shard_of = kmeans_shards(vectors, n_shards, rng, kmeans_iters)
        return cls(vectors, shard_of, queries, k, n_shards, gold, query_topics)

    def recall_at_k(self, query: int, shards: Iterable[int]) -> float:
        """Recall@k of ``query`` when exactly ``shards`` are searched with flat (exact) search.

        Exact, not an estimate: a true top-k neighbour inside the searched shards is outranked
        only by vectors that are themselves in the global top-k, so it is always in the top-k
        of the searched subset; the recall is the share of true neighbours in those shards.
        Repeated shard ids count once.
        """
        row = self._count_rows[query]
        return sum(map(row.__getitem__, set(shards))) / self.k

    def recall_for_mask(self, query: int, mask: np.ndarray) -> float:
        """:meth:`recall_at_k` for a boolean (n_shards,) mask of searched shards."""
        return np.count_nonzero(mask[self._gt_shards[query]]) / self.k

    def build_shard_index(
        self, shard: int, kind: str = "flat", **params: int
    ) -> tuple[faiss.Index, np.ndarray]:
        """A real faiss index over one shard and the global id of each of its rows.

        ``kind``: "flat" (IndexFlatIP), "ivf" (IndexIVFFlat; ``nlist``, ``nprobe``) or "hnsw"
        (IndexHNSWFlat; ``M``, ``efSearch``). Built on one thread, so it is reproducible.
        """
        if kind not in _INDEX_BUILDERS:
            raise ValueError(f"kind must be one of {sorted(_INDEX_BUILDERS)}, got {kind!r}")
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard must be in [0, {self.n_shards}), got {shard}")
        ids = np.flatnonzero(self.shard_of == shard).astype(np.int64)
        with _single_thread():
            index = _INDEX_BUILDERS[kind](np.ascontiguousarray(self.vectors[ids]), **params)
        return index, ids

    def search_shards(
        self,
        query_vec: np.ndarray,
        shards: Iterable[int],
        indexes: Mapping[int, tuple[faiss.Index, np.ndarray]]
        | Sequence[tuple[faiss.Index, np.ndarray]],
        k: int,
    ) -> np.ndarray:
        """Global top-``k`` ids for ``query_vec`` searching ``indexes[s]`` for each shard ``s``.

        ``indexes[s]`` is what :meth:`build_shard_index` returned; ids are padded with -1.
        """

        x = np.ascontiguousarray(np.reshape(query_vec, (1, self.dim)), dtype=np.float32)
        scores, ids = [], []
        for shard in dict.fromkeys(shards):
            index, global_ids = indexes[shard]
            shard_scores, local = index.search(x, min(k, index.ntotal))
            scores.append(shard_scores[0])
            ids.append(np.where(local[0] >= 0, global_ids[local[0]], -1))
        return merge_topk(scores, ids, k)[1]

    def fingerprint(self) -> str:
        """sha256 over the corpus arrays, so sim and live can check they built the same one."""
        digest = hashlib.sha256(f"k={self.k};n_shards={self.n_shards}".encode())
        named: dict[str, np.ndarray | None] = {
            "vectors": self.vectors,
            "shard_of": self.shard_of,
            "queries": self.queries,
        }
        named |= {"ground_truth": self.ground_truth, "gold": self.gold}
        for name, array in named.items():
            if array is not None:
                digest.update(f";{name}:{array.dtype.str}:{array.shape}".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()


def _sample_mixture(
    centres: np.ndarray, weights: np.ndarray, spread: float, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points and their topics: a topic drawn by ``weights``, its unit centre plus
    N(0, spread**2) noise.

    The noise norm is about spread * sqrt(dim). At the defaults (0.35, 64 dims) the true top-10
    have cosine ~0.4-0.5 to their query and the best shard holds ~57% of them on average.
    """
    topics = rng.choice(len(centres), size=n, p=weights)
    return centres[topics] + rng.normal(scale=spread, size=(n, centres.shape[1])), topics


def synthetic_corpus(cfg: CorpusConfig, rng: np.random.Generator) -> Corpus:
    """A seeded topic-mixture corpus, queries drawn from the same mixture, sharded by k-means.

    Topic centres are uniform on the unit sphere; topic sizes are Zipf-distributed. Structure
    matters: on uniformly random vectors recall@k says nothing (REFERENCE.md, faiss rows).
    """
    centres = _normalise(rng.standard_normal((cfg.n_topics, cfg.dim)), "topic centres")
    zipf = 1.0 / np.arange(1, cfg.n_topics + 1) ** TOPIC_ZIPF_EXPONENT
    weights = rng.permutation(zipf / zipf.sum())
    vectors, _ = _sample_mixture(centres, weights, cfg.topic_spread, cfg.n_vectors, rng)
    queries, topics = _sample_mixture(centres, weights, cfg.topic_spread, cfg.n_queries, rng)
    return Corpus.from_embeddings(
        vectors, queries, cfg.n_shards, cfg.k, rng, cfg.kmeans_iters, query_topics=topics
    )


@functools.lru_cache(maxsize=8)
def scenario_corpus(cfg: CorpusConfig) -> Corpus:
    """The synthetic corpus a scenario names, built once per process from ``cfg.seed``.

    Its arrays are read-only, so runs (and environment episodes) share it safely."""
    return synthetic_corpus(cfg, np.random.default_rng(cfg.seed))

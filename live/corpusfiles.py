"""The corpus as files on disk, written once by the runner and memory-mapped by workers.

Every worker process of one swarm reads the same arrays the simulator uses (built by
``swarmsim.corpus``), so a retriever's faiss shard is the simulator's shard, bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmsim.corpus import Corpus

ARRAYS = ("vectors", "shard_of", "queries", "ground_truth", "centroids")


@dataclass(frozen=True)
class CorpusFiles:
    """A corpus loaded back from ``write_corpus``'s directory (arrays memory-mapped)."""

    vectors: np.ndarray
    shard_of: np.ndarray
    queries: np.ndarray
    ground_truth: np.ndarray
    centroids: np.ndarray
    gold: np.ndarray | None
    k: int
    n_shards: int
    fingerprint: str
    docs: list[dict] | None  # {"title", "text"} per vector, for a real-text corpus
    questions: list[str] | None  # question text per query, for a real-text corpus

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def load(cls, directory: Path) -> CorpusFiles:
        meta = json.loads((directory / "corpus.json").read_text())
        arrays = {n: np.load(directory / f"{n}.npy", mmap_mode="r") for n in ARRAYS}
        gold_path = directory / "gold.npy"
        texts = directory / "texts.json"
        extra = json.loads(texts.read_text()) if texts.exists() else {}
        return cls(
            **arrays,
            gold=np.load(gold_path) if gold_path.exists() else None,
            k=meta["k"],
            n_shards=meta["n_shards"],
            fingerprint=meta["fingerprint"],
            docs=extra.get("docs"),
            questions=extra.get("questions"),
        )

    def shard_rows(self, shard: int) -> np.ndarray:
        """Global ids of the vectors in ``shard``."""
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard must be in [0, {self.n_shards}), got {shard}")
        return np.flatnonzero(np.asarray(self.shard_of) == shard).astype(np.int64)

    def recall(self, query: int, ids: list[int]) -> float:
        """Recall@k of retrieved ``ids`` against the exact top-k of pool query ``query``."""
        truth = set(np.asarray(self.ground_truth[query]).tolist())
        return len(truth.intersection(ids)) / self.k

    def recall_of(self, vector: np.ndarray, ids: list[int]) -> float:
        """Recall@k of retrieved ``ids`` against the exact top-k of ``vector`` over the whole
        corpus (a free-text question has no precomputed truth; one exact scan, ~1 ms for
        10^4 vectors of 384 dimensions)."""
        scores = self.vectors @ np.asarray(vector, dtype=np.float32)
        k = min(self.k, len(scores))
        truth = np.argpartition(-scores, k - 1)[:k]
        return len(set(truth.tolist()).intersection(ids)) / self.k


def write_corpus(
    corpus: Corpus,
    directory: Path,
    docs: list[dict] | None = None,
    questions: list[str] | None = None,
) -> Path:
    """Write ``corpus`` (and, for real text, its documents and questions) to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ARRAYS:
        np.save(directory / f"{name}.npy", np.asarray(getattr(corpus, name)))
    if corpus.gold is not None:
        np.save(directory / "gold.npy", np.asarray(corpus.gold))
    meta = {"k": corpus.k, "n_shards": corpus.n_shards, "fingerprint": corpus.fingerprint()}
    (directory / "corpus.json").write_text(json.dumps(meta))
    if docs is not None or questions is not None:
        (directory / "texts.json").write_text(json.dumps({"docs": docs, "questions": questions}))
    return directory

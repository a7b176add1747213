"""Layer and pipeline configuration: what each role runs, how work is dispatched and scaled,
and the stages a query passes through (read by :class:`~swarmsim.cluster.Layer` and the
simulation's stage table)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from .errors import check
from .kvcache import KVCacheConfig
from .overhead import OverheadConfig
from .service import ServiceConfig

Role = Literal["embedder", "retriever", "synthesizer", "evaluator", "planner"]
Dispatch = Literal["central", "random", "round-robin", "least-loaded"]


@dataclass(frozen=True)
class LayerConfig:
    """A layer: the replicas of one role (and model), the unit that is scaled and dispatched to."""

    role: Role
    model: str | None = None  # model profile (llm-small, llm-large, embedder, evaluator)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    dispatch: Dispatch = "least-loaded"  # central = one FIFO queue at the coordinator (M/M/c)
    batch_max: int = 1  # jobs taken into one service when the role batches
    min_replicas: int = 1  # 0 allows scaling to zero: the layer then fails its work
    max_replicas: int = 100_000
    device: Literal["gpu", "cpu"] = "gpu"  # where new replicas are placed when scaling out
    exclusive: bool | None = None  # one such replica per GPU; default: synthesizers only
    load_s: float | None = None  # seconds to load model or shard (default: from the profiles)
    overhead: OverheadConfig | None = None  # per-stage coordination delays; None: none
    kv_cache: KVCacheConfig | None = None  # a prefix cache per replica (synthesizers); None: none

    def __post_init__(self) -> None:
        check(self.batch_max >= 1, "batch_max", self.batch_max, ">= 1")
        ok = self.load_s is None or (math.isfinite(self.load_s) and self.load_s >= 0)
        check(ok, "load_s", self.load_s, "a number >= 0 or null")
        check(self.min_replicas >= 0, "min_replicas", self.min_replicas, ">= 0")
        check(
            self.max_replicas >= self.min_replicas,
            "max_replicas",
            self.max_replicas,
            f">= min_replicas ({self.min_replicas})",
        )
        ok = self.kv_cache is None or self.role == "synthesizer"
        check(ok, "kv_cache", "...", "a prefix cache on a synthesizer layer only")
        if self.service.kind == "profile" and self.role in ("synthesizer", "embedder"):
            check(self.model is not None, "model", self.model, f"a model profile for {self.role}")


@dataclass(frozen=True)
class StageConfig:
    """One step of the pipeline: served by ``layer``, or by the layer matching the query's model."""

    layer: str | None = None
    layer_by_model: dict[str, str] | None = None  # query-class model tier -> layer

    def __post_init__(self) -> None:
        check(
            (self.layer is None) != (self.layer_by_model is None),
            "layer",
            self.layer,
            "exactly one of layer or layer_by_model",
        )

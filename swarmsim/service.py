"""Service-time models: how long an agent takes for a batch of work, by role and device.

Figures come from ``data/hardware.yaml`` and, for synthesizer precision and batching,
``data/inference.yaml`` (each with its source). Retrieval cost is the
number of vector-dimensions an index touches times the device's scan cost, with the index
shapes of REFERENCE.md: flat scans the shard; IVF scans ``nlist`` centroids plus
``nprobe/nlist`` of the shard; HNSW visits ``HNSW_VISITS * efSearch * log2(n)`` vectors,
a constant fitted to REFERENCE.md's measurement (efSearch 64, 100 k vectors, d=384:
~1.3 k queries/s against flat's 144/s on the same core).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .errors import check
from .inference import InferenceProfile, load_inference
from .rng import Stream

if TYPE_CHECKING:
    from .cluster import Agent
    from .profiles import DeviceProfile
    from .query import Job

HNSW_VISITS = 10.5  # fitted: 0.77 ms / (64 * log2(1e5) * 384 dims * 0.18 ns)
SEARCH_OVERHEAD_S = 50e-6  # per query: request decode, heap merge, reply (assumption)


@dataclass(frozen=True)
class ServiceConfig:
    """How long one unit of work takes. ``profile`` uses the device and model profiles, as
    ``base_s + scale * profile time`` (``swarmsim calibrate`` fits both to a recording);
    ``fitted`` is a linear model for roles without a profile: ``base_s + sum over the batch's
    jobs of (per_item_s + per_input_token_s * input tokens + per_output_token_s * output
    tokens)``. Both are multiplied by a log-normal residual of mean 1 and log-sd
    ``residual_sigma``."""

    kind: Literal["profile", "exponential", "deterministic", "fitted"] = "profile"
    rate: float | None = None  # jobs/s for exponential (mean 1/rate) and deterministic
    scale: float = 1.0  # profile: multiplies the profile's time
    base_s: float = 0.0  # profile and fitted: per service (batch)
    per_item_s: float = 0.0  # fitted: per job in the batch
    per_input_token_s: float = 0.0
    per_output_token_s: float = 0.0
    residual_sigma: float = 0.0  # fitted: log-sd of the multiplicative residual

    def __post_init__(self) -> None:
        if self.kind in ("exponential", "deterministic"):
            check(self.rate is not None and self.rate > 0, "rate", self.rate, "a rate > 0")
        for name in ("scale", "base_s", "per_item_s", "per_input_token_s", "per_output_token_s",
                     "residual_sigma"):  # fmt: skip
            value = getattr(self, name)
            check(math.isfinite(value) and value >= 0, name, value, "a number >= 0")


@dataclass(frozen=True)
class RetrievalConfig:
    """The modelled index: its size sets search cost; recall comes from the simulated corpus."""

    index: Literal["flat", "ivf", "hnsw"] = "flat"
    vectors_total: int = 1_000_000  # modelled corpus size, split over the shards
    # relative shard sizes, one per corpus shard (shard s holds vectors_total * w[s] / sum(w));
    # empty: equal shards
    shard_weights: tuple[float, ...] = ()
    dim: int = 384
    nlist: int = 1024
    nprobe: int = 8
    hnsw_m: int = 32
    ef_search: int = 64

    def __post_init__(self) -> None:
        for name in ("vectors_total", "dim", "nlist", "nprobe", "hnsw_m", "ef_search"):
            check(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        for i, w in enumerate(self.shard_weights):
            check(math.isfinite(w) and w > 0, f"shard_weights[{i}]", w, "a number > 0")

    def shard_vectors(self, n_shards: int) -> list[int]:
        """The modelled vectors in each of ``n_shards`` shards."""
        if not self.shard_weights:
            return [self.vectors_total // max(n_shards, 1)] * n_shards
        total = sum(self.shard_weights)
        return [int(self.vectors_total * w / total) for w in self.shard_weights]


def retrieval_seconds(cfg: RetrievalConfig, shard_vectors: int, scan_ns_per_dim: float) -> float:
    """Seconds for one query against one shard of ``shard_vectors`` vectors."""
    n = max(shard_vectors, 1)
    scanned: float
    if cfg.index == "flat":
        scanned = n
    elif cfg.index == "ivf":
        scanned = cfg.nlist + n * min(cfg.nprobe, cfg.nlist) / cfg.nlist
    else:
        scanned = HNSW_VISITS * cfg.ef_search * math.log2(max(n, 2))
    return SEARCH_OVERHEAD_S + scanned * cfg.dim * scan_ns_per_dim * 1e-9


class ServiceModel:
    """Draws the service time of a batch for an agent, deterministic per seed."""

    def __init__(
        self,
        retrieval: RetrievalConfig,
        n_shards: int,
        stream: Stream,
        inference: InferenceProfile | None = None,
        training_slowdown: float = 1.0,
    ) -> None:
        self.retrieval = retrieval
        self.shard_vectors = retrieval.shard_vectors(n_shards)
        self.equal_shards = not retrieval.shard_weights
        self.stream = stream
        self.inference = inference or load_inference()
        self.training_slowdown = training_slowdown  # on a GPU a training job holds
        self._search_s: dict[tuple[str, int], float] = {}  # by (device profile, shard)

    def seconds(self, agent: Agent, batch: Sequence[Job]) -> float:
        """Service time of ``batch`` (work of one layer) on ``agent``'s device, slower while a
        background training job shares the device (``swarmsim.training``)."""
        t = self._seconds(agent, batch)
        return t * self.training_slowdown if agent.device.training else t

    def _seconds(self, agent: Agent, batch: Sequence[Job]) -> float:
        svc: ServiceConfig = batch[0].layer.cfg.service
        if svc.kind == "exponential":
            assert svc.rate is not None  # ServiceConfig requires a rate for this kind
            return self.stream.exponential(1.0 / svc.rate)
        if svc.kind == "deterministic":
            assert svc.rate is not None
            return 1.0 / svc.rate
        if svc.kind == "fitted":
            return self._residual(svc, self._fitted_seconds(svc, batch))
        t = self._profile_seconds(agent, batch)
        if svc.scale != 1.0 or svc.base_s or svc.residual_sigma:  # a calibrated profile
            return self._residual(svc, svc.base_s + svc.scale * t)
        return t

    def prefill_seconds(self, agent: Agent, batch: Sequence[Job]) -> float | None:
        """Seconds of a synthesizer batch's prefill (its uncached prompt tokens), where its
        first tokens appear; None for a service without a device profile."""
        head = batch[0]
        svc: ServiceConfig = head.layer.cfg.service
        perf = agent.device.profile.llm.get(head.layer.cfg.model or "")
        if svc.kind != "profile" or perf is None:
            return None
        speed = perf.prefill_tok_s  # at the reference precision (factor 1.0)
        if head.strategy is not None:
            speed *= self.inference.precision(head.strategy.precision).prefill
        return svc.scale * sum(w.query.input_tokens - w.cached for w in batch) / speed

    def _residual(self, svc: ServiceConfig, t: float) -> float:
        """``t`` times a log-normal draw of mean 1 (median exp(-sigma^2 / 2))."""
        if svc.residual_sigma > 0:
            t *= self.stream.lognormal(math.exp(-(svc.residual_sigma**2) / 2), svc.residual_sigma)
        return t

    def _fitted_seconds(self, svc: ServiceConfig, batch: Sequence[Job]) -> float:
        return svc.base_s + sum(
            svc.per_item_s
            + svc.per_input_token_s * w.query.input_tokens
            + svc.per_output_token_s * w.query.output_tokens
            for w in batch
        )

    def _profile_seconds(self, agent: Agent, batch: Sequence[Job]) -> float:
        prof = agent.device.profile
        layer = batch[0].layer
        role = layer.role
        if role == "embedder":
            return prof.embed_base_s + prof.embed_per_item_s * len(batch)
        if role == "retriever":
            if self.equal_shards:
                return self._search_seconds(prof, 0) * len(batch)
            return sum(self._search_seconds(prof, job.shard) for job in batch)
        if role == "synthesizer":
            head, model = batch[0], layer.cfg.model
            assert model is not None  # LayerConfig requires one for a profiled synthesizer
            if len(batch) == 1 and head.strategy is None:  # the common case, kept cheap
                q = head.query
                return prof.synth_seconds(model, q.input_tokens - head.cached, q.output_tokens)
            inf = self.inference
            precision = inf.reference if head.strategy is None else head.strategy.precision
            return inf.batch_seconds(prof, model, batch, precision)
        if role == "evaluator":
            return prof.eval_s * len(batch)
        raise ValueError(f"role {role!r} has no service-time model; give the layer a service")

    def _search_seconds(self, prof: DeviceProfile, shard: int) -> float:
        """One query's search of ``shard`` on a ``prof`` device (cached: it never changes)."""
        key = (prof.name, shard)
        t = self._search_s.get(key)
        if t is None:
            n = self.shard_vectors[shard] if self.shard_vectors else 0
            t = retrieval_seconds(self.retrieval, n, prof.scan_ns_per_dim)
            self._search_s[key] = t
        return t

"""Background fine-tuning on the serving GPUs: jobs arrive, hold GPUs for a while, and leave.

The design's third document runs a LoRA / RLHF loop on the same machines that serve. A job
arrives as a Poisson process, takes ``gpus`` GPUs drawn uniformly among the free GPUs of the
allowed node groups (nodes up and not failed), holds them for an exponential time and
releases them; a job that finds too few free GPUs is turned away (counted, not queued). A
replica whose GPU hosts a job serves ``slowdown`` times slower (see ``ServiceModel``); the
factor is fixed when a batch starts. Training memory is not modelled: a job slows serving
but never keeps a model from loading.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import simpy

from .errors import check

if TYPE_CHECKING:
    from .cluster import Cluster, Device
    from .rng import Stream


@dataclass(frozen=True)
class TrainingConfig:
    """Background training jobs sharing GPUs with serving; off unless ``interarrival_s`` is set."""

    interarrival_s: float | None = None  # mean seconds between job arrivals; None: no jobs
    duration_s: float = 1800.0  # mean seconds a job holds its GPUs (exponential)
    gpus: int = 1  # GPUs each job holds
    groups: tuple[str, ...] = ()  # node groups whose GPUs jobs may take; empty: every group
    # Service-time factor on a GPU shared with a job. Assumption: two busy CUDA contexts
    # time-slice one GPU (no MPS / MIG), so each gets about half of it.
    slowdown: float = 2.0

    def __post_init__(self) -> None:
        ia = self.interarrival_s
        check(ia is None or (math.isfinite(ia) and ia > 0), "interarrival_s", ia, "> 0 or null")
        check(self.duration_s > 0, "duration_s", self.duration_s, "> 0")
        check(self.gpus >= 1, "gpus", self.gpus, ">= 1")
        check(self.slowdown >= 1, "slowdown", self.slowdown, ">= 1")

    @property
    def enabled(self) -> bool:
        return self.interarrival_s is not None


class Training:
    """Starts the training-job arrivals; marks each held GPU's ``Device.training``."""

    def __init__(
        self, env: simpy.Environment, cfg: TrainingConfig, stream: Stream, cluster: Cluster
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.stream = stream
        allowed = set(cfg.groups)
        self.gpus: list[Device] = [
            d
            for node in cluster.nodes
            if not allowed or node.group.name in allowed
            for d in node.devices
            if d.is_gpu
        ]
        self.started = 0  # jobs that took their GPUs
        self.turned_away = 0  # jobs that found fewer than ``gpus`` free GPUs
        self.log: list[tuple[float, str, tuple[int, ...]]] = []  # (time, start/end, GPU indices)
        if cfg.interarrival_s is not None:
            env.process(self._arrivals(cfg.interarrival_s))

    def _arrivals(self, interarrival_s: float) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.env.timeout(self.stream.exponential(interarrival_s))
            free = [i for i, d in enumerate(self.gpus) if self._free(d)]
            if len(free) < self.cfg.gpus:
                self.turned_away += 1
                continue
            self.env.process(self._job(self._pick(free)))

    def _free(self, device: Device) -> bool:
        node = device.node
        return not device.training and node.up and not node.failed

    def _pick(self, free: list[int]) -> tuple[int, ...]:
        """``cfg.gpus`` of the ``free`` indices, uniformly (a partial Fisher-Yates shuffle)."""
        for i in range(self.cfg.gpus):
            j = i + self.stream.randrange(len(free) - i)
            free[i], free[j] = free[j], free[i]
        return tuple(sorted(free[: self.cfg.gpus]))

    def _job(self, held: tuple[int, ...]) -> Generator[simpy.Event, None, None]:
        self.started += 1
        self._mark(held, True)
        yield self.env.timeout(self.stream.exponential(self.cfg.duration_s))
        self._mark(held, False)

    def _mark(self, held: tuple[int, ...], on: bool) -> None:
        for i in held:
            self.gpus[i].training = on
        self.log.append((self.env.now, "start" if on else "end", held))

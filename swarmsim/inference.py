"""Inference strategies: how a synthesizer serves one query (weight precision, batch size).

A strategy is chosen per query when it reaches its synthesizer stage (``Simulation.configure``).
Precision scales the device's prefill and decode speeds and the answer's quality; the batch
size caps the synthesizer batch the query opens or joins. Figures come from
``data/inference.yaml`` (each with its source). A synthesizer batch of ``B`` queries takes the
prefill of all their prompts plus the decode of the longest answer at ``B`` sequences per step.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import read_document
from .errors import ConfigError, UnknownNameError
from .profiles import _figure, _known_keys, _mapping

if TYPE_CHECKING:
    from .profiles import DeviceProfile
    from .query import Job

PRECISIONS = ("fp16", "int8", "int4")  # the precisions data/inference.yaml must describe
REFERENCE = "int4"  # the precision of hardware.yaml's LLM speeds (llama.cpp Q4_0)


@dataclass(frozen=True)
class InferenceStrategy:
    """How a synthesizer serves a query: batch size cap and weight precision.

    ``batch_size=None`` keeps the layer's ``batch_max`` (the scenario's batch size)."""

    batch_size: int | None = None
    precision: str = REFERENCE

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    @property
    def label(self) -> str:
        """Short name, e.g. ``int8`` or ``int4-b4``."""
        return self.precision if self.batch_size is None else f"{self.precision}-b{self.batch_size}"


@dataclass(frozen=True)
class Precision:
    """Speed factors (x the reference precision's tokens/s) and answer-quality factor."""

    prefill: float
    decode: float
    quality: float


@dataclass(frozen=True)
class InferenceProfile:
    """Per-precision factors, the batched-decode step-time table, and their sources."""

    reference: str
    precisions: dict[str, Precision]
    batched_decode: tuple[tuple[int, float], ...]  # (batch size, step time / step time at 1)
    sources: dict[str, str]

    def precision(self, name: str) -> Precision:
        """The factors of precision ``name``; UnknownNameError suggests the nearest."""
        try:
            return self.precisions[name]
        except KeyError:
            raise UnknownNameError("precision", name, self.precisions) from None

    def step_factor(self, batch: int) -> float:
        """Decode step time for ``batch`` sequences relative to one (linear between rows)."""
        rows = self.batched_decode
        if batch <= rows[0][0]:
            return rows[0][1]
        for (b0, f0), (b1, f1) in itertools.pairwise(rows):
            if batch <= b1:
                return f0 + (f1 - f0) * (batch - b0) / (b1 - b0)
        return rows[-1][1]

    def batch_seconds(
        self, device: DeviceProfile, model: str, batch: Sequence[Job], precision: str
    ) -> float:
        """Seconds for ``device`` to serve ``batch`` with ``model`` at ``precision``."""
        if len(batch) == 1 and precision == self.reference:
            q = batch[0].query
            return device.synth_seconds(model, q.input_tokens - batch[0].cached, q.output_tokens)
        perf, f = device.llm.get(model), self.precision(precision)
        if perf is None:
            return device.synth_seconds(model, 0, 0)  # raises: the model is not on the device
        uncached = sum(w.query.input_tokens - w.cached for w in batch)
        prefill = uncached / (perf.prefill_tok_s * f.prefill)
        longest = max(w.query.output_tokens for w in batch)
        return prefill + longest / (perf.decode_tok_s * f.decode) * self.step_factor(len(batch))


def load_inference(path: Path | None = None) -> InferenceProfile:
    """Load and validate ``path``, or the packaged ``data/inference.yaml`` (cached)."""
    if path is None:
        return _packaged()
    return _parse(Path(path))


@functools.cache
def _packaged() -> InferenceProfile:
    return _parse(importlib.resources.files("swarmsim").joinpath("data/inference.yaml"))


def _parse(path: Path | Traversable) -> InferenceProfile:
    data = read_document(path, what="inference profile")
    try:
        return _profile(data)
    except ConfigError as err:
        raise err.in_file(str(path)) from None


def _profile(data: Any) -> InferenceProfile:
    data = _mapping(data, "(top)")
    _known_keys(data, ("reference", "precisions", "batched_decode"), "")
    sources: dict[str, str] = {}
    table = _mapping(data.get("precisions"), "precisions")
    if sorted(table) != sorted(PRECISIONS):
        raise ConfigError("precisions", sorted(table), f"exactly {list(PRECISIONS)}")
    precisions = {str(n): _precision(str(n), d, sources) for n, d in table.items()}
    reference = data.get("reference")
    ref = precisions[REFERENCE]  # present: the table holds exactly PRECISIONS
    if reference != REFERENCE or (ref.prefill, ref.decode) != (1.0, 1.0):
        raise ConfigError("reference", reference, f"{REFERENCE!r}, with prefill and decode 1.0")
    steps = _mapping(data.get("batched_decode"), "batched_decode")
    rows = sorted((int(b), _figure(steps, b, "batched_decode", sources, f"b{b}")) for b in steps)
    if not rows or rows[0] != (1, 1.0):
        raise ConfigError("batched_decode", rows[:1], "a first row 1: {value: 1.0, ...}")
    return InferenceProfile(reference, precisions, tuple(rows), sources)


def _precision(name: str, data: Any, sources: dict[str, str]) -> Precision:
    path = f"precisions.{name}"
    data = _mapping(data, path)
    _known_keys(data, ("prefill", "decode", "quality"), path)
    keys = ("prefill", "decode", "quality")
    return Precision(*(_figure(data, k, path, sources, f"{name}.{k}") for k in keys))

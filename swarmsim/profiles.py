"""Per-device performance figures, each with its source, loaded from ``data/hardware.yaml``.

Every figure in the file is ``{value: X, source: "..."}``; loading checks that each value is a
positive number and each source is non-empty, and reports problems as
:class:`~swarmsim.errors.ConfigError` naming the dotted path
(``devices.l4.llm.llm-small.decode_tok_s``).
"""

from __future__ import annotations

import functools
import importlib.resources
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Literal, get_args

from .config import read_document
from .errors import ConfigError, UnknownNameError

Kind = Literal["gpu", "cpu", "accelerator"]
_KINDS = get_args(Kind)
_DEVICE_FIGURES = (
    "vram_gb",
    "price_per_hour",
    "embed_base_s",
    "embed_per_item_s",
    "scan_ns_per_dim",
    "eval_s",
)
_LLM_FIGURES = ("prefill_tok_s", "decode_tok_s")
_MODEL_FIGURES = ("params_b", "vram_gb")


@dataclass(frozen=True)
class LLMPerf:
    """Single-request prompt-processing and generation speeds, tokens per second."""

    prefill_tok_s: float
    decode_tok_s: float


@dataclass(frozen=True)
class DeviceProfile:
    """One device's figures.

    ``sources`` maps each field name (and ``llm.<model>.<figure>``) to its source text.
    """

    name: str
    kind: Kind
    vram_gb: float
    price_per_hour: float
    embed_base_s: float
    embed_per_item_s: float
    scan_ns_per_dim: float
    eval_s: float
    llm: dict[str, LLMPerf]
    sources: dict[str, str]

    def synth_seconds(self, model: str, input_tokens: int, output_tokens: int) -> float:
        """Seconds to prefill ``input_tokens`` and generate ``output_tokens`` with ``model``."""
        perf = self.llm.get(model)
        if perf is None:
            available = ", ".join(sorted(self.llm)) or "none"
            raise ValueError(
                f"model {model!r} is not available on device {self.name!r} (available: {available})"
            )
        if input_tokens < 0 or output_tokens < 0:
            raise ValueError(f"token counts must be >= 0, got {input_tokens}, {output_tokens}")
        return input_tokens / perf.prefill_tok_s + output_tokens / perf.decode_tok_s


@dataclass(frozen=True)
class ModelProfile:
    """A model's size and memory need; ``describes`` names the concrete model it stands for."""

    name: str
    params_b: float
    vram_gb: float
    describes: str
    sources: dict[str, str]
    kv_bytes_per_token: float | None = None  # KV-cache bytes per token (LLMs, for prefix caches)


@dataclass(frozen=True)
class Profiles:
    """All devices and models, plus defaults (``load_gbps``: disk-to-memory GB/s)."""

    load_gbps: float
    devices: dict[str, DeviceProfile]
    models: dict[str, ModelProfile]
    sources: dict[str, str]

    def device(self, name: str) -> DeviceProfile:
        """The device called ``name``; UnknownNameError suggests the nearest names."""
        try:
            return self.devices[name]
        except KeyError:
            raise UnknownNameError("device", name, self.devices) from None

    def model(self, name: str) -> ModelProfile:
        """The model called ``name``; UnknownNameError suggests the nearest names."""
        try:
            return self.models[name]
        except KeyError:
            raise UnknownNameError("model", name, self.models) from None


def load_profiles(path: Path | None = None) -> Profiles:
    """Load and validate profiles from ``path``, or the packaged ``hardware.yaml`` (cached)."""
    if path is None:
        return _packaged()
    return _parse(Path(path))


@functools.cache
def _packaged() -> Profiles:
    return _parse(importlib.resources.files("swarmsim").joinpath("data/hardware.yaml"))


def _parse(path: Path | Traversable) -> Profiles:
    data = read_document(path, what="hardware profiles")
    try:
        return _profiles(data)
    except ConfigError as err:
        raise err.in_file(str(path)) from None


def _profiles(data: Any) -> Profiles:
    data = _mapping(data, "(top)")
    _known_keys(data, ("defaults", "devices", "models"), "")
    sources: dict[str, str] = {}
    defaults = _mapping(data.get("defaults"), "defaults")
    _known_keys(defaults, ("load_gbps",), "defaults")
    load_gbps = _figure(defaults, "load_gbps", "defaults", sources, "load_gbps")
    models_data = _mapping(data.get("models"), "models")
    models = {str(n): _model(str(n), d, f"models.{n}") for n, d in models_data.items()}
    devices_data = _mapping(data.get("devices"), "devices")
    devices = {str(n): _device(str(n), d, f"devices.{n}", models) for n, d in devices_data.items()}
    return Profiles(load_gbps=load_gbps, devices=devices, models=models, sources=sources)


def _model(name: str, data: Any, path: str) -> ModelProfile:
    data = _mapping(data, path)
    _known_keys(data, (*_MODEL_FIGURES, "describes", "kv_bytes_per_token"), path)
    describes = data.get("describes")
    if not isinstance(describes, str) or not describes.strip():
        raise ConfigError(f"{path}.describes", describes, "a non-empty description")
    sources: dict[str, str] = {}
    figures = {key: _figure(data, key, path, sources, key) for key in _MODEL_FIGURES}
    if "kv_bytes_per_token" in data:
        key = "kv_bytes_per_token"
        figures[key] = _figure(data, key, path, sources, key)
    return ModelProfile(name=name, describes=describes.strip(), sources=sources, **figures)


def _device(name: str, data: Any, path: str, models: Mapping[str, ModelProfile]) -> DeviceProfile:
    data = _mapping(data, path)
    _known_keys(data, ("kind", *_DEVICE_FIGURES, "llm"), path)
    kind = data.get("kind")
    if kind not in _KINDS:
        raise ConfigError(f"{path}.kind", kind, f"one of {list(_KINDS)}")
    sources: dict[str, str] = {}
    figures = {key: _figure(data, key, path, sources, key) for key in _DEVICE_FIGURES}
    llm_data = _mapping(data.get("llm", {}), f"{path}.llm")
    llm = {
        str(model): _llm(str(model), perf, f"{path}.llm.{model}", sources, models)
        for model, perf in llm_data.items()
    }
    for model in llm:
        if models[model].vram_gb > figures["vram_gb"]:
            raise ConfigError(
                f"{path}.llm.{model}", model, f"a model that fits {figures['vram_gb']} GB"
            )
    return DeviceProfile(name=name, kind=kind, llm=llm, sources=sources, **figures)


def _llm(
    model: str, data: Any, path: str, sources: dict[str, str], models: Mapping[str, ModelProfile]
) -> LLMPerf:
    if model not in models:
        raise ConfigError(path, model, f"a model defined under models ({', '.join(models)})")
    data = _mapping(data, path)
    _known_keys(data, _LLM_FIGURES, path)
    values = {key: _figure(data, key, path, sources, f"llm.{model}.{key}") for key in _LLM_FIGURES}
    return LLMPerf(**values)


def _figure(
    data: Mapping[str, Any], key: str, path: str, sources: dict[str, str], label: str
) -> float:
    """Read ``data[key]`` as ``{value, source}``, record its source under ``label``."""
    field = f"{path}.{key}"
    if key not in data:
        raise ConfigError(field, None, "a figure {value: ..., source: ...}")
    figure = _mapping(data[key], field)
    _known_keys(figure, ("value", "source"), field)
    value, source = figure.get("value"), figure.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ConfigError(field, source, "a non-empty source")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(field, value, "a positive number as its value")
    sources[label] = source.strip()
    return float(value)


def _mapping(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(path, data, "a mapping")
    return data


def _known_keys(data: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    for key in data:
        if key not in allowed:
            field = f"{path}.{key}" if path else str(key)
            raise ConfigError(field, key, f"one of {sorted(allowed)}")

"""The ``manifest.json`` document: frozen dataclasses read with ``swarmsim.config.build``,
and the JSON form of spaces.

These hold the JSON's shape and types only (build names the dotted field of any mismatch);
what the values must mean together (sizes, spaces, algorithm and network) is checked when
``controllers.manifest`` turns a Document into a Manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from gymnasium import spaces

from .export import Algorithm, Network

FormatVersion = Literal[1]
WeightsFile = Literal["weights.safetensors"]
FORMAT_VERSION: int = get_args(FormatVersion)[0]
WEIGHTS: str = get_args(WeightsFile)[0]
MANIFEST = "manifest.json"
Array = np.ndarray[Any, np.dtype[Any]]

# A Box bound: a number (or "inf"/"-inf") for a uniform bound, else a flat list of them.
Bound = float | str | tuple[float | str, ...]


@dataclass(frozen=True)
class TaskRef:
    """The Task the policy was trained for: its registry name, Gymnasium id and version."""

    name: str
    env_id: str
    version: int


@dataclass(frozen=True)
class SpaceDoc:
    """A Box (``shape``, ``dtype``, ``low``, ``high``), MultiDiscrete (``nvec``) or Discrete
    (``n``) space; which fields a ``type`` requires is checked when the space is rebuilt."""

    type: Literal["Box", "MultiDiscrete", "Discrete"]
    n: int | None = None
    nvec: tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None
    dtype: str | None = None
    low: Bound | None = None
    high: Bound | None = None


@dataclass(frozen=True)
class Normalization:
    """VecNormalize's moments and clipping. Every field is required; presence is checked with
    the sizes (``mean`` first), which need the observation space."""

    mean: tuple[float, ...] | None = None
    var: tuple[float, ...] | None = None
    clip: float | None = None
    epsilon: float | None = None


@dataclass(frozen=True)
class SeenRange:
    """The per-feature min and max of the observations seen in training."""

    min: tuple[float, ...]
    max: tuple[float, ...]


@dataclass(frozen=True)
class WeightsRef:
    """The weights file (always ``weights.safetensors``, beside the manifest) and its sha256."""

    file: WeightsFile
    sha256: str


@dataclass(frozen=True)
class Document:
    """The whole ``manifest.json``; ``null`` normalisation or seen range means none saved."""

    format_version: FormatVersion
    task: TaskRef
    scenario: str
    algorithm: Algorithm
    train_config: dict[str, Any]
    observation_space: SpaceDoc
    action_space: SpaceDoc
    obs_normalization: Normalization | None
    obs_seen_range: SeenRange | None
    network: Network
    weights: WeightsRef
    versions: dict[str, str]


def space_to_json(space: spaces.Space[Any]) -> dict[str, Any]:
    """A Box, MultiDiscrete or Discrete space as plain JSON data."""
    if isinstance(space, spaces.Box):
        low, high = _bound(space.low), _bound(space.high)
        shape, dtype = list(space.shape), str(space.dtype)
        return {"type": "Box", "shape": shape, "dtype": dtype, "low": low, "high": high}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    raise ValueError(f"space must be a Box, MultiDiscrete or Discrete, got {space}")


def _num(x: float) -> float | str:
    return float(x) if np.isfinite(x) else ("inf" if x > 0 else "-inf")


def _bound(values: Array) -> float | str | list[float | str]:
    """A Box bound: a scalar when uniform, else a flat list; infinities as strings."""
    flat = values.reshape(-1)
    if flat.size and (flat == flat[0]).all():
        return _num(flat[0])
    return [_num(x) for x in flat]

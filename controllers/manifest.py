"""The manifest of a policy artifact: what made the policy, its spaces and network layout.

``parse`` builds the JSON into a ``schema.Document`` (types, field by field) and then checks
what the values must mean together; every failure is an ArtifactError naming the file and
the dotted field. ``Manifest.to_json`` writes what ``parse`` reads.
"""

from __future__ import annotations

import dataclasses
import reprlib
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.task import Task
from swarmsim.config import build
from swarmsim.errors import ConfigError

from .errors import ArtifactError
from .export import Algorithm, Linear, Network
from .schema import (
    FORMAT_VERSION,
    WEIGHTS,
    Array,
    Document,
    Normalization,
    SeenRange,
    SpaceDoc,
    space_to_json,
)

ActionSpace = spaces.MultiDiscrete | spaces.Discrete


@dataclasses.dataclass(frozen=True)
class ObsStats:
    """Observation statistics from training: VecNormalize's moments (``mean``/``var``, None
    for no normalisation) and the range of observations seen (used by the guardrail)."""

    mean: Array | None = None
    var: Array | None = None
    clip: float = 10.0
    epsilon: float = 1e-8
    seen_min: Array | None = None
    seen_max: Array | None = None

    @classmethod
    def from_vec_normalize(
        cls, venv: Any, seen_min: Array | None = None, seen_max: Array | None = None
    ) -> ObsStats:
        """The statistics of an SB3 ``VecNormalize`` (no moments if it leaves obs alone)."""
        if not venv.norm_obs:
            return cls(seen_min=seen_min, seen_max=seen_max)
        rms = venv.obs_rms
        return cls(rms.mean.copy(), rms.var.copy(), venv.clip_obs, venv.epsilon, seen_min, seen_max)


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of an artifact; ``source`` is the file it came from."""

    task: str
    env_id: str
    task_version: int
    observation_space: spaces.Box
    action_space: ActionSpace
    obs_stats: ObsStats
    network: Network
    algorithm: Algorithm
    train_config: dict[str, Any]
    scenario: str
    versions: dict[str, str]
    weights_sha256: str
    format_version: int = FORMAT_VERSION
    source: str = dataclasses.field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (no NaN or infinity: infinite Box bounds are "inf" strings)."""
        return {
            "format_version": self.format_version,
            "task": {"name": self.task, "env_id": self.env_id, "version": self.task_version},
            "scenario": self.scenario,
            "algorithm": self.algorithm,
            "train_config": self.train_config,
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            **_stats_to_json(self.obs_stats),
            "network": dataclasses.asdict(self.network),
            "weights": {"file": WEIGHTS, "sha256": self.weights_sha256},
            "versions": self.versions,
        }


def parse(data: Any, path: Path | str) -> Manifest:
    """The Manifest in JSON ``data`` read from ``path``, validated field by field."""
    try:
        doc = build(Document, data)
    except ConfigError as err:
        message = f"expected {err.expected}, got {reprlib.repr(err.value)}"
        raise ArtifactError(path, message, err.field) from None
    obs, act = _spaces(doc, path)
    _check_network(doc.network, obs.shape[0], int(action_nvec(act).sum()), path)
    if (doc.algorithm == "DQN") != (doc.network.kind == "q-network"):
        message = f"{doc.network.kind} does not fit {doc.algorithm}"
        raise ArtifactError(path, message, "network.kind")
    return Manifest(
        task=doc.task.name,
        env_id=doc.task.env_id,
        task_version=doc.task.version,
        observation_space=obs,
        action_space=act,
        obs_stats=_stats(doc.obs_normalization, doc.obs_seen_range, obs.shape[0], path),
        network=doc.network,
        algorithm=doc.algorithm,
        train_config=doc.train_config,
        scenario=doc.scenario,
        versions=doc.versions,
        weights_sha256=doc.weights.sha256,
        source=str(path),
    )


def check_compatible(manifest: Manifest, task: Task) -> None:
    """Raise ArtifactError unless ``manifest`` was made for ``task``: the same name, version,
    observation space and action space."""
    where = manifest.source
    if manifest.task != task.name:
        raise ArtifactError(where, f"artifact is for {manifest.task!r}, not {task.name!r}", "task")
    if manifest.task_version != task.version:
        message = f"artifact is for {task.name} v{manifest.task_version}, the task is v"
        raise ArtifactError(where, f"{message}{task.version} (meanings changed): retrain", "task")
    for name in ("observation_space", "action_space"):
        saved, wanted = getattr(manifest, name), getattr(task, name)
        if space_to_json(saved) != space_to_json(wanted):
            raise ArtifactError(where, f"artifact has {saved}, the task has {wanted}", name)


def action_nvec(space: ActionSpace) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The number of choices of each action head."""
    if isinstance(space, spaces.Discrete):
        return np.array([int(space.n)], dtype=np.int64)
    return np.asarray(space.nvec, dtype=np.int64).reshape(-1)


# --- JSON encoding ----------------------------------------------------------------------------


def _stats_to_json(stats: ObsStats) -> dict[str, dict[str, Any] | None]:
    def floats(x: Array | None) -> list[float]:
        return list(np.asarray(x, dtype=np.float64).reshape(-1).tolist())

    norm: dict[str, Any] | None = None
    seen: dict[str, Any] | None = None
    if stats.mean is not None:
        norm = {"mean": floats(stats.mean), "var": floats(stats.var)}
        norm |= {"clip": float(stats.clip), "epsilon": float(stats.epsilon)}
    if stats.seen_min is not None:
        seen = {"min": floats(stats.seen_min), "max": floats(stats.seen_max)}
    return {"obs_normalization": norm, "obs_seen_range": seen}


# --- meaning: what the typed values must be together ------------------------------------------


def _spaces(doc: Document, path: Path | str) -> tuple[spaces.Box, ActionSpace]:
    """The observation space (a 1-D Box) and the action space (discrete) of ``doc``."""
    obs = _space(doc.observation_space, "observation_space", path)
    if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
        raise ArtifactError(path, f"expected a 1-D Box, got {obs}", "observation_space")
    act = _space(doc.action_space, "action_space", path)
    if not isinstance(act, ActionSpace):
        raise ArtifactError(path, f"expected a discrete space, got {act}", "action_space")
    return obs, act


def _space(doc: SpaceDoc, field: str, path: Path | str) -> spaces.Space[Any]:
    """The gymnasium space ``doc`` describes (its ``type``'s fields present and valid)."""

    def need(name: str) -> Any:
        value = getattr(doc, name)
        if value is None:
            raise ArtifactError(path, "missing", f"{field}.{name}")
        return value

    try:
        if doc.type == "Discrete":
            return spaces.Discrete(need("n"))
        if doc.type == "MultiDiscrete":
            return spaces.MultiDiscrete(list(need("nvec")))
        shape, dtype = list(need("shape")), np.dtype(need("dtype"))
        low, high = (_unbound(need(k), shape, dtype) for k in ("low", "high"))
        return spaces.Box(low, high, dtype=dtype)
    except (TypeError, ValueError, AssertionError) as exc:
        raise ArtifactError(path, f"not a valid {doc.type} ({exc})", field) from None


def _unbound(value: Any, shape: list[int], dtype: np.dtype[Any]) -> Array:
    """A Box bound from JSON (a number or "inf"/"-inf", or a flat list of them) as an array."""
    flat = np.array([float(x) for x in value] if isinstance(value, tuple) else float(value))
    return np.broadcast_to(flat.astype(dtype), shape).copy()


def _stats(
    norm: Normalization | None, seen: SeenRange | None, size: int, path: Path | str
) -> ObsStats:
    stats = ObsStats()
    if norm is not None:
        field = "obs_normalization"
        mean, var = (_vector(getattr(norm, k), f"{field}.{k}", size, path) for k in ("mean", "var"))
        if norm.clip is None or norm.epsilon is None:
            raise ArtifactError(
                path, "missing", f"{field}.{'clip' if norm.clip is None else 'epsilon'}"
            )
        if (var < 0).any() or norm.clip <= 0 or norm.epsilon < 0:
            raise ArtifactError(path, "expected var >= 0, clip > 0, epsilon >= 0", field)
        stats = ObsStats(mean, var, norm.clip, norm.epsilon)
    if seen is not None:
        low, high = (
            _vector(getattr(seen, k), f"obs_seen_range.{k}", size, path) for k in ("min", "max")
        )
        stats = dataclasses.replace(stats, seen_min=low, seen_max=high)
    return stats


def _vector(values: tuple[float, ...] | None, field: str, size: int, path: Path | str) -> Array:
    """``values`` as ``size`` finite float64 numbers."""
    array = np.array(values or (), dtype=np.float64)
    if array.shape != (size,) or not np.isfinite(array).all():
        raise ArtifactError(path, f"expected a list of {size} finite numbers", field)
    return array


def _check_network(net: Network, size_in: int, size_out: int, path: Path | str) -> None:
    """Only an actor-critic has a critic; each layer takes what the one before gives; the
    ends fit the spaces."""
    if (net.kind == "actor-critic") != (net.value_head is not None) or (
        net.kind == "q-network" and net.value
    ):
        raise ArtifactError(path, "only an actor-critic has a critic", "network.value_head")
    if net.input_dim != size_in:
        message = f"expected {size_in}, got {net.input_dim}"
        raise ArtifactError(path, message, "network.input_dim")
    chains: list[tuple[str, tuple[Linear, ...], int]] = [
        ("policy", (*net.shared, *net.policy, net.action_head), size_out)
    ]
    if net.value_head is not None:
        chains.append(("value", (*net.shared, *net.value, net.value_head), 1))
    for name, chain, want in chains:
        size = size_in
        for layer in chain:
            if layer.n_in != size:
                message = f"{layer.weight} takes {layer.n_in}, got {size}"
                raise ArtifactError(path, message, f"network.{name}")
            size = layer.n_out
        if size != want:
            raise ArtifactError(path, f"expected {want} outputs, got {size}", f"network.{name}")

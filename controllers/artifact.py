"""Policy artifacts: a trained network saved as safetensors weights plus a JSON manifest.

Loading checks the weights' sha256 before parsing them, reads tensors with safetensors and
rebuilds the actor in numpy from the manifest: nothing is ever unpickled (SB3's ``.load()``
and ``torch.load`` are never called), and inference is a plain forward pass, cheap enough for
the per-query routing path. SB3 and torch are imported only when saving.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import reprlib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from gymnasium import spaces
from safetensors import SafetensorError

from envs.registry import make_task
from envs.task import Task
from swarmsim.errors import SwarmError

from .export import ACTIVATIONS, ALGORITHMS, KINDS, Linear, Network, export

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
LIBRARIES = ("stable-baselines3", "sb3-contrib", "torch", "numpy", "safetensors", "swarmsim")


class ArtifactError(SwarmError, ValueError):
    """A policy artifact is missing, malformed, tampered with or made for another Task."""

    def __init__(self, path: Path | str, message: str, field: str | None = None) -> None:
        self.path, self.field = str(path), field
        super().__init__(f"{path}: {field}: {message}" if field else f"{path}: {message}")


@dataclasses.dataclass(frozen=True)
class ObsStats:
    """Observation statistics from training: VecNormalize's moments (``mean``/``var``, None
    for no normalisation) and the range of observations seen (used by the guardrail)."""

    mean: np.ndarray | None = None
    var: np.ndarray | None = None
    clip: float = 10.0
    epsilon: float = 1e-8
    seen_min: np.ndarray | None = None
    seen_max: np.ndarray | None = None

    @classmethod
    def from_vec_normalize(
        cls, venv: Any, seen_min: np.ndarray | None = None, seen_max: np.ndarray | None = None
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
    action_space: spaces.MultiDiscrete | spaces.Discrete
    obs_stats: ObsStats
    network: Network
    algorithm: str
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


class Policy:
    """A saved policy's actor in numpy: normalise the observation, forward, argmax per head."""

    def __init__(self, manifest: Manifest, tensors: Mapping[str, np.ndarray]) -> None:
        self.manifest = manifest
        net, stats = manifest.network, manifest.obs_stats
        actor = (*net.shared, *net.policy, net.action_head)
        self._layers = [(tensors[x.weight].T.copy(), tensors[x.bias].copy()) for x in actor]
        self._activation = ACTIVATIONS[net.activation]
        self._std = None if stats.var is None else np.sqrt(stats.var + stats.epsilon)
        nvec = _nvec(manifest.action_space)
        starts, choices = np.cumsum(nvec) - nvec, np.arange(nvec.max())
        # The logit of each (head, choice); padding points at an appended -inf column.
        self._index = np.where(choices < nvec[:, None], starts[:, None] + choices, nvec.sum())
        # heads of one size are a plain reshape (the per-query routing path): no padding
        self._discrete = isinstance(manifest.action_space, spaces.Discrete)
        self._heads = (len(nvec), int(nvec[0])) if (nvec == nvec[0]).all() else None

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` as the network saw it in training (normalised and clipped), as float32."""
        obs, shape = np.asarray(obs, dtype=np.float32), self.manifest.observation_space.shape
        if obs.shape[-1:] != shape:
            raise ValueError(f"observation must have shape {shape}, got {obs.shape}")
        if self._std is None:
            return obs
        stats = self.manifest.obs_stats
        return np.clip((obs - stats.mean) / self._std, -stats.clip, stats.clip).astype(np.float32)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        """The action head's output for one observation or a batch: logits or Q-values."""
        x = self.normalize(obs)
        for weight, bias in self._layers[:-1]:
            x = self._activation(x @ weight + bias)
        weight, bias = self._layers[-1]
        return x @ weight + bias

    def act(self, obs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The deterministic action: each head's best logit among the choices ``mask``
        (flat, as MaskablePPO's) allows."""
        out = self.logits(obs)
        if mask is not None:
            if np.shape(mask)[-1:] != out.shape[-1:]:
                raise ValueError(f"mask must have {out.shape[-1]} entries, got {np.shape(mask)}")
            out = np.where(mask, out, -np.inf)
        if self._heads is not None:
            action = out.reshape(*out.shape[:-1], *self._heads).argmax(axis=-1)
            return action[..., 0] if self._heads[0] == 1 and self._discrete else action
        pad = np.full((*out.shape[:-1], 1), -np.inf, dtype=out.dtype)
        action = np.concatenate([out, pad], axis=-1)[..., self._index].argmax(axis=-1)
        return action[..., 0] if self._discrete else action


def save_policy(
    model: Any,
    directory: str | Path,
    *,
    task: Task | str,
    scenario: str,
    train_config: Mapping[str, Any],
    obs_stats: ObsStats | None = None,
) -> Path:
    """Export an SB3 PPO/A2C/MaskablePPO/DQN ``MlpPolicy`` model trained on ``task`` (a Task
    or its name) as an artifact directory; refuses what numpy would not reproduce exactly."""
    directory, task = Path(directory), make_task(task) if isinstance(task, str) else task
    try:
        network, tensors = export(model)
    except ValueError as err:
        raise ArtifactError(directory, str(err)) from None
    weights = safetensors.numpy.save(tensors)
    manifest = Manifest(
        task=task.name,
        env_id=task.env_id,
        task_version=task.version,
        observation_space=model.observation_space,
        action_space=model.action_space,
        obs_stats=obs_stats or ObsStats(),
        network=network,
        algorithm=type(model).__name__,
        train_config=dict(train_config),
        scenario=scenario,
        versions=_versions(),
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        source=str(directory / MANIFEST),
    )
    check_compatible(manifest, task)
    try:
        text = json.dumps(manifest.to_json(), indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise ArtifactError(directory, f"the manifest must be plain JSON ({exc})") from None
    _Reader(json.loads(text), directory / MANIFEST).manifest()  # what is written must load
    directory.mkdir(parents=True, exist_ok=True)
    (directory / WEIGHTS).write_bytes(weights)
    (directory / MANIFEST).write_text(text, encoding="utf-8")
    return directory


def load_policy(directory: str | Path) -> Policy:
    """The policy saved in ``directory``, once its manifest and weights' hash check out."""
    manifest = read_manifest(directory)
    return Policy(manifest, _read_weights(Path(directory) / WEIGHTS, manifest))


def read_manifest(directory: str | Path) -> Manifest:
    """The validated manifest of the artifact in ``directory`` (the weights are not read)."""
    path = Path(directory)
    if path.is_file():
        hint = "single files such as SB3 .zip archives are refused (loading them unpickles)"
        raise ArtifactError(path, f"not an artifact directory; {hint}: export with save_policy")
    try:
        doc = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(path / MANIFEST, "missing: not a policy artifact") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(path / MANIFEST, f"not valid JSON ({exc})") from None
    return _Reader(doc, path / MANIFEST).manifest()


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


def space_to_json(space: spaces.Space) -> dict[str, Any]:
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


def _versions() -> dict[str, str]:
    """Versions of the libraries that trained and saved the policy."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# --- JSON encoding ----------------------------------------------------------------------------


def _num(x: float) -> float | str:
    return float(x) if np.isfinite(x) else ("inf" if x > 0 else "-inf")


def _bound(values: np.ndarray) -> float | str | list[float | str]:
    """A Box bound: a scalar when uniform, else a flat list; infinities as strings."""
    flat = values.reshape(-1)
    if flat.size and (flat == flat[0]).all():
        return _num(flat[0])
    return [_num(x) for x in flat]


def _stats_to_json(stats: ObsStats) -> dict[str, Any]:
    def floats(x: np.ndarray | None) -> list[float]:
        return np.asarray(x, dtype=np.float64).reshape(-1).tolist()

    norm = seen = None
    if stats.mean is not None:
        norm = {"mean": floats(stats.mean), "var": floats(stats.var)}
        norm |= {"clip": float(stats.clip), "epsilon": float(stats.epsilon)}
    if stats.seen_min is not None:
        seen = {"min": floats(stats.seen_min), "max": floats(stats.seen_max)}
    return {"obs_normalization": norm, "obs_seen_range": seen}


# --- reading and validation -------------------------------------------------------------------


class _Reader:
    """Typed access to a manifest's JSON; every failure names the file and the dotted field."""

    def __init__(self, doc: Any, path: Path) -> None:
        self.doc, self.path = doc, path

    def fail(self, field: str, message: str) -> ArtifactError:
        return ArtifactError(self.path, message, field)

    def get(self, field: str, kind: type | tuple[type, ...], optional: bool = False) -> Any:
        """The value at ``field`` (dotted; list items by index), which must be a ``kind``."""
        value = self.doc
        for key in field.split("."):
            if isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            elif isinstance(value, dict) and key in value:
                value = value[key]
            else:
                raise self.fail(field, "missing")
        if value is None and optional:
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else [kind]))
            raise self.fail(field, f"expected {names}, got {reprlib.repr(value)}")
        return value

    def choice(self, field: str, allowed: tuple[Any, ...]) -> Any:
        value = self.get(field, type(allowed[0]))
        if value not in allowed:
            raise self.fail(field, f"expected one of {list(allowed)}, got {value!r}")
        return value

    def manifest(self) -> Manifest:
        self.choice("format_version", (FORMAT_VERSION,))
        self.choice("weights.file", (WEIGHTS,))
        obs, act = self.space("observation_space"), self.space("action_space")
        if not isinstance(obs, spaces.Box) or len(obs.shape) != 1:
            raise self.fail("observation_space", f"expected a 1-D Box, got {obs}")
        if isinstance(act, spaces.Box):
            raise self.fail("action_space", f"expected a discrete space, got {act}")
        algorithm, network = self.choice("algorithm", ALGORITHMS), self.network(obs, act)
        if (algorithm == "DQN") != (network.kind == "q-network"):
            raise self.fail("network.kind", f"{network.kind} does not fit {algorithm}")
        return Manifest(
            task=self.get("task.name", str),
            env_id=self.get("task.env_id", str),
            task_version=self.get("task.version", int),
            observation_space=obs,
            action_space=act,
            obs_stats=self.stats(obs.shape[0]),
            network=network,
            algorithm=algorithm,
            train_config=self.get("train_config", dict),
            scenario=self.get("scenario", str),
            versions=self.get("versions", dict),
            weights_sha256=self.get("weights.sha256", str),
            source=str(self.path),
        )

    def space(self, field: str) -> spaces.Space:
        kind = self.choice(f"{field}.type", ("Box", "MultiDiscrete", "Discrete"))
        try:
            if kind == "Discrete":
                return spaces.Discrete(self.get(f"{field}.n", int))
            if kind == "MultiDiscrete":
                return spaces.MultiDiscrete(self.get(f"{field}.nvec", list))
            shape, dtype = (
                self.get(f"{field}.shape", list),
                np.dtype(self.get(f"{field}.dtype", str)),
            )
            low, high = (self.get(f"{field}.{k}", (int, float, str, list)) for k in ("low", "high"))
            return spaces.Box(
                _unbound(low, shape, dtype), _unbound(high, shape, dtype), dtype=dtype
            )
        except ArtifactError:
            raise
        except (TypeError, ValueError, AssertionError) as exc:
            raise self.fail(field, f"not a valid {kind} ({exc})") from None

    def stats(self, size: int) -> ObsStats:
        norm = self.get("obs_normalization", dict, optional=True)
        seen = self.get("obs_seen_range", dict, optional=True)
        stats = ObsStats()
        if norm is not None:
            mean, var = (self.vector(f"obs_normalization.{k}", size) for k in ("mean", "var"))
            clip, eps = (
                self.get(f"obs_normalization.{k}", (int, float)) for k in ("clip", "epsilon")
            )
            if (var < 0).any() or clip <= 0 or eps < 0:
                raise self.fail("obs_normalization", "expected var >= 0, clip > 0, epsilon >= 0")
            stats = ObsStats(mean, var, float(clip), float(eps))
        if seen is not None:
            low, high = (self.vector(f"obs_seen_range.{k}", size) for k in ("min", "max"))
            stats = dataclasses.replace(stats, seen_min=low, seen_max=high)
        return stats

    def vector(self, field: str, size: int) -> np.ndarray:
        values = self.get(field, list)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        array = np.array(values if numbers else [], dtype=np.float64)
        if array.shape != (size,) or not np.isfinite(array).all():
            raise self.fail(field, f"expected a list of {size} finite numbers")
        return array

    def network(self, obs: spaces.Box, act: spaces.Space) -> Network:
        trunks = (self.layers(f"network.{k}") for k in ("shared", "policy", "value"))
        value_head = self.get("network.value_head", dict, optional=True)
        net = Network(
            self.choice("network.kind", KINDS),
            self.choice("network.activation", tuple(ACTIVATIONS)),
            self.get("network.input_dim", int),
            *trunks,
            self.layer("network.action_head"),
            None if value_head is None else self.layer("network.value_head"),
        )
        if (net.kind == "actor-critic") != (net.value_head is not None) or (
            net.kind == "q-network" and net.value
        ):
            raise self.fail("network.value_head", "only an actor-critic has a critic")
        self.check_sizes(net, obs, act)
        return net

    def layers(self, field: str) -> tuple[Linear, ...]:
        return tuple(self.layer(f"{field}.{i}") for i in range(len(self.get(field, list))))

    def layer(self, field: str) -> Linear:
        keys = (("weight", str), ("bias", str), ("n_in", int), ("n_out", int))
        return Linear(*(self.get(f"{field}.{k}", t) for k, t in keys))

    def check_sizes(self, net: Network, obs: spaces.Box, act: spaces.Space) -> None:
        """Each layer takes what the one before gives; the ends fit the spaces."""
        size_in = obs.shape[0]
        if net.input_dim != size_in:
            raise self.fail("network.input_dim", f"expected {size_in}, got {net.input_dim}")
        chains = [("policy", (*net.shared, *net.policy, net.action_head), _nvec(act).sum())]
        if net.value_head is not None:
            chains.append(("value", (*net.shared, *net.value, net.value_head), 1))
        for name, chain, size_out in chains:
            size = size_in
            for layer in chain:
                if layer.n_in != size:
                    raise self.fail(
                        f"network.{name}", f"{layer.weight} takes {layer.n_in}, got {size}"
                    )
                size = layer.n_out
            if size != size_out:
                raise self.fail(f"network.{name}", f"expected {size_out} outputs, got {size}")


def _unbound(value: Any, shape: list[int], dtype: np.dtype) -> np.ndarray:
    """A Box bound from JSON (a number or "inf"/"-inf", or a flat list of them) as an array."""
    flat = np.array([float(x) for x in value] if isinstance(value, list) else float(value))
    return np.broadcast_to(flat.astype(dtype), shape).copy()


def _read_weights(path: Path, manifest: Manifest) -> dict[str, np.ndarray]:
    """The tensors of ``path``, parsed only once the file's sha256 matches the manifest's."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(path, "missing") from None
    actual, expected = hashlib.sha256(data).hexdigest(), manifest.weights_sha256
    if actual != expected:
        message = f"sha256 mismatch, refusing to load: expected {expected}, the file has {actual}"
        raise ArtifactError(path, message)
    try:
        tensors = safetensors.numpy.load(data)
    except SafetensorError as exc:
        raise ArtifactError(path, f"not a safetensors file ({exc})") from None
    for layer in manifest.network.layers():
        for name, shape in (
            (layer.weight, (layer.n_out, layer.n_in)),
            (layer.bias, (layer.n_out,)),
        ):
            tensor = tensors.get(name)
            if tensor is None or tensor.shape != shape or tensor.dtype != np.float32:
                got = "nothing" if tensor is None else f"{tensor.dtype} {tensor.shape}"
                raise ArtifactError(path, f"expected float32 {shape}, got {got}", name)
    return tensors


def _nvec(space: spaces.Space) -> np.ndarray:
    """The number of choices of each action head."""
    if isinstance(space, spaces.Discrete):
        return np.array([int(space.n)])
    return np.asarray(space.nvec, dtype=np.int64).reshape(-1)

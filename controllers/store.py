"""Policy artifacts on disk: a directory of safetensors weights plus a JSON manifest.

Loading checks the weights' sha256 before parsing them and reads tensors with safetensors:
nothing is ever unpickled (SB3's ``.load()`` and ``torch.load`` are never called), single
files such as SB3 ``.zip`` archives are refused, and neither file may be a link leading out
of the artifact's directory. SB3 and torch are imported only when saving.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError

from envs.registry import make_task
from envs.task import Task

from .errors import ArtifactError
from .export import algorithm_of, export
from .manifest import Manifest, ObsStats, check_compatible, parse
from .policy import Policy
from .schema import MANIFEST, WEIGHTS, Array

LIBRARIES = ("stable-baselines3", "sb3-contrib", "torch", "numpy", "safetensors", "swarmsim")


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
        algorithm=algorithm_of(model),  # export refused any other
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
    parse(json.loads(text), directory / MANIFEST)  # what is written must load
    directory.mkdir(parents=True, exist_ok=True)
    (directory / WEIGHTS).write_bytes(weights)
    (directory / MANIFEST).write_text(text, encoding="utf-8")
    return directory


def load_policy(directory: str | Path) -> Policy:
    """The policy saved in ``directory``, once its manifest and weights' hash check out."""
    manifest = read_manifest(directory)
    return Policy(manifest, _read_weights(_inside(Path(directory), WEIGHTS), manifest))


def read_manifest(directory: str | Path) -> Manifest:
    """The validated manifest of the artifact in ``directory`` (the weights are not read)."""
    path = Path(directory)
    if path.is_file():
        hint = "single files such as SB3 .zip archives are refused (loading them unpickles)"
        raise ArtifactError(path, f"not an artifact directory; {hint}: export with save_policy")
    try:
        doc = json.loads(_inside(path, MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(path / MANIFEST, "missing: not a policy artifact") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(path / MANIFEST, f"not valid JSON ({exc})") from None
    return parse(doc, path / MANIFEST)


def _inside(directory: Path, name: str) -> Path:
    """``directory / name``, refused if a symlink takes it out of ``directory``."""
    path = directory / name
    if path.is_symlink() and path.resolve().parent != directory.resolve():
        raise ArtifactError(path, f"links out of the artifact directory, to {path.resolve()}")
    return path


def _versions() -> dict[str, str]:
    """Versions of the libraries that trained and saved the policy."""
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _read_weights(path: Path, manifest: Manifest) -> dict[str, Array]:
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
        tensors: dict[str, Array] = safetensors.numpy.load(data)
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

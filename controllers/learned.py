"""A trained policy as a Controller: the artifact's network, loaded without unpickling.

The same artifact directory serves the simulator and the live runtime; ``act`` is a numpy
forward pass, cheap enough to run on every query the routing Task decides.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from envs import llm_routing, routing
from envs.registry import TASKS, make_task
from envs.task import Task

from .manifest import check_compatible
from .schema import MANIFEST, WEIGHTS
from .store import load_policy

# Tasks whose action mask can be read off the observation, for policies trained with masks.
OBS_MASKS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "shard-routing": routing.mask_from_obs,
    "llm-routing": llm_routing.mask_from_obs,
}


class LearnedController:
    """The deterministic action of a saved policy for its Task's observation.

    ``task`` defaults to a fresh Task of the manifest's name when that name is registered:
    an artifact made for another version or other spaces is refused with ArtifactError. A
    MaskablePPO policy acts among the choices its Task's mask (read from ``obs``) allows.
    """

    def __init__(self, directory: str | Path, task: Task | None = None) -> None:
        self.policy = load_policy(directory)
        self.manifest = self.policy.manifest
        if task is None and self.manifest.task in TASKS:
            task = make_task(self.manifest.task)
        if task is not None:
            check_compatible(self.manifest, task)
        self.task = self.manifest.task
        self.artifact_hash = self.manifest.weights_sha256
        masked = self.manifest.algorithm == "MaskablePPO"
        self._mask = OBS_MASKS.get(self.task) if masked else None

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The action for ``obs``: the argmax of each action head (among allowed choices)."""
        return self.policy.act(obs, None if self._mask is None else self._mask(obs))

    def act_masked(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The action for ``obs`` among the choices the flat ``mask`` allows (as MaskablePPO)."""
        return self.policy.act(obs, mask)

    def reset(self) -> None:
        """Nothing to forget: the policy is a stateless MLP."""

    def obs_range(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The per-feature min and max of the observations seen in training, if recorded."""
        stats = self.manifest.obs_stats
        return stats.seen_min, stats.seen_max


def is_artifact(path: str | Path) -> bool:
    """Whether ``path`` looks like a policy artifact directory (manifest and weights present);
    ``LearnedController`` then validates it fully."""
    path = Path(path)
    return (path / MANIFEST).is_file() and (path / WEIGHTS).is_file()

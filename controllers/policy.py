"""A saved policy's actor rebuilt in numpy from its manifest and tensors.

Inference is a plain forward pass (normalise, the MLP, argmax per action head), cheap enough
for the per-query routing path; neither torch nor SB3 is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from .export import ACTIVATIONS
from .manifest import Manifest, action_nvec
from .schema import Array


class Policy:
    """A saved policy's actor in numpy: normalise the observation, forward, argmax per head."""

    def __init__(self, manifest: Manifest, tensors: Mapping[str, Array]) -> None:
        self.manifest = manifest
        net, stats = manifest.network, manifest.obs_stats
        actor = (*net.shared, *net.policy, net.action_head)
        self._layers = [(tensors[x.weight].T.copy(), tensors[x.bias].copy()) for x in actor]
        self._activation = ACTIVATIONS[net.activation]
        self._std = None if stats.var is None else np.sqrt(stats.var + stats.epsilon)
        nvec = action_nvec(manifest.action_space)
        starts, choices = np.cumsum(nvec) - nvec, np.arange(nvec.max())
        # The logit of each (head, choice); padding points at an appended -inf column.
        self._index = np.where(choices < nvec[:, None], starts[:, None] + choices, nvec.sum())
        # heads of one size are a plain reshape (the per-query routing path): no padding
        self._discrete = isinstance(manifest.action_space, spaces.Discrete)
        self._heads = (len(nvec), int(nvec[0])) if (nvec == nvec[0]).all() else None

    def normalize(self, obs: Any) -> Array:
        """``obs`` as the network saw it in training (normalised and clipped), as float32."""
        x: Array = np.asarray(obs, dtype=np.float32)
        shape = self.manifest.observation_space.shape
        if x.shape[-1:] != shape:
            raise ValueError(f"observation must have shape {shape}, got {x.shape}")
        if self._std is None:
            return x
        stats = self.manifest.obs_stats
        return np.clip((x - stats.mean) / self._std, -stats.clip, stats.clip).astype(np.float32)

    def logits(self, obs: Any) -> Array:
        """The action head's output for one observation or a batch: logits or Q-values."""
        x = self.normalize(obs)
        for weight, bias in self._layers[:-1]:
            x = self._activation(x @ weight + bias)
        weight, bias = self._layers[-1]
        out: Array = x @ weight + bias
        return out

    def act(self, obs: Any, mask: Any = None) -> Array:
        """The deterministic action: each head's best logit among the choices ``mask``
        (flat, as MaskablePPO's) allows."""
        out = self.logits(obs)
        if mask is not None:
            if np.shape(mask)[-1:] != out.shape[-1:]:
                raise ValueError(f"mask must have {out.shape[-1]} entries, got {np.shape(mask)}")
            out = np.where(mask, out, -np.inf)
        if self._heads is not None:
            action: Array = out.reshape(*out.shape[:-1], *self._heads).argmax(axis=-1)
            return action[..., 0] if self._heads[0] == 1 and self._discrete else action
        pad = np.full((*out.shape[:-1], 1), -np.inf, dtype=out.dtype)
        action = np.concatenate([out, pad], axis=-1)[..., self._index].argmax(axis=-1)
        return action[..., 0] if self._discrete else action

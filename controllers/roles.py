"""Role-assignment heuristics: a static split, and moves proportional to each layer's backlog.

Both decode the ``RoleAssignmentTask`` observation (``decode``) and answer one ``(from, to)``
pair per node class: ``from = 0`` moves nothing, ``from = l + 1`` moves an agent of layer
``l`` on that class into layer ``to``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs.roles import BACKLOG_SCALE, COUNT_SCALE, LAYER_FEATURES, MAX_GROUPS, MAX_LAYERS
from envs.task import unsquash

TASK = "role-assignment"


@dataclass(frozen=True)
class RolesObservation:
    """The role-assignment observation decoded back into counts."""

    layers: np.ndarray  # (MAX_LAYERS,) bool: the layer exists
    backlog: np.ndarray  # (MAX_LAYERS,) jobs queued + in flight
    gpu: np.ndarray  # (MAX_LAYERS,) bool: the layer's replicas run on GPUs
    classes: np.ndarray  # (MAX_GROUPS,) bool: the node class exists
    agents: np.ndarray  # (MAX_GROUPS, MAX_LAYERS) live agents of each layer on each class
    training: np.ndarray  # (MAX_GROUPS,) share of the class's GPU agents sharing with training


def decode(obs: np.ndarray) -> RolesObservation:
    """Decode a ``RoleAssignmentTask`` observation (layout in its class docstring)."""
    obs = np.asarray(obs, dtype=np.float64)
    layers = obs[: MAX_LAYERS * LAYER_FEATURES].reshape(MAX_LAYERS, LAYER_FEATURES)
    start = MAX_LAYERS * LAYER_FEATURES
    end = start + MAX_GROUPS * (1 + MAX_LAYERS)
    groups = obs[start:end].reshape(MAX_GROUPS, 1 + MAX_LAYERS)
    present = layers[:, 0] > 0.5
    return RolesObservation(
        layers=present,
        backlog=np.where(present, np.rint(unsquash(layers[:, 1], BACKLOG_SCALE)), 0.0),
        gpu=layers[:, 5] > 0.5,
        classes=groups[:, 0] > 0.5,
        agents=np.where(present, np.rint(unsquash(groups[:, 1:], COUNT_SCALE)), 0.0),
        training=obs[end:],
    )


def no_moves() -> np.ndarray:
    """The action that moves nothing on any node class."""
    return np.zeros(2 * MAX_GROUPS, dtype=np.int64)


class StaticRoles:
    """The static split: every agent keeps the role the scenario gave it."""

    task = TASK

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Move nothing."""
        return no_moves()

    def reset(self) -> None:
        """Stateless."""


class ProportionalRoles:
    """Move agents so each layer's share of agents tracks its share of the total backlog.

    Each interval, a layer's gap is (its share of agents) - (its share of backlog): positive
    is over-provisioned. Node classes are visited in order; on each, among the layers with
    agents on that class, the donor is the most over-provisioned layer that keeps at least one
    agent cluster-wide, the recipient the most under-provisioned other layer. One agent moves
    when the donor's gap exceeds the recipient's by more than ``deadband`` and by more than
    2 / agents (so the move cannot reverse the pair's order: no flapping); the shares are
    updated before the next class is visited. With no backlog anywhere, nothing moves.
    Donor and recipient run on the same kind of device (observation offset 5). Layers absent
    from a class are never named: the observation cannot tell whether a model fits a class's
    devices, and a layer already running there evidently does.
    """

    task = TASK

    def __init__(self, deadband: float = 0.05) -> None:
        if not 0.0 <= deadband < 1.0:
            raise ValueError(f"deadband must be in [0, 1), got {deadband}")
        self.deadband = deadband

    def act(self, obs: np.ndarray) -> np.ndarray:
        """At most one move per node class, from the over- to the under-provisioned layer."""
        d = decode(obs)
        action, counts = no_moves(), d.agents.copy()
        total = d.backlog.sum()
        if total <= 0 or counts.sum() == 0:
            return action
        share = d.backlog / total
        for g in np.flatnonzero(d.classes):
            move = self._move(counts, int(g), share, d.gpu)
            if move is not None:
                src, dst = move
                action[2 * g : 2 * g + 2] = (src + 1, dst)
                counts[g, src] -= 1
                counts[g, dst] += 1
        return action

    def _move(
        self, counts: np.ndarray, g: int, share: np.ndarray, gpu: np.ndarray
    ) -> tuple[int, int] | None:
        """The (donor, recipient) layers on class ``g``, both of one device kind (an agent
        cannot move from a CPU layer to a GPU one), or None when no move is worth it."""
        per_layer, n = counts.sum(axis=0), counts.sum()
        gap = per_layer / n - share
        best: tuple[float, int, int] | None = None
        for kind in (True, False):
            here = (counts[g] >= 1) & (gpu == kind)
            donors = here & (per_layer >= 2)
            if not donors.any() or here.sum() < 2:
                continue
            src = int(np.argmax(np.where(donors, gap, -np.inf)))
            here[src] = False
            dst = int(np.argmin(np.where(here, gap, np.inf)))
            spread = gap[src] - gap[dst]
            if spread > max(self.deadband, 2.0 / n) and (best is None or spread > best[0]):
                best = (spread, src, dst)
        return None if best is None else best[1:]

    def reset(self) -> None:
        """Stateless: decides from the current observation alone."""

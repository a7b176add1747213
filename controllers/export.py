"""Export a stable-baselines3 MLP policy as plain tensors and the layout that rebuilds it.

SB3 and torch are imported only inside ``export`` and ``unsupported``: loading an artifact
needs neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal, get_args

import numpy as np
from gymnasium import spaces

Algorithm = Literal["PPO", "A2C", "MaskablePPO", "DQN"]
Kind = Literal["actor-critic", "q-network"]  # logits heads, or one Q-value per action
Activation = Literal["Tanh", "ReLU"]
ALGORITHMS: tuple[Algorithm, ...] = get_args(Algorithm)
KINDS: tuple[Kind, ...] = get_args(Kind)
ACTIVATIONS: dict[Activation, Callable[[np.ndarray], np.ndarray]] = {
    "Tanh": np.tanh,  # SB3's default for PPO, A2C and MaskablePPO
    "ReLU": lambda x: np.maximum(x, 0.0),  # SB3's default for DQN
}


@dataclasses.dataclass(frozen=True)
class Linear:
    """One linear layer: the names of its tensors in the weights file, and its sizes."""

    weight: str
    bias: str
    n_in: int
    n_out: int


@dataclasses.dataclass(frozen=True)
class Network:
    """The saved MLP. Actor: shared + policy trunk + action head (logits, or Q-values for a
    q-network); critic: shared + value trunk + value head (none for a q-network)."""

    kind: Kind
    activation: Activation
    input_dim: int
    shared: tuple[Linear, ...]
    policy: tuple[Linear, ...]
    value: tuple[Linear, ...]
    action_head: Linear
    value_head: Linear | None

    def layers(self) -> tuple[Linear, ...]:
        """Every layer whose tensors the weights file holds."""
        critic = (*self.value, self.value_head) if self.value_head else ()
        return (*self.shared, *self.policy, self.action_head, *critic)


def export(model: Any) -> tuple[Network, dict[str, np.ndarray]]:
    """The network of an SB3 model and its tensors (float32, by their state_dict names);
    ValueError naming what the numpy forward pass would not reproduce exactly."""
    problem = unsupported(model)
    if problem:
        raise ValueError(f"cannot export: unsupported {problem}")
    policy = model.policy
    network = _q_network(policy) if type(model).__name__ == "DQN" else _actor_critic(policy)
    state = policy.state_dict()
    names = [name for layer in network.layers() for name in (layer.weight, layer.bias)]
    return network, {name: state[name].detach().cpu().numpy() for name in names}


def algorithm_of(model: Any) -> Algorithm:
    """The name of ``model``'s SB3 algorithm; ValueError unless it is one of ALGORITHMS."""
    name = type(model).__name__
    for algorithm in ALGORITHMS:
        if name == algorithm:
            return algorithm
    raise ValueError(f"algorithm must be one of {list(ALGORITHMS)}, got {name}")


def unsupported(model: Any) -> str | None:
    """What of ``model`` the numpy forward pass would not reproduce exactly, if anything."""
    import torch.nn as nn
    from stable_baselines3.common.torch_layers import FlattenExtractor

    algorithm, policy = type(model).__name__, model.policy
    if algorithm not in ALGORITHMS:
        return f"algorithm {algorithm} (supported: {', '.join(ALGORITHMS)})"
    obs, act, activation = model.observation_space, model.action_space, policy.activation_fn
    q_net = getattr(policy, "q_net", None)
    owner = policy if q_net is None else q_net
    if q_net is not None:
        trunks = [q_net.q_net]
    else:
        trunks = [policy.mlp_extractor.policy_net, policy.mlp_extractor.value_net]
    modules = [m for trunk in trunks for m in trunk if not isinstance(m, nn.Linear)]
    checks = [
        (isinstance(obs, spaces.Box) and len(obs.shape) == 1, f"observation space {obs}"),
        (isinstance(act, spaces.MultiDiscrete | spaces.Discrete), f"action space {act}"),
        (activation.__name__ in ACTIVATIONS, f"activation {activation.__name__}"),
        (all(isinstance(m, activation) for m in modules), f"layers {modules}"),
        (isinstance(owner.features_extractor, FlattenExtractor), "features extractor"),
    ]
    return next((problem for ok, problem in checks if not ok), None)


def _actor_critic(policy: Any) -> Network:
    """The Network of an (optionally maskable) ActorCriticPolicy with an MlpExtractor."""
    mlp = policy.mlp_extractor
    return Network(
        kind="actor-critic",
        activation=policy.activation_fn.__name__,
        input_dim=int(policy.features_dim),
        shared=(),  # SB3 >= 1.8 shares no layers between actor and critic
        policy=_linears(mlp.policy_net, "mlp_extractor.policy_net"),
        value=_linears(mlp.value_net, "mlp_extractor.value_net"),
        action_head=_linear(policy.action_net, "action_net"),
        value_head=_linear(policy.value_net, "value_net"),
    )


def _q_network(policy: Any) -> Network:
    """The Network of a DQNPolicy: its Q-net's hidden layers, then the Q-value head."""
    layers = _linears(policy.q_net.q_net, "q_net.q_net")
    activation = policy.activation_fn.__name__
    return Network("q-network", activation, layers[0].n_in, (), layers[:-1], (), layers[-1], None)


def _linears(sequential: Any, prefix: str) -> tuple[Linear, ...]:
    named = [(f"{prefix}.{i}", m) for i, m in enumerate(sequential) if hasattr(m, "in_features")]
    return tuple(_linear(module, name) for name, module in named)


def _linear(module: Any, name: str) -> Linear:
    return Linear(
        f"{name}.weight", f"{name}.bias", int(module.in_features), int(module.out_features)
    )

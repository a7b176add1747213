"""Behaviour cloning: warm-start a policy from a heuristic's decisions before RL fine-tuning.

PPO from scratch explores a Task's large MultiDiscrete action space by moving agents at
random, which wrecks the cluster long before the reward explains why. Cloning a competent
heuristic first (maximum likelihood of its actions under the policy's action distribution,
plus Monte-Carlo returns for the value head, so the first PPO updates are not driven by a
random critic) gives PPO a policy worth improving. The ``imitation`` package does this too,
but pins gymnasium 0.29 and stable-baselines3 2.2, which this project is past.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from swarmsim.errors import check


@dataclass(frozen=True)
class ImitationConfig:
    """Demonstrations from a registered heuristic of the Task, then supervised epochs."""

    controller: str = ""  # a heuristic of the Task, NAME[:key=value...] ("" = no cloning)
    steps: int = 20_000  # environment steps of demonstrations
    epochs: int = 200  # a heuristic's thresholds need many passes (measured on roles)
    batch_size: int = 256
    learning_rate: float = 3e-3
    value_weight: float = 0.5  # weight of the value head's regression on the returns

    def __post_init__(self) -> None:
        check(self.steps >= 1, "steps", self.steps, ">= 1")
        check(self.epochs >= 1, "epochs", self.epochs, ">= 1")
        check(self.batch_size >= 1, "batch_size", self.batch_size, ">= 1")


@dataclass(frozen=True)
class Demonstrations:
    """What the heuristic saw and did, with the discounted return from each step."""

    obs: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    episodes: int
    mean_reward: float


def demonstrate(
    env: Any,
    controller: Any,
    steps: int,
    gamma: float,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> Demonstrations:
    """Run ``controller`` in ``env`` (a Gymnasium env of its Task) for ``steps`` steps;
    ``progress(steps done)`` at each hundredth of them."""
    obs_list, act_list, rewards, ends = [], [], [], []
    obs, _ = env.reset(seed=seed)
    episodes = 0
    every = max(steps // 100, 1)
    for step in range(1, steps + 1):
        action = np.asarray(controller.act(obs))
        obs_list.append(obs)
        act_list.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(float(reward))
        ends.append(terminated or truncated)
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset()
        if progress is not None and step % every == 0:
            progress(step)
    return Demonstrations(
        np.asarray(obs_list, dtype=np.float32),
        np.asarray(act_list),
        discounted_returns(np.asarray(rewards), np.asarray(ends), gamma),
        episodes,
        float(np.mean(rewards)),
    )


def discounted_returns(rewards: np.ndarray, ends: np.ndarray, gamma: float) -> np.ndarray:
    """Return-to-go of each step, restarting at episode ends (a cut-off tail is not
    bootstrapped: the last steps of an unfinished episode under-estimate a little)."""
    out = np.zeros(len(rewards), dtype=np.float32)
    running = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        running = rewards[i] + (0.0 if ends[i] else gamma * running)
        out[i] = running
    return out


def clone(
    policy: Any,
    demos: Demonstrations,
    cfg: ImitationConfig,
    seed: int,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Fit an SB3 ``ActorCriticPolicy`` to ``demos``; returns the final losses and how often
    the policy's deterministic action equals the heuristic's on the demonstrations.
    ``progress(epochs done, last batch's negative log-likelihood)`` after each epoch."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    obs = torch.as_tensor(demos.obs)
    actions = torch.as_tensor(demos.actions)
    returns = torch.as_tensor(demos.returns)
    optimiser = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate)
    policy.set_training_mode(True)
    n = len(obs)
    nll = value_loss = torch.tensor(0.0)
    for epoch in range(1, cfg.epochs + 1):
        for idx in torch.randperm(n, generator=gen).split(cfg.batch_size):
            values, log_prob, _ = policy.evaluate_actions(obs[idx], actions[idx])
            nll = -log_prob.mean()
            value_loss = torch.nn.functional.mse_loss(values.flatten(), returns[idx])
            loss = nll + cfg.value_weight * value_loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if progress is not None:
            progress(epoch, nll.item())
    policy.set_training_mode(False)
    with torch.no_grad():
        predicted, _ = policy.predict(demos.obs, deterministic=True)
    agree = np.all(np.asarray(predicted).reshape(demos.actions.shape) == demos.actions, axis=-1)
    return {
        "nll": nll.item(),
        "value_mse": value_loss.item(),
        "agreement": float(agree.mean()),
        "demo_steps": n,
        "demo_episodes": demos.episodes,
        "demo_mean_reward": demos.mean_reward,
    }

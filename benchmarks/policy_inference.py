"""Policy inference latency: an artifact's numpy forward pass against SB3 ``predict`` and the
raw torch forward of the same MLP, measured in the same run on one core, one observation
per call (the per-query routing path).

Cases: MaskablePPO on shard-routing (masked: the controller reads the mask off the
observation; ``predict`` and torch are given it) and PPO on autoscaling (64x64 tanh MLPs,
untrained: the weights' values do not change the cost). Prints p50/p99 microseconds.

Run: ``python benchmarks/policy_inference.py [--calls N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch as th
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO

from controllers.learned import LearnedController
from controllers.store import save_policy
from envs import SwarmEnv
from envs.routing import mask_from_obs

CASES = [(MaskablePPO, "shard-routing"), (PPO, "autoscaling")]


def percentiles(fn: Callable[[np.ndarray], object], obs: np.ndarray) -> tuple[float, float]:
    """p50 and p99 microseconds of ``fn`` over the observations, after a warm-up."""
    for o in obs[:200]:
        fn(o)
    times = np.empty(len(obs))
    for i, o in enumerate(obs):
        start = time.perf_counter_ns()
        fn(o)
        times[i] = time.perf_counter_ns() - start
    return float(np.percentile(times, 50)) / 1e3, float(np.percentile(times, 99)) / 1e3


def sb3_predict(model, masked: bool) -> Callable[[np.ndarray], np.ndarray]:
    """SB3's deterministic ``predict`` for one observation (with the Task's mask if masked)."""
    if masked:
        return lambda o: model.predict(o, deterministic=True, action_masks=mask_from_obs(o))[0]
    return lambda o: model.predict(o, deterministic=True)[0]


def torch_forward(model, masked: bool) -> Callable[[np.ndarray], np.ndarray]:
    """The actor's forward pass and per-head argmax in torch, without SB3's predict."""
    policy, nvec = model.policy, model.action_space.nvec

    def act(obs: np.ndarray) -> np.ndarray:
        with th.no_grad():
            x = th.as_tensor(obs).unsqueeze(0)
            logits = policy.action_net(policy.mlp_extractor.forward_actor(x))[0]
            if masked:
                logits = th.where(th.as_tensor(mask_from_obs(obs)), logits, -th.inf)
            return np.array([h.argmax().item() for h in th.split(logits, list(nvec))])

    return act


def measure(algo, task: str, calls: int) -> dict[str, tuple[float, float]]:
    env = SwarmEnv(task, "homelab", episode_s=120)
    model = algo("MlpPolicy", env, seed=0, device="cpu")
    masked = algo is MaskablePPO
    with tempfile.TemporaryDirectory() as directory:
        save_policy(model, directory, task=env.task, scenario="homelab", train_config={})
        controller = LearnedController(directory)
    env.observation_space.seed(0)
    obs = np.stack([env.observation_space.sample() for _ in range(calls)])

    return {
        "LearnedController.act (numpy)": percentiles(controller.act, obs),
        "SB3 predict": percentiles(sb3_predict(model, masked), obs),
        "raw torch forward": percentiles(torch_forward(model, masked), obs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    th.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}, "
          f"torch {th.__version__}, numpy {np.__version__}, {args.calls} calls each")  # fmt: skip
    for algo, task in CASES:
        print(f"{algo.__name__} on {task}:")
        for name, (p50, p99) in measure(algo, task, args.calls).items():
            print(f"  {name:32s} p50 {p50:7.1f} us   p99 {p99:7.1f} us")


if __name__ == "__main__":
    main()

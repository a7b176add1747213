"""Environment speed: steps per second of each swarmsim env next to a trivial env with the
same spaces, through the same wrappers, measured in the same run on one core.

Prints and writes ``results/env_speed.json``. For each Task and scenario: raw ``step``
(gym.make's wrappers) and through SB3's ``DummyVecEnv``; actions are sampled from the action
space (the invalid choices among them are replaced by the Task, as during exploration).
Also the share of a routing step spent in the simulator, the view, encode and apply.

Run: ``python benchmarks/env_speed.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv

import envs  # noqa: F401  (registers the ids)
from envs import SwarmEnv

RESULTS = Path(__file__).resolve().parents[1] / "results" / "env_speed.json"
CASES = [
    ("swarmsim/ShardRouting-v0", "escape-velocity"),
    ("swarmsim/ShardRouting-v0", "homelab"),
    ("swarmsim/Autoscaling-v1", "escape-velocity"),
    ("swarmsim/RoleAssignment-v0", "escape-velocity"),
]


class TrivialEnv(gym.Env):
    """The same spaces, zero work: the cost of the wrappers and of sampling actions."""

    def __init__(self, like: gym.Env) -> None:
        self.observation_space = like.observation_space
        self.action_space = like.action_space
        self._obs = np.zeros(like.observation_space.shape, dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs.copy(), {}

    def step(self, action):
        return self._obs.copy(), 0.0, False, False, {}


def steps_per_s(env: gym.Env, steps: int) -> float:
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def vec_steps_per_s(make, steps: int) -> float:
    vec = DummyVecEnv([make])
    vec.reset()
    vec.action_space.seed(0)
    actions = [np.array([vec.action_space.sample()]) for _ in range(steps)]
    start = time.perf_counter()
    for action in actions:
        vec.step(action)
    rate = steps / (time.perf_counter() - start)
    vec.close()
    return rate


def routing_breakdown(steps: int) -> dict[str, float]:
    """Microseconds per routing step spent in each part (escape-velocity)."""
    env = SwarmEnv("shard-routing", "escape-velocity")
    spent: dict[str, float] = {}

    def timed(obj, name):
        fn = getattr(obj, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
            return out

        setattr(obj, name, wrapper)

    env.reset(seed=0)
    timed(env, "_advance")
    timed(env, "_decision_view")
    timed(env.task, "encode")
    timed(env.task, "apply")
    env.action_space.seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
    total = time.perf_counter() - start
    out = {f"{k}_us": v / steps * 1e6 for k, v in spent.items()}
    out["total_us"] = total / steps * 1e6
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    rows = []
    for env_id, scenario in CASES:
        n = args.steps if "Routing" in env_id else max(args.steps // 20, 100)
        env = gym.make(env_id, scenario=scenario)
        trivial = gym.wrappers.PassiveEnvChecker(gym.wrappers.OrderEnforcing(TrivialEnv(env)))
        row = {
            "env": env_id,
            "scenario": scenario,
            "steps": n,
            "env_steps_per_s": steps_per_s(env, n),
            "trivial_steps_per_s": steps_per_s(trivial, n),
            "env_dummyvec_steps_per_s": vec_steps_per_s(
                lambda e=env_id, s=scenario: gym.make(e, scenario=s), n
            ),
        }
        row["ratio_to_trivial"] = row["env_steps_per_s"] / row["trivial_steps_per_s"]
        rows.append(row)
        print(
            f"{env_id:28s} {scenario:16s} {row['env_steps_per_s']:9,.0f} steps/s "
            f"(DummyVecEnv {row['env_dummyvec_steps_per_s']:8,.0f}); trivial env "
            f"{row['trivial_steps_per_s']:9,.0f} steps/s; ratio {row['ratio_to_trivial']:.4f}"
        )
    breakdown = routing_breakdown(args.steps)
    print("routing step on escape-velocity, us:", {k: round(v, 1) for k, v in breakdown.items()})
    out = {
        "command": "python benchmarks/env_speed.py",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, pinned to one core",
        "runs": rows,
        "routing_step_breakdown_us": breakdown,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

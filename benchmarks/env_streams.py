"""The md5 of each env's observation/reward stream under a fixed seed and fixed actions, to
show that a speed-up of the step path changed nothing an agent could see.

Per case: ``reset(seed=0)``, then ``--steps`` steps (a twentieth of them for the interval
Tasks on escape-velocity) (resets included at episode ends), once with
actions sampled from the action space seeded 0 (invalid choices included, so the Tasks'
fallbacks run) and once with the Task's heuristic action; the digest covers every observation's
bytes, every reward's repr, the termination flags, ``info["invalid_actions"]`` and the episode
summaries. Run it in two checkouts and compare the lines.

Run: ``python benchmarks/env_streams.py [--steps N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import gymnasium as gym

import envs  # noqa: F401  (registers the envs)

# (env id, scenario, fraction of --steps: the busiest cluster's interval steps are slow)
CASES = [
    ("swarmsim/ShardRouting-v0", "hot-shards", 1.0),
    ("swarmsim/ShardRouting-v0", "escape-velocity", 1.0),
    ("swarmsim/LlmRouting-v1", "prefix-cache", 1.0),
    ("swarmsim/InferenceStrategy-v0", "homelab", 1.0),
    ("swarmsim/Autoscaling-v1", "diurnal", 1.0),
    ("swarmsim/RoleAssignment-v0", "shared-gpus", 1.0),
    ("swarmsim/Autoscaling-v1", "escape-velocity", 0.05),
    ("swarmsim/RoleAssignment-v0", "escape-velocity", 0.05),
]


def stream_md5(env_id: str, scenario: str, steps: int, heuristic: bool) -> str:
    """The digest of ``steps`` steps of ``env_id`` on ``scenario`` (see the module docstring)."""
    env = gym.make(env_id, scenario=scenario)
    task = env.unwrapped.task
    digest = hashlib.md5()
    obs, _ = env.reset(seed=0)
    digest.update(obs.tobytes())
    env.action_space.seed(0)
    for _ in range(steps):
        action = task.heuristic(task.view) if heuristic else env.action_space.sample()
        obs, reward, terminated, truncated, info = env.step(action)
        digest.update(obs.tobytes())
        digest.update(f"{reward!r} {terminated} {truncated} {info['invalid_actions']}".encode())
        if terminated or truncated:
            digest.update(json.dumps(info["summary"], sort_keys=True, default=str).encode())
            obs, _ = env.reset()
            digest.update(obs.tobytes())
    env.close()
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--only", help="run only the cases whose env id contains this")
    args = parser.parse_args()
    for env_id, scenario, share in CASES:
        if args.only and args.only not in f"{env_id} {scenario}":
            continue
        steps = max(int(args.steps * share), 1)
        for heuristic in (False, True):
            kind = "heuristic" if heuristic else "sampled"
            md5 = stream_md5(env_id, scenario, steps, heuristic)
            print(f"{env_id:30s} {scenario:16s} {kind:9s} {steps:5d} {md5}", flush=True)


if __name__ == "__main__":
    main()

"""The Gymnasium environments: API conformance, determinism, vectorisation, SB3 smoke training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

import envs  # noqa: F401  (registers the swarmsim/* ids)
from envs import SwarmEnv
from envs.scaling import HOLD
from swarmsim.errors import UnknownNameError

ENV_IDS = sorted(i for i in gym.registry if i.startswith("swarmsim/"))
SMALL = {"scenario": "homelab", "episode_s": 120.0}


def test_the_five_tasks_are_registered():
    assert ENV_IDS == [
        "swarmsim/Autoscaling-v1",
        "swarmsim/InferenceStrategy-v0",
        "swarmsim/LlmRouting-v1",
        "swarmsim/RoleAssignment-v0",
        "swarmsim/ShardRouting-v0",
    ]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_passes_gymnasium_and_sb3_env_checkers(env_id):
    env = gym.make(env_id, **SMALL)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(gym.make(env_id, **SMALL).unwrapped, warn=True)


def rollout(env: gym.Env, seed: int, steps: int) -> tuple[list[np.ndarray], list[float]]:
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, rewards = [obs], []
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(reward)
        if terminated or truncated:
            break
    return observations, rewards


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_actions_same_observations_and_rewards(env_id):
    a = rollout(gym.make(env_id, **SMALL), seed=3, steps=40)
    b = rollout(gym.make(env_id, **SMALL), seed=3, steps=40)
    c = rollout(gym.make(env_id, **SMALL), seed=4, steps=40)
    assert len(a[0]) == len(b[0]) > 5
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert a[1] == b[1]
    assert a[1] != c[1] or any(not np.array_equal(x, y) for x, y in zip(a[0], c[0], strict=False))


def test_llm_routing_passes_the_checkers_and_is_deterministic_on_its_scenario():
    prefix = {"scenario": "prefix-cache", "episode_s": 120.0}
    gym_check_env(gym.make("swarmsim/LlmRouting-v1", **prefix).unwrapped, skip_render_check=True)
    sb3_check_env(gym.make("swarmsim/LlmRouting-v1", **prefix).unwrapped, warn=True)
    a = rollout(gym.make("swarmsim/LlmRouting-v1", **prefix), seed=3, steps=40)
    b = rollout(gym.make("swarmsim/LlmRouting-v1", **prefix), seed=3, steps=40)
    assert len(a[0]) == len(b[0]) > 5
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert a[1] == b[1]
    assert any(obs[3] > 0 for obs in a[0])  # some query found its prefix cached on slot 0


def test_vary_and_mix_draw_each_episodes_parameters_and_scenario_from_the_envs_generator():
    env = SwarmEnv("llm-routing", "prefix-cache", episode_s=5.0, vary={"rate": (0.9, 1.3)})
    drawn = [env.reset(seed=s)[1]["varied"]["rate"] for s in (1, 2, 1)]
    assert all(0.9 <= r <= 1.3 for r in drawn) and drawn[0] == drawn[2] != drawn[1]
    assert env.scenario.workload.rate == drawn[2]
    assert SwarmEnv("llm-routing", "prefix-cache").reset(seed=1)[1]["varied"] == {}
    with pytest.raises(ValueError, match="vary"):
        SwarmEnv("llm-routing", env.scenario, vary={"rate": (0.9, 1.3)})
    mixed = SwarmEnv("llm-routing", "prefix-cache", ["rate=1.0"], 5.0,
                     mix=["prefix-cache-control"])  # fmt: skip
    names = [mixed.reset(seed=s)[1]["scenario"] for s in range(8)]
    assert set(names) == {"prefix-cache", "prefix-cache-control"}
    assert mixed.scenario.workload.rate == 1.0  # the overrides apply to every scenario
    assert names == [mixed.reset(seed=s)[1]["scenario"] for s in range(8)]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_episode_truncates_at_its_duration_with_the_metrics_summary(env_id):
    env = gym.make(env_id, scenario="homelab", episode_s=60.0)
    env.reset(seed=0)
    env.action_space.seed(0)
    steps = 0
    while True:
        steps += 1
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        if terminated or truncated:
            break
    assert truncated and not terminated
    summary = info["summary"]
    assert summary["duration_s"] == pytest.approx(60.0)
    q = summary["queries"]
    assert q["submitted"] == q["completed"] + q["failed"] + q["dropped"] + q["in_flight"]
    if env_id in (
        "swarmsim/ShardRouting-v0",
        "swarmsim/InferenceStrategy-v0",
        "swarmsim/LlmRouting-v1",
    ):
        # one decision per query that reached the stage: every completed query, at most all
        assert q["completed"] + q["failed"] <= steps <= q["submitted"]
    else:
        assert steps == 4  # control intervals of 15 s in 60 s


def _awaiting(env) -> int:
    return len(env.unwrapped.sim.coordinator.awaiting)


def test_routing_decisions_are_per_query_and_masked_choices_are_executable():
    env = SwarmEnv("shard-routing", "homelab", episode_s=200.0)
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(30):
        mask = env.action_masks().reshape(16, 9)
        action = [rng.choice(np.flatnonzero(row)) for row in mask]
        _, _, _, _, info = env.step(action)
        assert info["invalid_actions"] == (1 if not any(action) else 0)


CLOUD = """
duration_s: 600
workload: {kind: poisson, rate: 0.05}
cloud: {provision_delay_s: 90}
layers:
  synth: {role: synthesizer, model: llm-large, max_replicas: 4}
stages: [{layer: synth}]
nodes:
  - {name: a100, count: 2, initial: 1, cloud: true, devices: [a100-80gb],
     agents: [{layer: synth, device: 0}]}
"""


def test_autoscaling_replicas_serve_only_after_provisioning_and_loading(tmp_path):
    """The running node's only GPU holds a synthesizer (one LLM per GPU), so scaling out
    provisions the second cloud node (90 s) and then loads the model (9.4 GB at 3 GB/s)."""
    path = tmp_path / "cloud.yaml"
    path.write_text(CLOUD)
    env = SwarmEnv("autoscaling", str(path))
    env.reset(seed=0)
    up = np.full(8, HOLD)
    up[0] = HOLD + 1
    env.step(up)  # asked at t=15; serves from 15 + 90 + 3.13 = 108.1 s
    seen = []
    for _ in range(7):
        view = env.sim.view()
        seen.append((view.time_s, view.layers["synth"].running, view.layers["synth"].starting))
        env.step(np.full(8, HOLD))
    assert seen[:2] == [(30.0, 1, 1), (45.0, 1, 1)]
    assert seen[5] == (105.0, 1, 1) and seen[6] == (120.0, 2, 0)
    assert env.sim.view().totals.gpu_hours == pytest.approx((135 + (135 - 15)) / 3600)


def test_scaling_every_layer_to_zero_terminates_the_episode():
    env = SwarmEnv("autoscaling", "mmc", ["layers.server.min_replicas=0"], episode_s=500.0)
    env.reset(seed=0)
    for _ in range(20):
        _, _, terminated, truncated, info = env.step(np.zeros(8, dtype=int))
        if terminated or truncated:
            break
    assert terminated and not truncated and "summary" in info


def test_other_decisions_are_taken_by_the_given_controllers():
    class SearchShardZero:
        def __init__(self):
            self.calls = 0

        def act(self, obs):
            self.calls += 1
            action = np.zeros(16, dtype=int)
            action[0] = 1
            return action

    ctl = SearchShardZero()
    env = SwarmEnv(
        "autoscaling", "homelab", ["warmup_s=0"], 60.0, controllers={"shard-routing": ctl}
    )
    env.reset(seed=0)
    for _ in range(4):
        _, _, _, _, info = env.step(np.full(8, HOLD))
    assert ctl.calls == info["summary"]["queries"]["submitted"] - _awaiting(env) > 0
    assert info["summary"]["recall_at_k"] < 0.6  # one shard of four searched


def test_unknown_task_suggests_the_nearest():
    with pytest.raises(UnknownNameError, match="did you mean shard-routing"):
        SwarmEnv("shard-routng", "homelab")


@pytest.mark.parametrize("vec_cls", [DummyVecEnv, SubprocVecEnv])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_runs_vectorised(env_id, vec_cls):
    """The module-prefixed id makes each subprocess import ``envs`` (and so register)."""
    kwargs = {**SMALL, "render_mode": None}  # else SB3 asks for rgb_array, and gym warns
    vec = make_vec_env(f"envs:{env_id}", n_envs=2, seed=0, vec_env_cls=vec_cls, env_kwargs=kwargs)
    try:
        obs = vec.reset()
        assert obs.shape == (2, *vec.observation_space.shape)
        for _ in range(20):
            obs, rewards, _, _ = vec.step(np.array([vec.action_space.sample()] * 2))
        assert np.isfinite(rewards).all()
    finally:
        vec.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_64_step_smoke_training(env_id):
    env = gym.make(env_id, **SMALL)
    algo = MaskablePPO if env_id == "swarmsim/ShardRouting-v0" else PPO
    model = algo("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=64)
    assert model.num_timesteps >= 64

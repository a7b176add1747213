"""LearnedController: a policy artifact behind the Controller protocol."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO

from controllers.base import Controller
from controllers.errors import ArtifactError
from controllers.learned import LearnedController, is_artifact
from controllers.store import save_policy
from envs import SwarmEnv
from envs.routing import mask_from_obs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def routing(tmp_path_factory) -> tuple[MaskablePPO, Path]:
    env = SwarmEnv("shard-routing", "homelab", episode_s=120)
    model = MaskablePPO("MlpPolicy", env, seed=3, device="cpu")
    directory = tmp_path_factory.mktemp("routing")
    save_policy(model, directory, task=env.task, scenario="homelab", train_config={})
    return model, directory


def test_is_a_controller_of_its_task(routing):
    _, directory = routing
    controller = LearnedController(directory)
    assert isinstance(controller, Controller)
    assert controller.task == "shard-routing"
    assert controller.artifact_hash == controller.manifest.weights_sha256
    assert controller.obs_range() == (None, None)
    controller.reset()


def test_maskable_policy_masks_with_the_mask_read_from_the_observation(routing):
    model, directory = routing
    controller = LearnedController(directory)
    space = model.observation_space
    space.seed(4)
    obs = np.stack([space.sample() for _ in range(200)])
    masks = np.stack([mask_from_obs(o) for o in obs])
    expected, _ = model.predict(obs, deterministic=True, action_masks=masks)
    actual = np.stack([controller.act(o) for o in obs])
    np.testing.assert_array_equal(actual, controller.act_masked(obs, masks))
    assert (actual != expected).sum() <= 3  # SB3's near-ties aside (see test_artifact)
    assert masks.reshape(-1, 16, 9)[np.arange(len(obs))[:, None], np.arange(16), actual].all()


def test_artifact_for_another_task_version_is_refused(routing, tmp_path):
    _, directory = routing
    doc = json.loads((directory / "manifest.json").read_text())
    doc["task"]["version"] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    (tmp_path / "weights.safetensors").write_bytes((directory / "weights.safetensors").read_bytes())
    with pytest.raises(ArtifactError, match=r"task: artifact is for shard-routing v1"):
        LearnedController(tmp_path)


def test_is_artifact(routing, tmp_path):
    _, directory = routing
    assert is_artifact(directory)
    assert not is_artifact(tmp_path)
    assert not is_artifact(directory / "weights.safetensors")


def test_loading_needs_neither_torch_nor_sb3(tmp_path):
    """The live runtime loads artifacts with numpy and safetensors alone."""
    env = SwarmEnv("autoscaling", "homelab", episode_s=120)
    model = PPO("MlpPolicy", env, seed=0, device="cpu")
    save_policy(model, tmp_path, task="autoscaling", scenario="homelab", train_config={})
    code = (
        "import sys, numpy as np; from controllers.learned import LearnedController; "
        f"c = LearnedController({str(tmp_path)!r}); c.act(np.zeros({env.observation_space.shape}, "
        "np.float32)); print(sorted({'torch', 'stable_baselines3', 'sb3_contrib'} & "
        "set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

"""Policy artifacts: save -> load gives SB3's actions exactly; tampered, malformed or
pickle-bearing files are refused, and nothing is ever unpickled."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import safetensors.numpy
import torch.nn as nn
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from controllers.errors import ArtifactError
from controllers.learned import LearnedController
from controllers.manifest import ObsStats, check_compatible
from controllers.store import load_policy, read_manifest, save_policy
from envs import SwarmEnv, make_task

N_OBS = 1000


class BoxEnv(gym.Env):
    """A tiny env with a 1-D Box observation and the given action space; never stepped."""

    def __init__(self, action_space: spaces.Space) -> None:
        self.observation_space = spaces.Box(-2.0, 2.0, (6,), dtype=np.float32)
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(6, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(6, dtype=np.float32), 0.0, False, False, {}


class BoxTask:
    """A stand-in Task for BoxEnv: name, env id, version and spaces are all a save needs."""

    name, env_id, version = "box-test", "test/Box-v0", 0

    def __init__(self, env: gym.Env) -> None:
        self.observation_space, self.action_space = env.observation_space, env.action_space


class Canary:
    """Unpickling this creates the file ``path``: proof that something was unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def swarm(task: str) -> SwarmEnv:
    return SwarmEnv(task, "homelab", episode_s=120)


CASES = {
    "ppo-autoscaling": lambda: (PPO, swarm("autoscaling")),
    "a2c-roles": lambda: (A2C, swarm("role-assignment")),
    "maskable-routing": lambda: (MaskablePPO, swarm("shard-routing")),
    "ppo-discrete": lambda: (PPO, BoxEnv(spaces.Discrete(5))),
    "a2c-multidiscrete": lambda: (A2C, BoxEnv(spaces.MultiDiscrete([2, 5, 3]))),
    "dqn-discrete": lambda: (DQN, BoxEnv(spaces.Discrete(4))),
}


def build(case: str, **kwargs):
    """An untrained SB3 model for ``case`` (random weights suffice for a round trip)."""
    algo, env = CASES[case]()
    task = env.task if isinstance(env, SwarmEnv) else BoxTask(env)
    return algo("MlpPolicy", env, seed=0, device="cpu", **kwargs), task


def assert_same_actions(policy, obs, actual, expected) -> None:
    """Equal, but for near-ties: SB3's deterministic action is the argmax of float32 softmax
    probabilities, which rounds logits within ~1e-7 of each other to one probability and
    then takes the lower index; the artifact takes the argmax of the logits themselves."""
    assert actual.shape == expected.shape
    space = policy.manifest.action_space
    nvec = np.atleast_1d(getattr(space, "nvec", getattr(space, "n", None)))
    act, exp = actual.reshape(len(obs), -1), expected.reshape(len(obs), -1)
    rows, heads = np.nonzero(act != exp)
    assert rows.size <= act.size // 1000, f"{rows.size} of {act.size} decisions differ"
    logits, offsets = policy.logits(obs[rows]), (np.cumsum(nvec) - nvec)[heads]
    idx = np.arange(rows.size)
    gap = logits[idx, offsets + act[rows, heads]] - logits[idx, offsets + exp[rows, heads]]
    assert (np.abs(gap) < 1e-6).all(), f"logit gaps {gap} are no ties"


def sample(space: spaces.Box, n: int = N_OBS, seed: int = 0) -> np.ndarray:
    space.seed(seed)
    return np.stack([space.sample() for _ in range(n)])


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, tuple]:
    """Each case's model, task and artifact directory."""
    out = {}
    for case in CASES:
        model, task = build(case)
        directory = tmp_path_factory.mktemp(case)
        save_policy(model, directory, task=task, scenario="homelab", train_config={"seed": 0})
        out[case] = model, task, directory
    return out


@pytest.fixture
def artifact(saved, tmp_path) -> Path:
    """A fresh copy of the PPO autoscaling artifact, free to tamper with."""
    src = saved["ppo-autoscaling"][2]
    for name in ("manifest.json", "weights.safetensors"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    return tmp_path


def edit_manifest(directory: Path, edit) -> None:
    doc = json.loads((directory / "manifest.json").read_text())
    edit(doc)
    (directory / "manifest.json").write_text(json.dumps(doc))


def replace_weights(directory: Path, data: bytes) -> None:
    """Swap the weights file for ``data`` and make the manifest's hash match it."""
    (directory / "weights.safetensors").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    edit_manifest(directory, lambda doc: doc["weights"].update(sha256=sha))


# --- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [c for c in CASES if c != "maskable-routing"])
def test_round_trip_gives_sb3_actions(saved, case):
    model, _, directory = saved[case]
    controller = LearnedController(directory)
    obs = sample(model.observation_space)
    expected, _ = model.predict(obs, deterministic=True)
    actual = np.stack([controller.act(o) for o in obs])
    assert_same_actions(controller.policy, obs, actual, expected)
    assert len(np.unique(expected, axis=0)) > 1  # the policy is not constant: a real check


def test_masked_round_trip_gives_maskable_ppo_actions(saved):
    model, _, directory = saved["maskable-routing"]
    policy = load_policy(directory)
    obs = sample(model.observation_space)
    rng = np.random.default_rng(1)
    masks = rng.random((N_OBS, int(model.action_space.nvec.sum()))) < 0.5
    masks[:, :: model.action_space.nvec[0]] = True  # "skip this shard" is always allowed
    expected, _ = model.predict(obs, deterministic=True, action_masks=masks)
    actual = np.stack([policy.act(o, m) for o, m in zip(obs, masks, strict=True)])
    assert_same_actions(policy, obs, actual, expected)
    np.testing.assert_array_equal(policy.act(obs, masks), actual)  # batched: the same
    assert masks.reshape(N_OBS, 16, 9)[np.arange(N_OBS)[:, None], np.arange(16), actual].all()


def test_vec_normalize_statistics_round_trip(tmp_path):
    model, task = build("ppo-autoscaling")
    venv = VecNormalize(DummyVecEnv([lambda: model.env.envs[0]]), clip_obs=3.0)
    size = model.observation_space.shape[0]
    rng = np.random.default_rng(2)
    venv.obs_rms.mean, venv.obs_rms.var = rng.random(size), rng.uniform(0.001, 0.2, size)
    obs = sample(model.observation_space)
    stats = ObsStats.from_vec_normalize(venv, obs.min(axis=0), obs.max(axis=0))
    save_policy(model, tmp_path, task=task, scenario="homelab", train_config={}, obs_stats=stats)
    controller = LearnedController(tmp_path)
    normalized = venv.normalize_obs(obs)
    assert (np.abs(normalized) == 3.0).any()  # clipping is exercised
    expected, _ = model.predict(normalized, deterministic=True)
    actual = np.stack([controller.act(o) for o in obs])
    assert_same_actions(controller.policy, obs, actual, expected)
    low, high = controller.obs_range()
    np.testing.assert_array_equal(low, obs.min(axis=0))
    np.testing.assert_array_equal(high, obs.max(axis=0))


def test_manifest_records_what_made_the_policy(saved):
    model, task, directory = saved["ppo-autoscaling"]
    manifest = read_manifest(directory)
    assert (manifest.task, manifest.env_id, manifest.task_version) == (
        task.name,
        task.env_id,
        task.version,
    )
    assert (manifest.algorithm, manifest.scenario, manifest.train_config) == (
        "PPO",
        "homelab",
        {"seed": 0},
    )
    assert manifest.observation_space == model.observation_space
    assert manifest.action_space == model.action_space
    assert {"torch", "stable-baselines3", "sb3-contrib", "numpy", "swarmsim"} <= set(
        manifest.versions
    )
    weights = (directory / "weights.safetensors").read_bytes()
    assert manifest.weights_sha256 == hashlib.sha256(weights).hexdigest()
    assert manifest.network.activation == "Tanh" and manifest.network.kind == "actor-critic"
    assert [layer.n_out for layer in manifest.network.policy] == [64, 64]
    dqn = read_manifest(saved["dqn-discrete"][2])
    assert (dqn.network.kind, dqn.network.activation, dqn.network.value_head) == (
        "q-network",
        "ReLU",
        None,
    )


def test_save_accepts_a_task_name_and_refuses_another_tasks_model(tmp_path):
    model, _ = build("ppo-autoscaling")
    save_policy(model, tmp_path / "ok", task="autoscaling", scenario="homelab", train_config={})
    with pytest.raises(ArtifactError, match="observation_space: artifact has Box"):
        save_policy(model, tmp_path / "bad", task="shard-routing", scenario="x", train_config={})
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: PPO("MlpPolicy", BoxEnv(spaces.Box(-1, 1, (2,)))), "action space"),
        (
            lambda: PPO(
                "MlpPolicy", BoxEnv(spaces.Discrete(3)), policy_kwargs={"activation_fn": nn.ELU}
            ),
            "activation ELU",
        ),
    ],
)
def test_save_refuses_what_numpy_would_not_reproduce(tmp_path, make, problem):
    with pytest.raises(ArtifactError, match=problem):
        save_policy(make(), tmp_path, task=BoxTask(BoxEnv(spaces.Discrete(3))), scenario="x",
                    train_config={})  # fmt: skip


def test_save_refuses_a_config_that_is_not_json(tmp_path):
    model, task = build("ppo-discrete")
    with pytest.raises(ArtifactError, match="plain JSON"):
        save_policy(model, tmp_path, task=task, scenario="x", train_config={"f": object()})


# --- refusals ---------------------------------------------------------------------------------


def test_flipped_byte_in_weights_is_refused_by_hash(artifact):
    path = artifact / "weights.safetensors"
    data = bytearray(path.read_bytes())
    expected = hashlib.sha256(data).hexdigest()
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 mismatch") as err:
        load_policy(artifact)
    assert expected in str(err.value) and hashlib.sha256(data).hexdigest() in str(err.value)
    assert "weights.safetensors" in str(err.value)


def test_edited_hash_in_manifest_is_refused(artifact):
    edit_manifest(artifact, lambda doc: doc["weights"].update(sha256="0" * 64))
    with pytest.raises(ArtifactError, match=r"sha256 mismatch.*expected 0{64}"):
        load_policy(artifact)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("algorithm"), "algorithm: expected a value (the field is required)"),
        (lambda d: d.update(format_version=2), "format_version: expected one of"),
        (lambda d: d["weights"].update(file="policy.pth"), "weights.file"),
        (lambda d: d["task"].update(version="0"), "task.version: expected an integer"),
        (lambda d: d["observation_space"].update(type="Dict"), "observation_space.type"),
        (lambda d: d["action_space"].update(nvec=[-1]), "action_space: not a valid"),
        (lambda d: d["network"]["policy"][1].update(n_in=3), "network.policy:"),
        (lambda d: d["network"]["action_head"].update(n_out=5), "network.policy: expected"),
        (lambda d: d["network"].update(activation="GELU"), "network.activation"),
        (lambda d: d["network"].update(kind="q-network"), "network.value_head"),
        (lambda d: d.update(obs_normalization={"mean": [0.0]}), "obs_normalization.mean"),
        (lambda d: d.update(obs_seen_range={"min": ["a"], "max": []}), "obs_seen_range.min"),
    ],
)
def test_malformed_manifest_names_the_file_and_field(artifact, edit, field):
    edit_manifest(artifact, edit)
    with pytest.raises(ArtifactError, match=r"manifest\.json") as err:
        load_policy(artifact)
    assert field in str(err.value)


def test_missing_or_unreadable_files_are_refused(artifact, tmp_path_factory):
    with pytest.raises(ArtifactError, match=r"manifest\.json: missing"):
        load_policy(tmp_path_factory.mktemp("empty"))
    (artifact / "weights.safetensors").unlink()
    with pytest.raises(ArtifactError, match=r"weights\.safetensors: missing"):
        load_policy(artifact)
    (artifact / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_policy(artifact)


def test_tensor_of_the_wrong_shape_is_refused(artifact):
    manifest = read_manifest(artifact)
    tensors = safetensors.numpy.load((artifact / "weights.safetensors").read_bytes())
    name = manifest.network.policy[0].weight
    tensors[name] = tensors[name][:, :-1].copy()
    replace_weights(artifact, safetensors.numpy.save(tensors))
    with pytest.raises(ArtifactError, match=f"{name}: expected float32"):
        load_policy(artifact)


def test_check_compatible_names_task_version_and_spaces(saved):
    manifest = read_manifest(saved["ppo-autoscaling"][2])
    check_compatible(manifest, make_task("autoscaling"))
    with pytest.raises(ArtifactError, match="task: artifact is for 'autoscaling'"):
        check_compatible(manifest, make_task("shard-routing"))
    newer = make_task("autoscaling")
    newer.version = manifest.task_version + 1
    old, new = manifest.task_version, newer.version  # the Task's version, then one more
    with pytest.raises(ArtifactError, match=rf"autoscaling v{old}, the task is v{new}"):
        check_compatible(manifest, newer)
    wider = make_task("autoscaling")
    wider.action_space = spaces.MultiDiscrete([2] * 8)
    with pytest.raises(ArtifactError, match="action_space: artifact has MultiDiscrete"):
        check_compatible(manifest, wider)


# --- never unpickle ---------------------------------------------------------------------------


def test_canary_fires_when_unpickled(tmp_path):
    """The canary is live: unpickling its payload does create the file."""
    pickle.loads(pickle.dumps(Canary(tmp_path / "sang")))
    assert (tmp_path / "sang").exists()


def test_pickle_as_weights_is_refused_without_unpickling(artifact, tmp_path_factory):
    canary = tmp_path_factory.mktemp("canary") / "pwned"
    replace_weights(artifact, pickle.dumps(Canary(canary)))
    with pytest.raises(ArtifactError, match="not a safetensors file"):
        LearnedController(artifact)
    assert not canary.exists()


def test_sb3_zip_is_refused_without_unpickling(tmp_path):
    canary = tmp_path / "pwned"
    payload = pickle.dumps(Canary(canary))
    data = {"policy_class": {":serialized:": base64.b64encode(payload).decode()}}
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data", json.dumps(data))
        zf.writestr("policy.pth", payload)
    for load in (load_policy, LearnedController):
        with pytest.raises(ArtifactError, match=r"SB3 \.zip archives are refused"):
            load(archive)
    assert not canary.exists()


def test_a_file_linking_out_of_the_artifact_is_refused(artifact, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "weights.safetensors"
    (artifact / "weights.safetensors").rename(outside)
    (artifact / "weights.safetensors").symlink_to(outside)
    with pytest.raises(ArtifactError, match="links out of the artifact directory"):
        load_policy(artifact)


def test_an_unknown_manifest_field_is_refused_with_the_nearest(artifact):
    edit_manifest(artifact, lambda d: d.update(algorithms="PPO"))
    with pytest.raises(
        ArtifactError, match=r"manifest\.json: algorithms: .*did you mean 'algorithm'"
    ):
        load_policy(artifact)

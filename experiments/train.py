"""``swarmsim train CONFIG``: train a policy in the simulator, save it as a safe artifact,
evaluate it against the baselines and write a report with plots.

Writes ``results/runs/<name>/``: ``config.yaml`` (resolved), ``policy/`` (safetensors +
manifest), ``tb/`` (TensorBoard), ``checkpoints/`` (SB3 zips, for resuming only: they
unpickle, so they are never deployed), ``eval.json``, ``report.md`` and ``plots/``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from controllers.spec import Arm
from envs.llm_routing import LlmRoutingReward
from envs.roles import RoleReward
from envs.routing import RoutingReward
from envs.scaling import ScalingReward
from swarmsim.config import build
from swarmsim.errors import ConfigError, SwarmError, check

from .imitation import ImitationConfig
from .progress import Stages
from .seeds import EVAL_SEEDS

REWARDS = {"shard-routing": RoutingReward, "autoscaling": ScalingReward,
           "role-assignment": RoleReward, "llm-routing": LlmRoutingReward}  # fmt: skip
MASKED = ("shard-routing", "llm-routing")  # the Tasks with action masks


@dataclass(frozen=True)
class EvalConfig:
    """How the trained policy is compared with the baselines after training."""

    seeds: int = 5
    seed_start: int = EVAL_SEEDS.start  # held out: never a tuning seed (experiments.seeds)
    duration_s: float | None = None  # simulated seconds per evaluation run (None: scenario's)
    baselines: tuple[str, ...] = ()  # registered controller names of the same Task
    every_steps: int = 20_000  # periodic evaluation during training (0: none)
    episodes: int = 2  # episodes per periodic evaluation

    def __post_init__(self) -> None:
        check(self.seeds >= 1, "seeds", self.seeds, ">= 1")
        check(self.every_steps >= 0, "every_steps", self.every_steps, ">= 0")


@dataclass(frozen=True)
class TrainConfig:
    """One training experiment (see experiments/configs/*.yaml)."""

    name: str
    task: Literal["shard-routing", "autoscaling", "role-assignment", "llm-routing"]
    scenario: str = "escape-velocity"
    overrides: tuple[str, ...] = ()
    vary: dict[str, tuple[float, ...]] = field(default_factory=dict)  # per-episode: [low, high]
    mix: tuple[str, ...] = ()  # scenarios an episode may run instead (SwarmEnv's mix)
    episode_s: float | None = None
    algo: Literal["PPO", "MaskablePPO", "A2C", "DQN"] = "PPO"
    total_timesteps: int = 100_000
    n_envs: int = 1
    seed: int = 0
    net_arch: tuple[int, ...] = (64, 64)
    learning_rate: float = 3e-4
    n_steps: int = 1024  # rollout length per env (PPO, A2C)
    batch_size: int = 256
    gamma: float = 0.99
    ent_coef: float = 0.0
    checkpoint_every: int = 50_000
    reward: dict[str, float] = field(default_factory=dict)  # the Task's reward weights
    imitate: ImitationConfig = field(default_factory=ImitationConfig)  # warm start first
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        least = 0 if self.imitate.controller else 1  # 0 steps: the cloned policy alone
        check(self.total_timesteps >= least, "total_timesteps", self.total_timesteps,
              f">= {least}")  # fmt: skip
        if self.imitate.controller:
            self.demonstrator()  # an unknown name or parameter fails at load, naming the field
        check(self.n_envs >= 1, "n_envs", self.n_envs, ">= 1")
        check(self.algo != "DQN", "algo", self.algo, "PPO, MaskablePPO or A2C (the Tasks' "
              "MultiDiscrete actions have no DQN)")  # fmt: skip
        masked = ", ".join(MASKED)
        check(self.algo != "MaskablePPO" or self.task in MASKED, "algo", self.algo,
              f"MaskablePPO only for {masked} (the Tasks with action masks)")  # fmt: skip
        for key, bounds in self.vary.items():
            ok = len(bounds) == 2 and bounds[0] <= bounds[1]
            check(ok, f"vary.{key}", list(bounds), "[low, high] with low <= high")
        fields = {f.name for f in dataclasses.fields(REWARDS[self.task])}
        for key in self.reward:
            check(key in fields, f"reward.{key}", key, f"one of {sorted(fields)}")

    def demonstrator(self) -> Arm:
        """The heuristic cloned by the warm start (``NAME[:key=value...]`` of the Task)."""
        from controllers.spec import resolve

        try:
            return resolve(f"{self.task}={self.imitate.controller}", self.scenario)
        except SwarmError as err:
            raise ConfigError("imitate.controller", self.imitate.controller, str(err)) from None


def load_config(path: str | Path) -> TrainConfig:
    """A training config from YAML; errors name the file, the field and the value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("(file)", str(path), "an existing training config", source=str(path))
    try:
        return build(TrainConfig, yaml.safe_load(path.read_text()))
    except yaml.YAMLError as err:
        raise ConfigError("(yaml)", str(err).splitlines()[0], "valid YAML", str(path)) from None
    except ConfigError as err:
        raise err.in_file(str(path)) from None


EVAL_ENV_SEED = 20_000  # offset of the periodic evaluation's episodes from the config's seed


def make_env(cfg: TrainConfig, seed_offset: int = 0):
    """A SwarmEnv for the config's Task and scenario (wrapped in SB3's Monitor)."""
    from stable_baselines3.common.monitor import Monitor

    from envs import SwarmEnv

    reward = REWARDS[cfg.task](**cfg.reward)
    vary = {key: (low, high) for key, (low, high) in cfg.vary.items()}
    env = SwarmEnv(cfg.task, cfg.scenario, cfg.overrides, cfg.episode_s, reward=reward, vary=vary,
                   mix=cfg.mix)  # fmt: skip
    return Monitor(env)


def train(
    cfg: TrainConfig,
    out: Path,
    progress: bool = False,
    indent: str = "",
    command: str = "swarmsim train <config>",
) -> dict[str, Any]:
    """Train, save the artifact, evaluate and report (naming ``command``); returns the
    evaluation result. Each stage reports on stderr (``progress.Stages``): a bar if
    ``progress``, else lines; ``indent``: the run is a stage of another command."""
    import torch

    from controllers.store import save_policy

    from .report import REPORT_STAGES, write_report

    torch.set_num_threads(1)  # REFERENCE.md: 2 threads made a small-MLP PPO ~20% slower
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(_plain(dataclasses.asdict(cfg))))
    learning = 2 * bool(cfg.imitate.controller) + bool(cfg.total_timesteps)
    stages = Stages(learning + REPORT_STAGES, progress, indent=indent)
    model, env = _model(cfg, out)
    start = time.perf_counter()
    if cfg.imitate.controller:
        _warm_start(cfg, model, out, stages, command)
    if cfg.total_timesteps:
        _learn(cfg, model, out, stages)
    train_s = time.perf_counter() - start
    env.close()
    policy_dir = save_policy(model, out / "policy", task=cfg.task, scenario=cfg.scenario,
                             train_config=_plain(dataclasses.asdict(cfg)))  # fmt: skip
    return write_report(cfg, out, policy_dir, train_s, stages, command)


def _model(cfg: TrainConfig, out: Path):
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = DummyVecEnv([lambda i=i: make_env(cfg, i) for i in range(cfg.n_envs)])
    env.seed(cfg.seed)
    kwargs: dict[str, Any] = dict(
        policy_kwargs={"net_arch": list(cfg.net_arch)}, learning_rate=cfg.learning_rate,
        gamma=cfg.gamma, seed=cfg.seed, device="cpu", tensorboard_log=str(out / "tb"), verbose=0,
    )  # fmt: skip
    if cfg.algo == "A2C":
        return A2C("MlpPolicy", env, n_steps=cfg.n_steps, ent_coef=cfg.ent_coef, **kwargs), env
    ppo_kwargs = dict(n_steps=cfg.n_steps, batch_size=cfg.batch_size, ent_coef=cfg.ent_coef)
    if cfg.algo == "MaskablePPO":
        from sb3_contrib import MaskablePPO

        return MaskablePPO("MlpPolicy", env, **ppo_kwargs, **kwargs), env
    return PPO("MlpPolicy", env, **ppo_kwargs, **kwargs), env


def _warm_start(cfg: TrainConfig, model: Any, out: Path, stages: Stages, command: str) -> None:
    """Clone ``cfg.imitate.controller`` into the policy (see ``experiments.imitation``)."""
    import json

    from .imitation import clone, demonstrate

    env = make_env(cfg)
    heuristic = cfg.demonstrator().build()
    steps, epochs = cfg.imitate.steps, cfg.imitate.epochs
    title = f"demonstrations: {steps:,} steps of {cfg.imitate.controller} on {cfg.scenario}"
    with stages.stage(title, ticks=10) as stage:
        demos = demonstrate(env, heuristic, steps, cfg.gamma, cfg.seed + 10_000,
                            lambda n: stage.update(n / steps, f"{n:,} steps"))  # fmt: skip
        stage.result = f"{demos.episodes} episodes, mean reward {demos.mean_reward:.4g}"
    env.close()
    with stages.stage(f"behaviour cloning: {epochs} epochs", ticks=10) as stage:

        def show(epoch: int, nll: float) -> None:
            stage.update(epoch / epochs, f"epoch {epoch}/{epochs}, nll {nll:.4g}")

        stats = clone(model.policy, demos, cfg.imitate, cfg.seed, show)
        stage.result = (
            f"nll {stats['nll']:.4g}, value mse {stats['value_mse']:.4g}, agreement with "
            f"{cfg.imitate.controller} {stats['agreement']:.1%}"
        )
    (out / "imitation.json").write_text(json.dumps({**stats, "command": command}, indent=2) + "\n")


def _learn(cfg: TrainConfig, model: Any, out: Path, stages: Stages) -> None:
    """``model.learn`` for the config's steps, its progress a stage (a line each tenth)."""
    from .learn_progress import LearnProgress

    every = max(cfg.eval.every_steps // cfg.n_envs, 1) if cfg.eval.every_steps else 0
    title = f"{cfg.algo}: {cfg.total_timesteps:,} steps on {cfg.scenario}"
    with stages.stage(title, ticks=10) as stage:
        progress = LearnProgress(stage, cfg.total_timesteps, every)
        model.learn(cfg.total_timesteps, callback=_callbacks(cfg, out, progress),
                    tb_log_name="run")  # fmt: skip


def _callbacks(cfg: TrainConfig, out: Path, progress: Any) -> list:
    """Checkpoints, ``progress`` (a ``LearnProgress``), then the periodic evaluation."""
    from stable_baselines3.common.callbacks import CheckpointCallback

    every = max(cfg.checkpoint_every // cfg.n_envs, 1)
    callbacks: list = [CheckpointCallback(every, str(out / "checkpoints"), name_prefix=cfg.algo),
                       progress]  # fmt: skip
    if progress.eval_every:
        if cfg.algo == "MaskablePPO":
            from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as Eval
        else:
            from stable_baselines3.common.callbacks import EvalCallback as Eval
        from stable_baselines3.common.vec_env import DummyVecEnv

        evaluation = DummyVecEnv([lambda: make_env(cfg)])
        evaluation.seed(cfg.seed + EVAL_ENV_SEED)  # the same episodes at every evaluation run
        callbacks.append(Eval(evaluation, n_eval_episodes=cfg.eval.episodes,
                              eval_freq=progress.eval_every, log_path=str(out / "periodic_eval"),
                              callback_after_eval=progress.after_eval(), verbose=0))  # fmt: skip
    return callbacks


def _plain(value: Any) -> Any:
    """Tuples to lists, for YAML and JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

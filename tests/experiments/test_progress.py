"""Progress of long commands off a terminal: a flushed line as each stage starts and ends,
lines as a stage moves (each tenth of PPO's steps, the periodic evaluations), and `train`'s
stages in order on stderr by default when stderr is not a terminal."""

from __future__ import annotations

import io
import re
import sys

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList, EvalCallback
from stable_baselines3.common.monitor import Monitor

from experiments.cli import main
from experiments.learn_progress import LearnProgress, mean_episode_reward
from experiments.progress import Stages

TRAIN = """
name: tiny-progress
task: autoscaling
scenario: homelab
overrides: ["warmup_s=0"]
episode_s: 120
total_timesteps: 128
n_steps: 32
batch_size: 32
net_arch: [16]
checkpoint_every: 128
imitate: {controller: static, steps: 32, epochs: 5, batch_size: 32}
eval: {seeds: 1, duration_s: 60, baselines: [static], every_steps: 64, episodes: 1}
"""


class FlushLog(io.StringIO):
    """stderr that is not a terminal and records each line as flushed, or as late if more was
    written before a flush: a line left in a buffer while the command goes on is not seen."""

    def __init__(self) -> None:
        super().__init__()
        self.pending, self.unflushed = "", []
        self.flushed: list[str] = []
        self.late: list[str] = []

    def write(self, text: str) -> int:
        self.late += self.unflushed
        *done, self.pending = (self.pending + text).split("\n")
        self.unflushed = done  # complete lines not flushed yet
        return super().write(text)

    def flush(self) -> None:
        self.flushed += self.unflushed
        self.unflushed = []

    def isatty(self) -> bool:
        return False


def test_stages_print_numbered_start_and_end_lines_and_ticks():
    out = io.StringIO()
    stages = Stages(2, False, out)
    with stages.stage("first", ticks=4) as stage:
        for i in range(1, 11):
            stage.update(i / 10, f"at {i}")
        stage.result = "fine"
    with stages.stage("second") as stage:
        stage.update(0.5)  # no ticks: no line
        stage.say("  a line of its own")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] first ..."
    assert [ln.split()[0] for ln in lines[1:4]] == ["30%", "50%", "80%"]  # each quarter once
    assert lines[3].endswith("at 8") and re.fullmatch(r"\[1/2\] first: fine \(\d+ s\)", lines[4])
    assert lines[5:7] == ["[2/2] second ...", "  a line of its own"]
    assert lines[7].startswith("[2/2] second: done (") and len(lines) == 8


def test_a_single_quiet_stage_prints_only_its_own_lines_and_nesting_indents():
    out = io.StringIO()
    with Stages(1, False, out).stage("tune", announce=False) as stage:
        stage.say("trial 1/1")
    assert out.getvalue() == "trial 1/1\n"
    out = io.StringIO()
    with Stages(1, False, out, indent="  ").stage("inner") as stage:
        stage.say("x")
    assert out.getvalue().splitlines()[:2] == ["  inner ...", "  x"]


def test_learn_progress_says_a_line_each_tenth_and_around_each_evaluation():
    out = io.StringIO()
    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, n_epochs=1, seed=0,
                device="cpu", policy_kwargs={"net_arch": [8]})  # fmt: skip
    with Stages(1, False, out).stage("PPO", ticks=10) as stage:
        progress = LearnProgress(stage, 640, eval_every=320)
        periodic = EvalCallback(Monitor(gym.make("CartPole-v1")), n_eval_episodes=1, eval_freq=320,
                                callback_after_eval=progress.after_eval(), verbose=0)  # fmt: skip
        model.learn(640, callback=CallbackList([progress, periodic]))
    lines = out.getvalue().splitlines()
    ticks = [ln for ln in lines if re.match(r"\s+\d+%", ln)]
    assert len(ticks) == 9  # 10% .. 90%; the closing line says 100%
    steps = [int(re.search(r"(\d+)/640 steps", ln).group(1)) for ln in ticks]
    assert steps == sorted(steps) and 64 <= steps[0] <= 70 and steps[-1] >= 576
    assert all("steps/s" in ln and "mean episode reward" in ln for ln in ticks)  # short episodes
    evals = [ln.strip() for ln in lines if "periodic evaluation" in ln]
    assert evals[0] == "periodic evaluation at 320 steps ..." and len(evals) == 4
    assert re.match(
        r"periodic evaluation at 320 steps: mean episode reward [\d.]+ over 1 ", evals[1]
    )
    assert lines[-1].startswith("PPO: 640/640 steps, ") and "mean episode reward" in lines[-1]


def test_mean_episode_reward_is_none_before_the_first_episode():
    assert mean_episode_reward([]) is None and mean_episode_reward(None) is None
    assert mean_episode_reward([{"r": 1.0}, {"r": 3.0}]) == 2.0


def test_train_off_a_terminal_prints_each_stage_in_order_flushed(tmp_path, monkeypatch):
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN)
    err = FlushLog()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["train", str(config), "--out", str(tmp_path / "run")]) == 0  # no --progress
    lines = err.flushed
    assert not [ln for ln in err.late if ln.startswith(("[", "  "))]
    heads = [ln.split(" ...")[0].split(":")[0] for ln in lines if ln.startswith("[")]
    stages = ["[1/5] demonstrations", "[2/5] behaviour cloning", "[3/5] PPO",
              "[4/5] evaluation", "[5/5] plots and report (2 recorded runs)"]  # fmt: skip
    assert heads == [h for h in stages for _ in (0, 1)]  # start, end
    at = {h: next(i for i, ln in enumerate(lines) if ln.startswith(h)) for h in stages}
    assert "32 steps of static" in lines[at[stages[0]]]
    end = {h: max(i for i, ln in enumerate(lines) if ln.startswith(h)) for h in stages}
    assert "episodes, mean reward" in lines[end[stages[0]]]
    assert "agreement with static 100.0%" in lines[end[stages[1]]]
    ppo = lines[at[stages[2]] + 1 : end[stages[2]]]
    assert sum(bool(re.match(r"\s+\d+%  \d+/128 steps, \d+ steps/s", ln)) for ln in ppo) == 9
    assert sum("periodic evaluation at" in ln for ln in ppo) == 4  # at 64 and 128, each twice
    assert "128/128 steps" in lines[end[stages[2]]]
    arms = lines[at[stages[3]] + 1 : end[stages[3]]]
    assert [a.split(":")[0].strip() for a in arms] == [
        str(tmp_path / "run" / "policy"), "autoscaling=static"]  # fmt: skip
    assert all("1 seeds, latency_s.p99 " in a for a in arms)


def test_periodic_evaluations_repeat_across_identical_runs(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text(TRAIN)
    results = []
    for run in ("a", "b"):
        assert main(["train", str(config), "--out", str(tmp_path / run), "--no-progress"]) == 0
        with np.load(tmp_path / run / "periodic_eval" / "evaluations.npz") as data:
            results.append(data["results"].copy())
    assert results[0].shape[0] == 2 and np.array_equal(results[0], results[1])

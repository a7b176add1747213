"""SB3 callbacks that report a training run's progress through a ``progress.Stage``: its bar
on a terminal, otherwise a flushed line at each tenth of the steps (steps, steps/s, the mean
reward of recent episodes) and a line before and after each periodic evaluation."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from .progress import Stage


class LearnProgress(BaseCallback):
    """Progress of ``model.learn(total)``; ``eval_every``: the periodic evaluation's period in
    callback calls (0: none), announced when due, so this goes before the evaluation callback
    in the list; ``after_eval()`` is the evaluation's ``callback_after_eval``."""

    def __init__(self, stage: Stage, total: int, eval_every: int = 0) -> None:
        super().__init__()
        self.stage, self.total, self.eval_every = stage, total, eval_every
        self.start = self.eval_start = time.perf_counter()
        self.next = 0  # the step count at which the bar next moves (every 1%)

    def _on_training_start(self) -> None:
        self.start = time.perf_counter()

    def _on_step(self) -> bool:
        if self.eval_every and self.n_calls % self.eval_every == 0:
            self.eval_start = time.perf_counter()
            self.stage.say(f"  periodic evaluation at {self.num_timesteps:,} steps ...")
        if self.num_timesteps >= self.next:
            self.next = self.num_timesteps + max(self.total // 100, 1)
            self.stage.update(self.num_timesteps / self.total, self.summary())
        return True

    def _on_training_end(self) -> None:
        self.stage.result = self.summary()

    def summary(self) -> str:
        """Steps done, steps/s so far and the mean reward of the recent episodes, if any."""
        rate = self.num_timesteps / max(time.perf_counter() - self.start, 1e-9)
        line = f"{self.num_timesteps:,}/{self.total:,} steps, {rate:,.0f} steps/s"
        reward = mean_episode_reward(self.model.ep_info_buffer if self.model else None)
        return line if reward is None else f"{line}, mean episode reward {reward:.4g}"

    def after_eval(self) -> BaseCallback:
        return _EvalLine(self)


class _EvalLine(BaseCallback):
    """The line after a periodic evaluation: its mean episode reward and wall time."""

    def __init__(self, progress: LearnProgress) -> None:
        super().__init__()
        self.progress = progress

    def _on_step(self) -> bool:
        wall = time.perf_counter() - self.progress.eval_start
        reward = getattr(self.parent, "last_mean_reward", float("nan"))
        episodes = getattr(self.parent, "n_eval_episodes", "?")
        self.progress.stage.say(f"  periodic evaluation at {self.num_timesteps:,} steps: mean "
                                f"episode reward {reward:.4g} over {episodes} episodes "
                                f"({wall:.0f} s)")  # fmt: skip
        return True


def mean_episode_reward(buffer: Any) -> float | None:
    """The mean return of the episodes in SB3's ``ep_info_buffer`` (None before the first)."""
    if not buffer:
        return None
    return float(np.mean([info["r"] for info in buffer]))

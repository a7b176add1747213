"""Behaviour-cloning warm start: returns, cloning a heuristic, and its config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from experiments.cli import main
from experiments.imitation import discounted_returns

CONFIG = """
name: tiny-clone
task: autoscaling
scenario: homelab
overrides: ["warmup_s=0"]
episode_s: 300
total_timesteps: 0
n_steps: 32
batch_size: 32
net_arch: [16]
imitate: {{controller: {controller}, steps: 64, epochs: 30, batch_size: 32}}
eval: {{seeds: 1, duration_s: 120, baselines: [static], every_steps: 0}}
"""


def test_returns_restart_at_episode_ends():
    rewards = np.array([1.0, 1.0, 1.0, 2.0, 2.0])
    ends = np.array([False, False, True, False, False])
    got = discounted_returns(rewards, ends, gamma=0.5)
    np.testing.assert_allclose(got, [1.75, 1.5, 1.0, 3.0, 2.0])


def test_cloned_policy_reproduces_the_heuristic(tmp_path, capsys):
    config = tmp_path / "clone.yaml"
    config.write_text(CONFIG.format(controller="static"))
    out = tmp_path / "run"
    assert main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
    stats = json.loads((out / "imitation.json").read_text())
    assert stats["demo_steps"] == 64
    assert stats["agreement"] == 1.0  # static always holds: one action to learn
    assert "behaviour cloning of `static`" in (out / "report.md").read_text()
    # the artifact decides like the heuristic it cloned in the evaluation too
    result = json.loads((out / "eval.json").read_text())
    mine, static = (
        result["controllers"][str(out / "policy")],
        result["controllers"]["autoscaling=static"],
    )
    assert mine["gpu_hours"]["mean"] == pytest.approx(static["gpu_hours"]["mean"])


def test_unknown_heuristic_names_the_field(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(CONFIG.format(controller="hpx"))
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "imitate.controller" in err and "hpa" in err

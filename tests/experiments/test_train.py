"""`swarmsim train` on tiny budgets: every output of a run, and config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.train import load_config

TINY = """
name: tiny-{task}
task: {task}
scenario: homelab
overrides: ["warmup_s=0"]
episode_s: {episode_s}
algo: {algo}
total_timesteps: 64
n_steps: 32
batch_size: 32
net_arch: [16]
checkpoint_every: 32
eval: {{seeds: 2, duration_s: 120, baselines: [{baseline}], every_steps: 0}}
"""


def write(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(TINY.format(**fields))
    return path


@pytest.mark.parametrize(
    ("task", "algo", "baseline", "episode_s"),
    [("autoscaling", "PPO", "static", 300), ("shard-routing", "MaskablePPO", "random", 60)],
)
def test_train_writes_policy_eval_report_plots_and_logs(tmp_path, capsys, task, algo, baseline,
                                                         episode_s):  # fmt: skip
    out = tmp_path / "run"
    config = write(tmp_path, task=task, algo=algo, baseline=baseline, episode_s=episode_s)
    assert main(["train", str(config), "--out", str(out), "--no-progress"]) == 0
    assert "report:" in capsys.readouterr().out
    for name in ("config.yaml", "policy/manifest.json", "policy/weights.safetensors",
                 "eval.json", "report.md", "plots/latency_cdf.png", "plots/replicas.png",
                 "plots/cost_vs_slo.png"):  # fmt: skip
        assert (out / name).is_file(), name
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    assert any((out / "checkpoints").glob("*.zip"))
    result = json.loads((out / "eval.json").read_text())
    assert set(result["controllers"]) == {str(out / "policy"), f"{task}={baseline}"}
    assert result["seeds"] == [0, 1] and "met" in result["verdict"]  # held-out seeds
    stats = result["controllers"][str(out / "policy")]
    assert stats[f"controllers.{task}.decisions"]["mean"] > 0  # the guardrail counted them
    assert "| policy |" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\ntask: autoscaling\nalgo: MaskablePPO\n", "algo"),
        ("name: x\ntask: autoscaling\nreward: {latency: 1.0}\n", "reward.latency"),
        ("name: x\ntask: routing\n", "task"),
        ("name: x\ntask: autoscaling\neval: {seedz: 3}\n", "eval.seedz"),
        ("name: x\ntask: llm-routing\nvary: {rate: [1.3, 0.9]}\n", "vary.rate"),
    ],
)
def test_bad_configs_name_the_file_and_field(tmp_path, capsys, text, field):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and f" {field}: " in err


def test_shipped_configs_load():
    for path in sorted((Path(__file__).parents[2] / "experiments" / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert cfg.eval.baselines, path

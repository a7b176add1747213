"""Every built-in heuristic, attached to its Task, gives the same run twice: the same
scenario, seed and controller give the same simulation result bit for bit, whatever the
controller draws at random."""

from __future__ import annotations

import json

import pytest

from controllers.registry import controller_names
from controllers.spec import resolve
from experiments.evaluate import run_arm
from swarmsim.scenario_files import load_scenario

SCENARIO = {  # a short run of a scenario where each Task decides
    "shard-routing": "hot-shards",
    "llm-routing": "prefix-cache",
    "autoscaling": "diurnal",
    "role-assignment": "shared-gpus",
    "inference-strategy": "homelab",
}
SHORT = ("duration_s=120", "warmup_s=10")
ARMS = [
    (task, name)
    for task, names in sorted(controller_names().items())
    for name in sorted(names)
    if name != "faulty"
]


def test_every_task_has_a_scenario_here() -> None:
    assert set(SCENARIO) == set(controller_names())


@pytest.mark.parametrize(("task", "name"), ARMS, ids=[f"{t}={n}" for t, n in ARMS])
def test_a_heuristic_gives_the_same_run_twice(task: str, name: str) -> None:
    scenario = load_scenario(SCENARIO[task], SHORT)
    runs = []
    for _ in range(2):
        summary = run_arm(scenario, 7, resolve(f"{task}={name}"))
        summary.pop("wall_s")
        runs.append(json.dumps(summary, sort_keys=True, default=str))
    assert runs[0] == runs[1]

"""Inference-strategy controllers: fixed arms, bandits learning through feedback, and runs."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.registry import make_controller
from controllers.strategy import LABELS, BanditStrategy, query_class
from envs.attach import attach
from envs.registry import make_task
from envs.strategy import MAX_CLASSES, QUERY_FEATURES, STRATEGIES
from swarmsim import Simulation, load_scenario

# Per class, the mean reward of each arm: class 0's best arm is 1, class 1's is 2.
MEANS = np.array([[0.90, 0.95, 0.80, 0.85], [0.60, 0.50, 0.70, 0.40]])
SD = 0.1


def obs_of(qclass: int) -> np.ndarray:
    obs = np.zeros(QUERY_FEATURES + 3, dtype=np.float32)
    obs[qclass] = 1.0
    return obs


@pytest.mark.parametrize("name", ["ucb1", "thompson"])
def test_bandit_learns_each_classes_best_arm_from_feedback_alone(name):
    """A synthetic Gaussian problem per class, 1,500 queries each (arm gaps 0.05-0.1, sd
    0.1): both algorithms play each class's best arm in most of the last 500 pulls."""
    ctl = make_controller("inference-strategy", name)
    rng = np.random.default_rng(0)
    late = {0: [], 1: []}
    for t in range(3000):
        c = t % 2
        obs = obs_of(c)
        action = ctl.act(obs)
        arm = int(action[0])
        ctl.feedback(obs, action, rng.normal(MEANS[c, arm], SD))
        if t >= 2000:
            late[c].append(arm)
    for c, best in ((0, 1), (1, 2)):
        assert np.mean(np.array(late[c]) == best) > 0.8
    share = ctl.stats()["arm_share_class1"]
    assert max(share, key=share.get) == LABELS[2]


def test_query_class_is_read_from_the_observation():
    assert [query_class(obs_of(c)) for c in range(MAX_CLASSES)] == list(range(MAX_CLASSES))


def test_thompson_is_reproducible_given_its_seed_and_reset_forgets():
    def pulls(ctl: BanditStrategy) -> list[int]:
        out = []
        for t in range(50):
            action = ctl.act(obs_of(t % 2))
            ctl.feedback(obs_of(t % 2), action, float(action[0]) / 10)
            out.append(int(action[0]))
        return out

    a, b = (
        make_controller("inference-strategy", "thompson"),
        make_controller("inference-strategy", "thompson"),
    )
    first = pulls(a)
    assert first == pulls(b)
    a.reset()
    assert pulls(a) == first
    assert pulls(make_controller("inference-strategy", "thompson", seed=1)) != first


def test_fixed_rejects_an_arm_out_of_range():
    with pytest.raises(ValueError, match="arm must be in"):
        make_controller("inference-strategy", "fixed", arm=len(STRATEGIES))


def run(name: str, seed: int = 0, **kw) -> tuple[dict, object]:
    scenario = load_scenario("homelab", ["duration_s=900"])
    sim = Simulation(scenario, seed=seed)
    ctl = make_controller("inference-strategy", name, **kw) if name else None
    if ctl is not None:
        attach(sim, make_task("inference-strategy"), ctl)
    summary = sim.run()
    del summary["wall_s"]
    return summary, ctl


def test_the_static_controller_reproduces_the_default_run_exactly():
    assert run("static")[0] == run("")[0]


def test_a_bandit_run_is_deterministic_and_learns_from_every_ended_query():
    (a, ctl), (b, _) = run("thompson"), run("thompson")
    assert a == b
    pulls = sum(int(bd.counts.sum()) for bd in ctl.bandit.bandits.values())
    q = a["queries"]
    # every query that reached its synthesizer and ended was credited: all completed ones
    assert q["completed"] <= pulls <= q["submitted"] - q["in_flight"]
    assert run("thompson", seed=1)[0] != a


def test_controllers_without_feedback_are_never_told_outcomes():
    sim = Simulation(load_scenario("homelab", ["duration_s=900"]), seed=0)
    attach(sim, make_task("inference-strategy"), make_controller("inference-strategy", "int8"))
    assert sim.on_outcome is None and sim.on_configure is not None
    with pytest.raises(ValueError, match="already taken"):
        attach(sim, make_task("inference-strategy"), make_controller("inference-strategy", "ucb1"))


def test_by_class_plays_the_arm_named_for_each_class():
    ctl = make_controller("inference-strategy", "by-class", c0=1, c1=2)
    assert [int(ctl.act(obs_of(c))[0]) for c in (0, 1, 2)] == [1, 2, 0]
    with pytest.raises(ValueError, match=r"c0\.\.c7"):
        make_controller("inference-strategy", "by-class", c9=1)

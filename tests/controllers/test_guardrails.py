"""Guardrails: each trigger hands the decision to the fallback, and is counted."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from fakes import view

from controllers.guardrails import Guardrail
from envs.routing import MAX_SHARDS, ShardRoutingTask, mask_from_obs
from swarmsim.view import QueryInfo

TASK = ShardRoutingTask()
VIEW = view(
    [{"id": 0, "shard": 0}, {"id": 1, "shard": 0, "healthy": False}, {"id": 2, "shard": 1}],
    n_shards=2,
    query=QueryInfo(1, 0, "small", 100, 10, np.array([0.5, 0.1], dtype=np.float32)),
)
OBS = TASK.observe(VIEW)
GOOD = np.zeros(MAX_SHARDS, dtype=np.int64)
GOOD[0], GOOD[1] = 1, 1


class Fixed:
    task = "shard-routing"

    def __init__(self, action=GOOD, delay_s: float = 0.0, error: bool = False):
        self.action, self.delay_s, self.error = action, delay_s, error
        self.calls = 0

    def act(self, obs):
        self.calls += 1
        if self.error:
            raise RuntimeError("policy exploded")
        time.sleep(self.delay_s)
        return self.action

    def reset(self):
        """Stateless."""


FALLBACK = np.full(MAX_SHARDS, 0, dtype=np.int64)
FALLBACK[0] = 1


def guard(policy, **kw) -> Guardrail:
    return Guardrail(policy, TASK.action_space, fallback=Fixed(FALLBACK), mask=mask_from_obs, **kw)


def test_mask_from_obs_equals_the_tasks_mask():
    assert (mask_from_obs(OBS) == TASK.action_masks(VIEW)).all()


def test_a_valid_action_passes_through_uncounted():
    g = guard(Fixed())
    assert (g.act(OBS) == GOOD).all()
    assert g.stats() == {"decisions": 1, "fallbacks": dict.fromkeys(g.fallbacks, 0)}


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (Fixed(error=True), "raised"),
        (Fixed(delay_s=0.01), "deadline"),
        (Fixed(action=np.full(MAX_SHARDS, np.nan)), "invalid"),
        (Fixed(action=GOOD[:3]), "invalid"),  # wrong shape
        (Fixed(action=np.full(MAX_SHARDS, 99)), "invalid"),  # out of range
        (Fixed(action=np.full(MAX_SHARDS, 0.5)), "invalid"),  # not integral
        (Fixed(action=np.where(np.arange(MAX_SHARDS) == 0, 2, 0)), "invalid"),  # masked slot
    ],
)
def test_each_trigger_falls_back_and_is_counted(policy, reason):
    # the deadline case sleeps 10 ms past a 5 ms deadline; the others get a deadline no
    # loaded machine misses, so that a slow call is not counted as "deadline" instead
    g = guard(policy, deadline_s=0.005 if reason == "deadline" else 1.0)
    assert (g.act(OBS) == FALLBACK).all()
    assert g.fallbacks[reason] == 1 and sum(g.fallbacks.values()) == 1


def test_observation_outside_training_ranges_never_reaches_the_policy():
    policy = Fixed()
    g = guard(policy, obs_low=np.zeros_like(OBS), obs_high=np.full_like(OBS, 0.9))
    assert (g.act(OBS) == FALLBACK).all()  # relevance 0.75 fine, but accepting flags are 1.0
    assert policy.calls == 0 and g.fallbacks["out_of_range"] == 1


def test_default_fallback_is_the_tasks_heuristic_controller():
    g = Guardrail(Fixed(error=True), TASK.action_space)
    action = g.act(OBS)
    assert action[0] == 1 and action[1] == 1  # least-outstanding: the accepting replicas


class Hangs(Fixed):
    """A policy stuck in its own loop, catching every Exception as careless code does."""

    def act(self, obs):
        self.calls += 1
        end = time.monotonic() + 30.0
        while time.monotonic() < end:
            with contextlib.suppress(Exception):
                time.sleep(0.01)
        return GOOD


def test_a_preempting_guardrail_interrupts_a_hung_policy_at_its_deadline():
    g = guard(Hangs(), deadline_s=0.05, preempt=True)
    start = time.monotonic()
    assert (g.act(OBS) == FALLBACK).all()
    assert time.monotonic() - start < 1.0  # one deadline, not the policy's 30 s
    assert g.fallbacks["deadline"] == 1
    assert (guard(Fixed(), deadline_s=0.05, preempt=True).act(OBS) == GOOD).all()
    time.sleep(0.1)  # the timer was cancelled: no stray alarm lands after a decision


def test_without_preempt_the_deadline_is_only_measured():
    g = guard(Fixed(delay_s=0.2), deadline_s=0.05)
    start = time.monotonic()
    assert (g.act(OBS) == FALLBACK).all() and time.monotonic() - start >= 0.2
    assert g.fallbacks["deadline"] == 1

"""Hostile peers against a live swarm: a rogue process on every bound socket, then a
flooding client, are cut off with no crash and no hang while honest queries are served
(experiments/hostile.py at small sizes, on one swarm; its full sizes are in
results/reliability.md)."""

from __future__ import annotations

import pytest

from experiments.hostile import Attack, attack
from live.guard import GuardConfig

GUARD = GuardConfig(rate_qps=20, burst=20, throttle_budget=200)


@pytest.fixture(scope="module")
def hostile() -> dict:
    return attack((Attack(3000), Attack(30_000, flood=True)), rate=2.0, honest_s=6.0, guard=GUARD)


def test_no_crash_no_hang_and_every_honest_query_served(hostile):
    assert hostile["crashes"] == 0 and hostile["hangs"] == 0
    honest = hostile["honest"]
    assert honest["sent"] >= 8 and honest["answers"] == {"completed": honest["sent"]}, honest
    assert hostile["in_flight"] == 0


def test_a_rogue_on_every_bound_socket_is_cut_off(hostile):
    run = hostile["attacks"][0]
    assert run["rogue"]["sent"] >= 2900
    assert run["banned"] == 3  # its identity on each of the workers, clients, control sockets
    # once banned, nothing it sends is decoded or answered
    assert run["ignored"] >= run["rogue"]["sent"] - 3 * (GUARD.error_budget + 1) - 50
    assert run["rogue"]["replies"] <= 3 * GUARD.error_budget


def test_a_flooding_client_is_throttled_then_cut_off_in_bounded_memory(hostile):
    run = hostile["attacks"][1]
    assert run["banned"] == 1 and run["throttled_dropped"] == GUARD.throttle_budget + 1
    assert run["rogue"]["sent"] >= 10_000
    # the rest of the flood, dropped undecoded
    assert run["ignored"] >= run["rogue"]["sent"] - GUARD.burst - GUARD.throttle_budget - 100
    # admitted: its burst and what its bucket refilled meanwhile, never the flood
    assert run["submitted"] - run["throttled_dropped"] <= GUARD.burst + 60
    assert hostile["rss_peak_mb"] - hostile["rss_start_mb"] < 50

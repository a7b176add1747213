"""LLM-routing heuristics on one hand-built observation: four replica slots, slot 2 not
accepting, each heuristic's pick worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from controllers.llm_routing import decode
from controllers.registry import make_controller
from envs.llm_routing import MAX_REPLICAS, REPLICA_FEATURES
from envs.task import squash


def observation(
    rows: list[tuple[int, int, float, float]], pending: tuple[float, ...] = ()
) -> np.ndarray:
    """Slots from (accepting, outstanding, overlap fraction, KV utilisation); the pending
    overlap per slot (default: the overlap, nothing queued)."""
    obs = np.zeros(MAX_REPLICAS * REPLICA_FEATURES + 2, dtype=np.float32)
    for r, (accepting, outstanding, overlap, kv) in enumerate(rows):
        obs[r * REPLICA_FEATURES : r * REPLICA_FEATURES + 5] = (
            1.0, accepting, squash(outstanding, 4.0), overlap, kv,
        )  # fmt: skip
        obs[r * REPLICA_FEATURES + 7] = pending[r] if pending else overlap
    return obs


# slot: accepting, outstanding, overlap, KV use
OBS = observation(
    [
        (1, 2, 0.0, 0.1),  # idle-ish, nothing cached
        (1, 1, 0.5, 0.9),  # half the prompt cached, cache nearly full
        (0, 0, 1.0, 0.0),  # everything cached but not accepting: never chosen
        (1, 3, 1.0, 0.5),  # everything cached, busiest
    ]
)


def pick(name: str, obs: np.ndarray = OBS, **kw) -> int:
    action = make_controller("llm-routing", name, **kw).act(obs)
    assert action.shape == (1,) and action.dtype == np.int64
    return int(action[0])


def test_decode_recovers_counts_and_fractions():
    d = decode(OBS)
    assert d.accepting[:5].tolist() == [True, True, False, True, False]
    assert d.outstanding[:4].tolist() == [2, 1, 0, 3]
    assert d.overlap[:4] == pytest.approx([0.0, 0.5, 1.0, 1.0])


def test_least_outstanding_takes_the_fewest_jobs():
    assert pick("least-outstanding") == 1  # 1 job; slot 2 has 0 but does not accept


def test_round_robin_rotates_over_the_accepting_slots():
    ctl = make_controller("llm-routing", "round-robin")
    assert [int(ctl.act(OBS)[0]) for _ in range(4)] == [0, 1, 3, 0]


def test_power_of_two_takes_the_lighter_of_its_pair_and_is_seeded():
    picks = [pick("power-of-two", seed=s) for s in range(20)]
    assert set(picks) <= {0, 1}  # slot 3 (3 jobs) loses every pair it is drawn in
    assert picks == [pick("power-of-two", seed=s) for s in range(20)]


def test_kv_overlap_weighs_blocks_to_prefill_against_blocks_in_decode():
    # cost per prompt block: w x (1 - overlap) + outstanding
    # w=1: 3.0, 1.5, -, 3.0 -> slot 1; w=4: 6, 3, -, 3 -> slots 1 and 3 tie, the lower wins
    assert pick("kv-overlap") == 1
    assert pick("kv-overlap", overlap_weight=4.0) == 1
    # w=8: 10, 5, -, 3 -> the full hit on slot 3 outweighs its two extra jobs
    assert pick("kv-overlap", overlap_weight=8.0) == 3


def test_llm_d_scores_prefix_queue_and_kv_use():
    # 3 x overlap + 2 x (1 - outstanding/(outstanding+4)) + 2 x (1 - kv):
    # slot 0: 0 + 2 x 4/6 + 1.8 = 3.133; slot 1: 1.5 + 2 x 4/5 + 0.2 = 3.3;
    # slot 3: 3 + 2 x 4/7 + 1.0 = 5.143 -> slot 3
    assert pick("llm-d") == 3
    assert pick("llm-d", w_prefix=0.0) == 0  # load and KV use alone: 3.133 > 2.143 > 1.8


def test_pending_weight_counts_the_prompts_queued_on_a_replica_as_cached():
    # slot 0's prompt is queued there: pending overlap 1.0 where 0.0 is cached
    obs = observation([(1, 2, 0.0, 0.1), (1, 1, 0.5, 0.9), (0, 0, 1.0, 0.0), (1, 3, 1.0, 0.5)],
                      pending=(1.0, 0.5, 1.0, 1.0))  # fmt: skip
    assert decode(obs).pending[:4] == pytest.approx([1.0, 0.5, 1.0, 1.0])
    # kv-overlap w=4 as above: 6, 3, -, 3 -> slot 1; fully pending: 2, 3, -, 3 -> slot 0
    assert pick("kv-overlap", obs, overlap_weight=4.0) == 1
    assert pick("kv-overlap", obs, overlap_weight=4.0, pending_weight=1.0) == 0
    # llm-d: slot 0 scores 3 more with its pending prefix: 6.133 > 5.143 (slot 3)
    assert pick("llm-d", obs) == 3
    assert pick("llm-d", obs, pending_weight=1.0) == 0
    with pytest.raises(ValueError, match="pending_weight"):
        make_controller("llm-routing", "llm-d", pending_weight=1.5)


def test_no_accepting_replica_answers_slot_zero():
    none = observation([(0, 0, 0.0, 0.0), (0, 1, 1.0, 0.0)])
    for name in ("round-robin", "least-outstanding", "power-of-two", "kv-overlap", "llm-d"):
        assert pick(name, none) == 0


def test_bare_names_shared_with_shard_routing_keep_meaning_shard_routing():
    from controllers.spec import resolve

    assert resolve("least-outstanding").task == "shard-routing"
    assert resolve("llm-routing=least-outstanding").task == "llm-routing"
    assert resolve("kv-overlap").task == "llm-routing"  # a name of its own

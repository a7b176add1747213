"""Request bounds, the per-peer guard and the admission estimate, without processes."""

from __future__ import annotations

import math
import time

import pytest

from live.admission import Admission, AdmissionConfig
from live.errors import ProtocolError
from live.guard import GuardConfig, PeerGuard
from live.limits import (
    MAX_OUTPUT_TOKENS,
    MAX_QUESTION_CHARS,
    RequestLimits,
    context_window,
    deadline_in,
    text_pool,
)
from live.protocol import MAX_PREFIX_BLOCKS
from live.state import Query
from swarmsim.errors import ConfigError
from swarmsim.profiles import load_profiles
from swarmsim.scenario_files import load_scenario

OK = {"qclass": 0, "input_tokens": 1000, "output_tokens": 100, "pool": 3}


@pytest.fixture(scope="module")
def limits() -> RequestLimits:
    return RequestLimits(load_scenario("homelab"), load_profiles(), n_pool=10)


def test_the_context_window_is_what_fits_beside_the_weights_on_the_largest_device():
    profiles = load_profiles()
    small = profiles.model("llm-small")
    assert context_window(profiles, "llm-small") == int((80 - small.vram_gb) * 1e9 / 524288)
    assert context_window(profiles, "llm-large") < context_window(profiles, "llm-small")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qclass": 2}, "qclass 2"),
        ({"qclass": -1}, "qclass -1"),
        ({"pool": 10}, "pool 10"),
        ({"input_tokens": -1}, "input_tokens -1"),
        ({"output_tokens": MAX_OUTPUT_TOKENS + 1}, "output_tokens"),
        ({"input_tokens": 10**9}, "context window"),
        ({"qclass": True}, "integer fields"),
        ({"extra": "x" * 100}, "unknown query fields"),
        ({"blocks": [1] * (MAX_PREFIX_BLOCKS + 1)}, "blocks"),
    ],
)
def test_a_query_out_of_bounds_is_refused_naming_its_field(limits, change, field):
    with pytest.raises(ProtocolError, match=field):
        limits.query({**OK, **change}, "t")


def test_a_query_within_bounds_passes_and_long_task_ids_do_not(limits):
    assert limits.query(OK, "t").input_tokens == 1000
    large = limits.windows[1]
    assert limits.query({**OK, "qclass": 1, "input_tokens": large - 100}, "t").qclass == 1
    with pytest.raises(ProtocolError, match="task id of 129 chars"):
        limits.query(OK, "t" * 129)


def test_a_free_text_question_is_bounded_and_stands_for_a_pool_query(limits):
    text = {"qclass": 0, "input_tokens": 10, "output_tokens": 10, "text": "What is a shard?"}
    f = limits.query(text, "t")
    assert f.text == "What is a shard?" and f.pool == text_pool(f.text, 10) == f.pool
    assert limits.query({**text, "pool": 7}, "t").pool == 7  # a pool given is kept
    for bad, what in [("", "text"), ("  ", "text"), ("x" * (MAX_QUESTION_CHARS + 1), "text"),
                      (b"bytes", "text"), (12, "text")]:  # fmt: skip
        with pytest.raises(ProtocolError, match=what):
            limits.query({**text, "text": bad}, "t")
    with pytest.raises(ProtocolError, match="pool"):  # without text, a pool is required
        limits.query({"qclass": 0, "input_tokens": 10, "output_tokens": 10}, "t")


def test_a_client_deadline_can_shorten_but_not_lengthen_nor_be_nan_or_past():
    now = time.time()
    assert deadline_in(None, now, 80.0) == 80.0
    assert deadline_in(now + 2.0, now, 80.0) == pytest.approx(2.0)
    assert deadline_in(now + 1e6, now, 80.0) == 80.0
    for bad in (math.nan, math.inf, now - 1.0):
        with pytest.raises(ProtocolError, match="deadline"):
            deadline_in(bad, now, 80.0)


def test_a_peer_past_its_error_budget_is_banned_then_forgiven():
    guard = PeerGuard(GuardConfig(error_budget=3, window_s=10, ban_s=5), now=0.0)
    assert [guard.error("clients", b"r", 1.0) for _ in range(4)] == [True, True, True, False]
    assert guard.ignored("clients", b"r", 2.0) and not guard.ignored("workers", b"r", 2.0)
    assert not guard.ignored("clients", b"other", 2.0)
    assert not guard.ignored("clients", b"r", 6.5)  # the ban has run out
    assert guard.counts["banned"] == 1 and guard.counts["ignored"] == 1


def test_errors_spread_over_windows_never_ban():
    guard = PeerGuard(GuardConfig(error_budget=3, window_s=1), now=0.0)
    assert all(guard.error("clients", b"r", t * 0.5) for t in range(40))  # 2 per window
    assert guard.counts["banned"] == 0


def test_the_token_bucket_throttles_past_its_rate_and_bans_past_the_budget():
    guard = PeerGuard(GuardConfig(rate_qps=10, burst=5, throttle_budget=3), now=0.0)
    assert [guard.admit(b"c", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert guard.admit(b"c", 0.1)  # 0.1 s at 10/s refilled one token
    assert [guard.admit(b"c", 0.1) for _ in range(3)] == [False] * 3
    assert guard.ignored("clients", b"c", 0.2)  # four throttled: past the budget of three


def test_refusals_share_one_reply_budget_and_the_peer_table_is_bounded():
    guard = PeerGuard(GuardConfig(reply_qps=5, max_peers=100), now=0.0)
    replies = [guard.error("clients", f"r{i}".encode(), 0.0) for i in range(1000)]
    assert sum(replies) == 5 and guard.counts["unanswered"] == 995
    assert len(guard.peers) == 100


class _Pool:
    def __init__(self, size: int) -> None:
        self.size = size


class _Roster:
    def __init__(self) -> None:
        self.pools = {("a", -1): _Pool(2), ("b", 0): _Pool(1), ("b", 1): _Pool(1)}


def _query(qid: int) -> Query:
    return Query(qid, b"c", "t", 0.0, 10.0, 0, "small", 10, 10, 0)


def test_admission_predicts_from_the_work_ahead_and_refuses_past_the_budget():
    adm = Admission(AdmissionConfig(objective="slo", slo_target=0.3), _Roster(),
                    lambda q: ["a", "b"], slo_s=10.0)  # fmt: skip
    assert adm.predict(_query(0)) == 0  # nothing measured yet: a cold swarm admits
    adm.observe("a", 1.0)
    adm.observe("b", 0.5)
    adm.observe("b", math.nan)  # network input: ignored
    assert adm.predict(_query(0)) == pytest.approx(1.0 + 0.5)
    assert adm.admit(_query(0), 10.0) and adm.admit(_query(1), 10.0)
    # two ahead: layer a 1 x (1 + 2/2), layer b (two shards of one replica) 0.5 x (1 + 2 x 2/2)
    assert adm.predict(_query(2)) == pytest.approx(2.0 + 1.5)
    assert adm.admit(_query(2), 10.0) is False and adm.refused == 1  # 3.5 s > 0.3 x 10 s
    q = _query(0)
    adm.passed(q, 0)
    q.stage = 1
    adm.left(q)
    assert adm.ahead == {"a": 1, "b": 1}


def test_admission_objectives_are_validated():
    with pytest.raises(ConfigError, match="objective"):
        AdmissionConfig(objective="maybe")

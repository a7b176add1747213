"""Task slots without processes: acting and candidate controllers, the stable split, shadow
costing and the automatic detach rule, on hand-built views."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import RecordingPlane, view

from controllers.registry import make_controller
from envs.registry import make_task
from live.attachment import ACTING, CANDIDATE, SHADOW, SPLIT, TaskSlot, stable_fraction
from live.config import LiveConfig
from swarmsim.errors import SwarmError
from swarmsim.view import QueryInfo

AGENTS = [
    {"id": 0, "shard": 0, "in_flight": 3, "latency_s": 0.01},
    {"id": 1, "shard": 0, "in_flight": 0, "latency_s": 0.01},
    {"id": 2, "shard": 1, "in_flight": 1, "latency_s": 0.02},
]


class Swarm(RecordingPlane):
    """A recording ControlPlane that also gives views (the coordinator's two roles)."""

    def view(self, query, roles, layer_stats):
        q = QueryInfo(query.id, 0, "small", 100, 10, np.array([0.9, 0.1], dtype=np.float32))
        return view(AGENTS, n_shards=2, query=q)


class Q:
    def __init__(self, i: int) -> None:
        self.id, self.arm = i, ""


class Broken:
    task = "shard-routing"

    def act(self, obs):
        raise RuntimeError("boom")


def slot(**cfg) -> TaskSlot:
    clock = iter(range(10**6))
    return TaskSlot(make_task("shard-routing"), LiveConfig(**cfg), lambda: float(next(clock)))


def routing(name: str):
    return make_controller("shard-routing", name)


def test_stable_fraction_is_fixed_per_id_and_uniform():
    values = np.array([stable_fraction(i) for i in range(20_000)])
    assert values.tolist() == [stable_fraction(i) for i in range(20_000)]
    assert abs((values < 0.5).mean() - 0.5) < 0.01 and abs((values < 0.1).mean() - 0.1) < 0.01
    assert stable_fraction(7) != stable_fraction(7, b"log")  # sampling is independent of arms


def test_split_sends_the_queries_below_the_fraction_to_the_candidate():
    s, swarm = slot(), Swarm()
    s.install("least-outstanding", routing("least-outstanding"))
    s.install("round-robin", routing("round-robin"), mode=SPLIT, split=0.3)
    queries = [Q(i) for i in range(2_000)]
    for q in queries:
        s.decide(swarm, q)
    arms = [q.arm for q in queries]
    assert arms == ["round-robin" if stable_fraction(q.id) < 0.3 else "least-outstanding"
                    for q in queries]  # fmt: skip
    assert abs(arms.count("round-robin") / len(arms) - 0.3) < 0.04
    assert len(swarm.calls) == len(queries)  # every query routed exactly once


def test_shadow_is_costed_but_the_acting_choice_is_what_is_applied():
    s, swarm = slot(), Swarm()
    s.install("search-all-shards", routing("search-all-shards"))  # slot 0: the busy replica
    s.install("least-outstanding", routing("least-outstanding"), mode=SHADOW)
    s.decide(swarm, Q(1))
    assert swarm.calls == [("route", 1, ((0, 0), (1, 2)))]  # the acting plan, unchanged
    assert (s.compared, s.agreed) == (1, 0)
    acting, shadow = s.differences[0]
    assert acting == {"shards": 2.0, "retrieval_s": pytest.approx(0.04)}  # (3 + 1) x 10 ms
    assert shadow == {"shards": 2.0, "retrieval_s": pytest.approx(0.04)}  # shard 1 dominates
    assert shadow["retrieval_s"] <= acting["retrieval_s"]


def test_a_controller_that_raises_falls_back_then_is_benched_at_the_check():
    s, swarm = slot(failure_limit=3, route_log_fraction=1.0, probe_backoff_s=5.0), Swarm()
    broken = Broken()
    s.install("broken", broken)
    s.log = []
    for i in range(2):
        s.decide(swarm, Q(i))
    assert len(swarm.calls) == 2  # the heuristic decided instead
    assert [row["fallback"] for row in s.log] == ["raised", "raised"]
    events = s.check()  # every decision since the last check failed
    assert [e["change"] for e in events] == ["benched"] and "raised 2" in events[0]["detail"]
    assert s.active and s.status()["acting"]["benched"]
    for i in range(40):  # benched: the heuristic acts, failed probes back off (clock +1/call)
        s.decide(swarm, Q(i))
    assert len(swarm.calls) == 42 and all(r["fallback"] == "benched" for r in s.log[2:])
    probes = s.acting.guard.decisions - 2
    assert 2 <= probes <= 6  # not one per decision: 5, 10, 20 clock ticks apart
    assert s.check() == []  # still benched, not re-benched


class Recovers:
    """Raises until ``healthy`` is set, then decides as least-outstanding."""

    task = "shard-routing"

    def __init__(self):
        self.healthy, self.calls = False, 0
        self.inner = routing("least-outstanding")

    def act(self, obs):
        self.calls += 1
        if not self.healthy:
            raise RuntimeError("not yet")
        return self.inner.act(obs)


def test_a_benched_controller_acts_again_only_after_recover_after_valid_decisions():
    s, swarm = slot(failure_limit=1, recover_after=5, probe_backoff_s=1.0), Swarm()
    policy = Recovers()
    s.install("recovers", policy)
    s.decide(swarm, Q(0))
    assert [e["change"] for e in s.check()] == ["benched"]
    policy.healthy = True
    for i in range(4):  # four valid probes: still benched
        s.decide(swarm, Q(i))
    assert s.acting.benched and s.check() == []
    s.decide(swarm, Q(4))  # the fifth
    assert not s.acting.benched
    assert [e["change"] for e in s.check()] == ["reinstated"]
    calls = policy.calls
    s.decide(swarm, Q(5))
    assert policy.calls == calls + 1 and s.acting.guard.last_reason is None  # acting again


def test_a_controller_that_keeps_flapping_is_detached_for_good():
    s, swarm = slot(failure_limit=1, recover_after=1, max_benchings=2), Swarm()
    policy = Recovers()
    s.install("flaps", policy)
    changes: list[str] = []
    while s.active:
        policy.healthy = False
        s.decide(swarm, Q(0))
        changes += [e["change"] for e in s.check()]
        if not s.active:
            break
        policy.healthy = True
        s.decide(swarm, Q(1))
        s.decide(swarm, Q(2))
        changes += [e["change"] for e in s.check()]
    assert changes == ["benched", "reinstated", "benched", "reinstated", "auto-detached"]


def test_occasional_failures_below_the_limit_keep_the_controller():
    s, swarm = slot(failure_limit=3), Swarm()

    class Flaky:
        task = "shard-routing"
        calls = 0

        def act(self, obs):
            self.calls += 1
            if self.calls % 5 == 0:
                raise RuntimeError("now and then")
            return routing("least-outstanding").act(obs)

    s.install("flaky", Flaky())
    for i in range(10):
        s.decide(swarm, Q(i))
    assert s.check() == [] and s.active  # 2 of 10 failed: below the limit of 3
    for i in range(15):
        s.decide(swarm, Q(i))
    assert s.check()[0]["change"] == "benched"  # 3 of 15


def test_install_replace_and_remove_make_events_and_implicit_incumbents():
    s = slot()
    events = s.install("round-robin", routing("round-robin"), mode=SHADOW)
    assert s.acting.label == "least-outstanding" and s.acting.implicit  # the heuristic faces it
    assert [e["change"] for e in events] == ["attached"]
    events = s.install("random", routing("random"), mode=SHADOW)
    assert [(e["change"], e["controller"]) for e in events] == [
        ("replaced", "round-robin"), ("attached", "random")]  # fmt: skip
    events = s.remove(CANDIDATE)
    assert [e["change"] for e in events] == ["detached"] and not s.active
    s.install("round-robin", routing("round-robin"))
    s.install("random", routing("random"), mode=SPLIT, split=0.5)
    assert [e["controller"] for e in s.remove(ACTING)] == ["random", "round-robin"]
    assert s.candidate is None and not s.active


def test_split_is_refused_for_interval_tasks_and_fractions_outside_zero_one():
    scaling = TaskSlot(make_task("autoscaling"), LiveConfig(), lambda: 0.0)
    with pytest.raises(SwarmError, match="--shadow"):
        scaling.install("hpa", make_controller("autoscaling", "hpa"), mode=SPLIT, split=0.5)
    with pytest.raises(SwarmError, match="split"):
        slot().install("random", routing("random"), mode=SPLIT, split=1.0)
    with pytest.raises(SwarmError, match="mode"):
        slot().install("random", routing("random"), mode="both")


@pytest.mark.parametrize(
    ("field", "value"),
    [("decision_deadline_s", 0.0), ("failure_limit", 0), ("route_log_fraction", 1.5)],
)
def test_live_config_names_a_bad_operating_field(field, value):
    with pytest.raises(SwarmError, match=field):
        LiveConfig(**{field: value})


def test_an_interval_task_shadow_is_logged_and_costed_and_only_the_acting_scales():
    from fakes import layer

    class Scaling(RecordingPlane):
        def view(self, query, roles, layer_stats):
            busy = layer("retriever", running=2, utilisation=0.95, arrival_rate=50.0)
            return view([{"id": 0}, {"id": 1}], layers={"retriever": busy})

    s = TaskSlot(make_task("autoscaling"), LiveConfig(), lambda: 0.0)
    s.install("static", make_controller("autoscaling", "static"))
    s.install("hpa", make_controller("autoscaling", "hpa"), mode=SHADOW)
    s.log, plane = [], Scaling()
    s.decide(plane)
    assert plane.calls == []  # static holds; the HPA's scale-out was not applied
    row = s.log[0]
    assert row["query"] is None and row["shadow"]["controller"] == "hpa"
    assert row["shadow"]["estimate"]["replicas"] > row["shadow"]["acting_estimate"]["replicas"]


def test_a_full_report_fits_one_message_and_decodes_to_what_was_kept():
    from collections import deque
    from types import SimpleNamespace

    from live.attachment import WINDOW
    from live.operator import report, report_rows
    from live.pipeline import FINISHED_WINDOW
    from live.protocol import MAX_MESSAGE_BYTES, RESPONSE, Message, decode, encode

    label = "/a/long/path/to/results/training/routing-escape-velocity/policy"
    rng = np.random.default_rng(0)
    finished = deque(
        (float(i), label if i % 2 else "round-robin", "completed" if i % 9 else "failed",
         float(rng.exponential()), 1.0 if i % 3 else None)
        for i in range(FINISHED_WINDOW)
    )  # fmt: skip
    s = slot()
    s.install("least-outstanding", routing("least-outstanding"))
    s.install("random", routing("random"), mode=SHADOW)
    for _ in range(WINDOW):
        s.differences.append(({"shards": 2.0, "retrieval_s": float(rng.random())},
                              {"shards": 1.0, "retrieval_s": float(rng.random())}))  # fmt: skip
    coord = SimpleNamespace(finished=finished, slots={"shard-routing": s},
                            control_address="tcp://127.0.0.1:1")  # fmt: skip
    frames = encode(Message(RESPONSE, "DONE", "op", "coordinator", report(coord)))
    assert sum(map(len, frames)) < MAX_MESSAGE_BYTES
    columns, shadows = report_rows(decode(frames).payload)
    assert columns["arm"] == [r[1] for r in finished]
    assert columns["outcome"] == [r[2] for r in finished]
    assert columns["recall"] == [r[4] for r in finished]
    assert shadows[0]["differences"] == [list(pair) for pair in s.differences]

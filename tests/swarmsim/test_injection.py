"""The fault schedule in the simulator: each kind changes the run the way its spec says.

Stories use two synthesizer agents (a, b) with deterministic service and no fabric, so every
time is exact; heartbeats every 1 s with liveness 3, so a silent agent is declared dead 2 to
3 s after it falls silent and rejoins a timeout + 1 s (4 s) after it thaws.
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from fakes import write_trace

from experiments.cli import main
from experiments.replay import prepare
from live.config import RECONNECT_INITIAL_S
from swarmsim import Simulation, load_scenario
from swarmsim.injection import RECONNECT_S
from swarmsim.linkfaults import silences
from swarmsim.metrics import check_conservation
from swarmsim.query import AgentState
from swarmsim.summary import window_availability
from swarmsim.workclock import WorkClock

PAIR = """
fabric: {{enabled: {fabric}}}
slo_latency_s: 5.0
failures: {{heartbeat_interval_s: 1.0, heartbeat_liveness: 3}}
layers:
  synth: {{role: synthesizer, dispatch: least-loaded,
           service: {{kind: deterministic, rate: {rate}}}}}
stages: [{{layer: synth}}]
nodes:
  - name: a
    agents: [{{layer: synth}}]
  - name: b
    agents: [{{layer: synth}}]
"""


def pair(story, faults, arrivals=(0.0,), rate=0.5, fabric="false", duration_s=60.0, extra=()):
    scenario = story(
        PAIR.format(rate=rate, fabric=fabric),
        arrivals,
        duration_s,
        [f"faults={list(faults)}", *extra],
    )
    sim = Simulation(scenario, seed=0, record_timeline=True)
    return sim, sim.run()


def stages(sim: Simulation, query: int) -> list[dict]:
    return next(r for r in sim.timeline if r.get("query") == query)["stages"]


def outcome(sim: Simulation, query: int) -> tuple[str, str]:
    rec = next(r for r in sim.timeline if r.get("query") == query)
    return rec["outcome"], rec["reason"]


# --- building blocks ---------------------------------------------------------------------------


def test_work_clock_stretches_only_the_part_of_a_service_inside_a_window() -> None:
    clock = WorkClock()
    clock.add(0, 1.0, 2.0, 0.5)  # slowed x2 from 1 to 2
    clock.add(0, 3.0, 4.0, 0.0)  # frozen from 3 to 4
    assert clock.finish(0, 0.0, 2.0) == pytest.approx(2.5)  # 1 + 0.5 + 0.5
    assert clock.finish(0, 0.0, 3.0) == pytest.approx(4.5)  # ... then frozen a second
    assert clock.done(0, 0.0, 3.5) == pytest.approx(2.5)
    assert clock.finish(1, 5.0, 2.0) == 7.0  # another agent: untouched
    clock.add(2, 0.0, math.inf, 0.0)
    assert clock.finish(2, 1.0, 1.0) == math.inf  # hung for good


def test_silences_declare_after_the_timeout_and_rejoin_later() -> None:
    beats = [0.0, 1.0, 2.0, 9.0, 10.0, 11.0, 30.0]
    # 2 -> 9: dead at 5, back at 9; 11 -> 30: dead at 14, back at 18, dead again at 21 ...
    assert silences(beats, 3.0, 4.0) == [5.0, 14.0, 21.0, 28.0]
    assert silences([0.0, 1.0, 2.0, 3.0], 3.0, 4.0) == []


def test_availability_windows_count_windows_with_goodput() -> None:
    assert window_availability([1.0, 2.0, 25.0], 0.0, 40.0, 10.0) == 0.5
    assert window_availability([], 0.0, 4.0, 10.0) is None


def test_the_rejoin_delay_is_the_live_workers_first_reconnect_backoff() -> None:
    assert RECONNECT_S == RECONNECT_INITIAL_S


# --- worker faults -----------------------------------------------------------------------------


def test_kill_is_detected_after_the_heartbeat_timeout_and_the_work_retried(story) -> None:
    sim, s = pair(story, ["kill:synth#0@0.5"])
    (first,) = stages(sim, 0)
    assert first["agent"] == 1 and 2.5 <= first["sent"] <= 3.5  # retried on b on detection
    assert outcome(sim, 0) == ("completed", "")
    assert s["failures"]["agents"] == 1 and s["failures"]["retries"] == 1
    assert sim.cluster.agents[0].state == AgentState.DEAD  # for good: never restarted


def test_kill_of_the_only_replica_of_a_shard_fails_its_queries(story) -> None:
    body = """
fabric: {enabled: false}
corpus: {n_vectors: 2000, dim: 16, n_topics: 8, n_shards: 2, n_queries: 64, k: 10}
retrieval: {index: flat, vectors_total: 20000, dim: 64}
layers:
  retriever: {role: retriever, device: cpu}
stages: [{layer: retriever}]
nodes:
  - name: spinoza
    agents: [{layer: retriever, shard: 0}, {layer: retriever, shard: 1}]
"""
    arrivals = [float(t) for t in range(20)]
    calm = Simulation(story(body, arrivals, 30.0), seed=0).run()
    killed = Simulation(story(body, arrivals, 30.0, ["faults=[kill:retriever#1@5]"]), seed=0).run()
    assert calm["queries"]["failed"] == 0
    assert 12 <= killed["outcomes"]["no_replica"] <= 15  # those arriving after the detection


def test_pause_shorter_than_the_timeout_delays_but_loses_nothing(story) -> None:
    sim, s = pair(story, ["pause:synth#0@0.5+1"])
    (first,) = stages(sim, 0)
    assert first["agent"] == 0 and first["end"] == pytest.approx(3.0)  # 2 s of work + 1 s frozen
    f = s["faults"]
    assert f["deaths_declared"] == f["late_results_discarded"] == 0
    assert s["failures"]["retries"] == 0


def test_pause_longer_than_the_timeout_is_a_death_then_a_rejoin(story) -> None:
    sim, s = pair(story, ["pause:synth#0@0.5+10"], arrivals=[0.0, 30.0, 30.0])
    (first,) = stages(sim, 0)
    assert first["agent"] == 1 and 2.5 <= first["sent"] <= 3.5  # re-dispatched on detection
    f = s["faults"]
    assert f["deaths_declared"] == 1 and f["late_results_discarded"] == 1  # its late answer
    assert s["queries"]["completed"] == 3  # counted once
    assert {stages(sim, q)[0]["agent"] for q in (1, 2)} == {0, 1}  # back at 10.5 + 4 s


def test_hang_is_detected_by_missing_heartbeats_and_never_rejoins(story) -> None:
    sim, s = pair(story, ["hang:synth#0@0.5"], arrivals=[0.0, 30.0, 31.0])
    assert stages(sim, 0)[0]["agent"] == 1
    assert {stages(sim, q)[0]["agent"] for q in (1, 2)} == {1}
    assert s["faults"]["deaths_declared"] == 1 and s["faults"]["late_results_discarded"] == 0
    assert sim.cluster.agents[0].state == AgentState.DEAD


def test_slow_multiplies_the_service_time_inside_its_window(story) -> None:
    sim, _ = pair(story, ["slow:synth#*@1+1=2"], arrivals=[0.0, 10.0])
    assert stages(sim, 0)[0]["end"] == pytest.approx(2.5)  # 1 s, then 0.5 s of work in 1 s
    assert stages(sim, 1)[0]["end"] == pytest.approx(12.0)  # after the window: 2 s


# --- link faults -------------------------------------------------------------------------------


def test_delay_adds_its_delay_to_each_message_each_way(story) -> None:
    sim, s = pair(story, ["delay:synth#*@0+60=500±100"], arrivals=[0.0, 5.0, 10.0])
    for q in range(3):
        (row,) = stages(sim, q)
        assert 0.4 <= row["start"] - row["sent"] <= 0.6  # the job, on its way out
        assert 0.4 <= row["end"] - row["start"] - 2.0 <= 0.6  # the answer, on its way back
    assert 2.8 <= s["latency_s"]["mean"] <= 3.2  # 2 s of service + 2 x (0.5 ± 0.1) s


def test_drop_of_every_message_to_a_worker_fails_its_work_at_the_deadline(story) -> None:
    sim, s = pair(story, ["drop:synth#0@0+60=1"], rate=1.0, extra=["deadline_s=2"])
    assert outcome(sim, 0) == ("failed", "deadline")
    assert s["faults"]["messages_dropped"] == 1 and s["messages"]["dropped"] == {"injected": 1}
    check_conservation(s)


def test_lost_heartbeats_declare_a_serving_worker_dead_and_its_job_is_retried(story) -> None:
    sim, s = pair(story, ["drop:synth#0@0+20=1"])
    f = s["faults"]
    assert f["heartbeats_lost"] >= 19 and f["false_deaths"] >= 1
    (first,) = stages(sim, 0)
    assert first["agent"] == 1 and 2.0 <= first["sent"] <= 3.0  # surrendered on the death
    assert outcome(sim, 0) == ("completed", "")


def test_partition_loses_the_nodes_messages_until_its_agents_are_declared_dead(story) -> None:
    arrivals = [0.0, 1.0, 40.0, 40.0]
    sim, s = pair(story, ["partition:b@0.5+20"], arrivals=arrivals, fabric="true")
    (row,) = stages(sim, 1)  # sent to b at 1 and lost; retried on a once b is declared dead
    assert row["agent"] == 0 and 2.5 <= row["sent"] <= 3.5
    assert outcome(sim, 1) == ("completed", "")
    f = s["faults"]
    assert f["applied"][0]["agents"] == [1] and f["deaths_declared"] == 1
    assert f["messages_dropped"] == 1 and s["failures"]["partitions"] == 1
    # b heard nothing from 0.5: READY at 4.5, 9.5, 16.5 (lost), 27.5 (heard): back by 40
    assert {stages(sim, q)[0]["agent"] for q in (2, 3)} == {0, 1}


def test_a_partition_of_the_coordinators_node_cuts_its_agents_off_as_live(story) -> None:
    sim, s = pair(story, ["partition:a@0+30"], arrivals=[0.0, 0.0], fabric="true")
    assert s["faults"]["applied"][0]["agents"] == [0]
    assert [stages(sim, q)[0]["agent"] for q in (0, 1)] == [1, 1]  # a's job retried on b


# --- the coordinator and the controllers -------------------------------------------------------


def test_coordinator_restart_fails_in_flight_queries_and_clients_resend_them(story) -> None:
    sim, s = pair(story, ["coordinator:restart@1"], arrivals=[0.0, 3.0])
    first, again = (r for r in sim.timeline if r.get("query") == 0)
    assert (first["outcome"], first["reason"]) == ("failed", "coordinator_restart")
    assert again["arrival"] == pytest.approx(23.0)  # 20 s deadline (4 x SLO) + 3 s timeout
    assert again["outcome"] == "completed"
    assert stages(sim, 1)[0]["sent"] == pytest.approx(5.0)  # waited for the agents to rejoin
    assert outcome(sim, 1) == ("completed", "")
    assert s["faults"]["late_results_discarded"] == 1  # q0's answer, to a coordinator that forgot
    assert s["queries"]["submitted"] == 3 and s["queries"]["completed"] == 2


def test_coordinator_restart_loses_no_query_silently() -> None:
    scenario = load_scenario(
        "homelab", ["duration_s=400", "warmup_s=0", "faults=[coordinator:restart@150]"]
    )
    sim = Simulation(scenario, seed=1, record_timeline=True)
    s = sim.run()
    check_conservation(s)
    assert s["outcomes"]["coordinator_restart"] >= 1
    ended = [r for r in sim.timeline if "query" in r]
    assert all(r["outcome"] == "completed" or r["reason"] for r in ended)
    assert len(ended) + s["queries"]["in_flight"] == s["queries"]["submitted"]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [("crash", "raised"), ("hang", "deadline"), ("nan", "invalid"), ("invalid", "invalid")],
)
def test_controller_faults_are_caught_by_the_guardrail(mode: str, reason: str) -> None:
    base = load_scenario("homelab", ["duration_s=200", "warmup_s=0"])
    controller = ["shard-routing=least-outstanding"]

    def run(faults: tuple[str, ...]) -> tuple[dict, object]:
        sim, attached = prepare(dataclasses.replace(base, faults=faults), 2, controller)
        return sim.run(), attached["shard-routing"][1]

    calm, _ = run(("kill:evaluator#0@199",))  # the injector wired, a harmless fault
    hit, guard = run((f"controller:{mode}@20+100", "kill:evaluator#0@199"))
    stats = guard.stats()  # type: ignore[attr-defined]
    assert stats["fallbacks"][reason] == hit["faults"]["guardrail_fallbacks"] > 0
    assert stats["fallbacks"][reason] < stats["decisions"]  # only inside the window
    assert hit["queries"] == calm["queries"]  # the heuristic took the same decisions


# --- determinism and the CLI -------------------------------------------------------------------

MIXED = [
    "pause:synth-large@60+20",
    "drop:retriever#*@90+60=0.2",
    "delay:*@120+30=50±20",
    "slow:embedder@30+60=2",
    "coordinator:restart@200",
]


def test_the_same_schedule_and_seed_give_the_same_run() -> None:
    scenario = load_scenario("homelab", ["duration_s=300", "warmup_s=0", f"faults={MIXED}"])
    a, b = (Simulation(scenario, seed=4).run() for _ in range(2))
    for s in (a, b):
        s.pop("wall_s")
    assert a == b
    assert a["faults"]["heartbeats_lost"] > 0 and len(a["faults"]["applied"]) == len(MIXED)
    assert (
        "faults"
        not in Simulation(load_scenario("homelab", ["duration_s=30", "warmup_s=0"]), seed=4).run()
    )


def test_cli_inject_adds_faults_and_refuses_a_bad_spec(capsys) -> None:
    args = ["simulate", "homelab", "--duration", "60", "--json", "--no-progress"]
    assert main([*args, "--inject", "kill:retriever#1@10", "--inject", "slow:embedder@5+10=3"]) == 0
    applied = json.loads(capsys.readouterr().out)["faults"]["applied"]
    assert [f["text"] for f in applied] == ["slow:embedder@5+10=3", "kill:retriever#1@10"]
    for bad in ("kill:retriever@soon", "kill:nobody@5"):
        assert main([*args, "--inject", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and bad in err[0] and "Traceback" not in err[0]


def test_replay_takes_inject_too(tmp_path, capsys) -> None:
    trace = write_trace(tmp_path / "t.csv", [float(t) for t in range(0, 60, 2)])
    args = ["replay", str(trace), "--json", "--no-progress", "--inject", "coordinator:restart@20"]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["faults"]["applied"][0]["text"] == "coordinator:restart@20"
    assert s["queries"]["submitted"] == 30

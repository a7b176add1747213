"""Injected faults on a live swarm (issue 17, items 1-5): real worker processes, real ZeroMQ
sockets, faults applied by the injector from the swarm's loop, as ``--inject`` applies them.

Each test starts its own homelab swarm (on two shards, 7-8 workers, emulated stages at a
twentieth of the profile's times, heartbeats every 0.2 s) and leaves no process behind.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest
import zmq
from procs import gone
from zmq.utils.monitor import recv_monitor_message

from controllers.registry import make_controller
from live import operator, sockets
from live.backends import Pending
from live.config import LiveConfig
from live.corpusfiles import write_corpus
from live.faults import Injector, WorkerFaults, agents_of
from live.launcher import LocalLauncher
from live.load import LoadThread
from live.protocol import CONTROL, Message
from live.runner import LiveRun, Swarm
from live.state import Agent
from live.worker import WorkerSpec
from swarmsim.corpus import scenario_corpus
from swarmsim.faults import parse_fault
from swarmsim.query import AgentState
from swarmsim.scenario_files import load_scenario

HEARTBEAT_S, LIVENESS = 0.2, 3
DEAD_AFTER_S = HEARTBEAT_S * LIVENESS
BEATS = (f"failures.heartbeat_interval_s={HEARTBEAT_S}", f"failures.heartbeat_liveness={LIVENESS}")
FAST = LiveConfig(time_scale=0.05, deadline_s=3.0, reconnect_initial_s=0.2)


def _run(
    *inject: str, rate: float = 4, beats: tuple[str, ...] = BEATS, workers: int = 6
) -> LiveRun:
    """Homelab on two shards (``workers=6``: three retrievers, one of each other layer)."""
    overrides = (f"rate={rate}", "corpus.n_shards=2", *beats)
    return LiveRun("homelab", overrides, workers=workers, config=FAST, inject=inject)


def _serve_out(swarm: Swarm, client: LoadThread, limit_s: float = 30) -> None:
    swarm.serve_until(lambda: not client.is_alive() and not swarm.coord.active, limit_s)
    assert not client.is_alive()


def _one_answer_each(swarm: Swarm, client: LoadThread) -> None:
    """Every query the client sent got exactly one final answer; the books balance."""
    q, stats = swarm.coord.metrics.query_summary(), client.stats
    assert q["in_flight"] == 0 and q["submitted"] == q["completed"] + q["failed"] + q["dropped"]
    assert sum(stats.answers.values()) == stats.sent and stats.duplicates == 0
    assert stats.answers.get("unanswered", 0) == 0


def _strike(swarm: Swarm, spec: str) -> None:
    """Apply ``spec`` now, as ``swarmsim live inject`` does (its time counted from now)."""
    swarm.injector.add(parse_fault(spec), swarm.coord.now())


def test_kill_9_of_a_worker_of_each_role_under_load_answers_each_query_once():
    roles = ("retriever", "evaluator", "synth-small", "embedder")
    kills = [f"kill:{role}@{0.8 + i * 0.6:g}" for i, role in enumerate(roles)]
    with Swarm(_run(*kills)) as swarm:
        swarm.coord.restart_clock()
        client = LoadThread(swarm, 4.0, 15)
        victims = {role: swarm.coord.agents[agents_of(swarm.coord, parse_fault(k).target)[0]]
                   for role, k in zip(roles, kills, strict=True)}  # fmt: skip
        _serve_out(swarm, client)
        pids = [p.pid for p in swarm.launcher.procs.values()]
        applied = swarm.injector.summary()["applied"]
    assert all(gone(pid) for pid in pids)
    _one_answer_each(swarm, client)
    for (role, victim), fault in zip(victims.items(), applied, strict=True):
        assert victim.state == AgentState.DEAD, role
        # ejected within interval x liveness, plus one heartbeat of detection slack
        assert victim.gone - fault["at"] <= DEAD_AFTER_S + HEARTBEAT_S + 0.1, role
    outcomes = swarm.coord.metrics.reasons
    assert outcomes.get("no_replica", 0) > 0  # after the only embedder died: failed, answered


def test_a_paused_worker_comes_back_its_late_replies_are_discarded_and_it_re_registers():
    with Swarm(_run(rate=8, workers=8)) as swarm:  # two retrievers per shard
        coord = swarm.coord
        coord.restart_clock()
        client = LoadThread(swarm, 4.0, 15)
        pause = parse_fault("pause:retriever#1@0+1.5")
        victim = coord.agents[agents_of(coord, pause.target)[0]]
        _strike(swarm, "slow:retriever#1@0+30=100")  # its searches take 0.2 s: it is busy

        def searching() -> bool:  # a search sent 20 ms ago: it is in the middle of it
            return coord.now() > 1 and any(
                coord.now() - j.sent > 0.02 for j in victim.jobs.values()
            )

        swarm.serve_until(searching, 10)
        swarm.injector.apply(pause, coord.now())  # frozen in the middle of a search
        retries = coord.metrics.retries
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 5)
        held = coord.metrics.retries - retries  # its jobs, retried under a new attempt number
        assert victim.state == AgentState.DEAD and held >= 1
        swarm.serve_until(lambda: victim.state == AgentState.RUNNING, 10)
        assert victim.state == AgentState.RUNNING  # re-registered after SIGCONT
        _serve_out(swarm, client)
        late = coord.protocol_errors.get("stray", 0)
    _one_answer_each(swarm, client)
    assert late >= 1  # its answers to the first attempts came back, and were discarded
    assert swarm.injector.summary()["late_results_discarded"] == late


def test_a_hung_worker_is_declared_dead_by_its_silent_heartbeats_and_comes_back():
    with Swarm(_run()) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        client = LoadThread(swarm, 4.0, 15)
        swarm.serve_until(lambda: coord.now() > 1, 5)
        answer: dict = {}
        threading.Thread(  # as ``swarmsim live inject ADDR SPEC`` does
            target=lambda: answer.update(operator.request(
                coord.control_address, "INJECT", {"spec": "hang:synth-small@0+1.5"})),
            daemon=True,
        ).start()  # fmt: skip
        victim = coord.agents[agents_of(coord, parse_fault("hang:synth-small@0").target)[0]]
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 5)
        assert victim.state == AgentState.DEAD and answer["fault"] == "hang:synth-small@0+1.5"
        assert swarm.launcher.alive(victim.id)  # the process lives: only its loop stopped
        assert victim.gone - answer["at"] <= DEAD_AFTER_S + HEARTBEAT_S + 0.1
        swarm.serve_until(lambda: victim.state == AgentState.RUNNING, 10)
        assert victim.state == AgentState.RUNNING
        _serve_out(swarm, client)
    _one_answer_each(swarm, client)
    assert swarm.injector.summary()["false_deaths"] == 0  # a hang's death is a true one


def test_a_heartbeat_whose_progress_counter_stands_still_is_no_sign_of_life():
    agent = Agent(0, "retriever", "retriever", 0, "", "cpu", 0, AgentState.RUNNING, 0.0, 0.0)
    agent.heard("HEARTBEAT", {"progress": 5}, 1.0)
    agent.heard("HEARTBEAT", {"progress": 5}, 2.0)  # replayed, or its loop stopped
    agent.heard("HEARTBEAT", {"progress": 4}, 3.0)
    assert agent.last_seen == 1.0
    agent.heard("HEARTBEAT", {"progress": 6}, 4.0)
    agent.heard("DONE", {"service_s": 0.1}, 5.0)  # an answer is a sign of life
    assert agent.last_seen == 5.0


def _events(monitor: zmq.Socket, seconds: float) -> list[int]:
    """The socket events a monitor reports within ``seconds``."""
    seen, end = [], time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if monitor.poll(left * 1000):
            seen.append(recv_monitor_message(monitor)["event"])
    return seen


def _heartbeats(sock: zmq.Socket, seconds: float, first: bool = False) -> int:
    """HEARTBEATs a ROUTER playing coordinator receives from w0 within ``seconds`` (or until
    the ``first``), heartbeating to it every period as a coordinator does."""
    count, end, beat = 0, time.monotonic() + seconds, 0.0
    while (left := end - time.monotonic()) > 0 and not (first and count):
        if time.monotonic() >= beat:
            sockets.send(sock, Message(CONTROL, "HEARTBEAT", "", "coordinator"), b"w0")
            beat = time.monotonic() + HEARTBEAT_S
        if sock.poll(min(left, HEARTBEAT_S) * 1000):
            _, msg = sockets.recv(sock, routed=True)
            count += getattr(msg, "action", "") == "HEARTBEAT"
    return count


def test_transport_keepalives_alone_do_not_see_a_hung_worker(tmp_path):
    """ZMTP heartbeats (ZMQ_HEARTBEAT_IVL/TIMEOUT) are answered by libzmq's I/O thread: a
    worker whose loop hangs keeps its connection up, and only its application heartbeats
    fall silent; a frozen process (SIGSTOP) is what the transport does notice."""
    write_corpus(scenario_corpus(load_scenario("homelab").corpus), tmp_path)
    ctx, launcher = zmq.Context(), LocalLauncher()
    try:
        router = ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        router.setsockopt(zmq.HEARTBEAT_IVL, 50)  # ms: ping every 50 ms ...
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)  # ... and drop a peer silent 300 ms
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)
        router.bind("tcp://127.0.0.1:0")
        monitor = router.get_monitor_socket()
        spec = WorkerSpec(0, sockets.endpoint(router), "embedder", "embedder", "rtx3080",
                          str(tmp_path), heartbeat_interval_s=HEARTBEAT_S)  # fmt: skip
        launcher.start(spec)
        assert _heartbeats(router, 30, first=True) == 1  # up, and heartbeating
        fault = Message(CONTROL, "FAULT", "", "coordinator", {"kind": "hang", "for_s": None})
        sockets.send(router, fault, b"w0")
        _heartbeats(router, HEARTBEAT_S)  # the one in flight
        _events(monitor, 0.05)  # the connection's own events so far
        assert _heartbeats(router, 1.5) == 0  # the application sees it dead ...
        assert zmq.EVENT_DISCONNECTED not in _events(monitor, 0.05)  # ... the transport not
        ping = Message(CONTROL, "HEARTBEAT", "", "coordinator")
        assert sockets.send(router, ping, b"w0")  # it still routes to the hung worker
        os.kill(launcher.pid(0), signal.SIGSTOP)
        try:
            assert zmq.EVENT_DISCONNECTED in _events(monitor, 2.0)  # a frozen process: seen
        finally:
            os.kill(launcher.pid(0), signal.SIGCONT)
    finally:
        launcher.close()
        ctx.destroy(linger=0)


def test_coordinator_restart_under_load_loses_no_query_and_serving_resumes():
    with Swarm(_run("coordinator:restart@2", rate=6)) as swarm:
        first = swarm.coord
        first.restart_clock()
        address = first.worker_address
        retry_s = FAST.deadline_s + DEAD_AFTER_S
        client = LoadThread(swarm, 5.0, 15, retry_s)
        swarm.serve_until(lambda: swarm.coord is not first, 5)
        second, restarted = swarm.coord, time.monotonic()
        assert second is not first and second.worker_address == address
        completed = second.metrics.completed
        swarm.serve_until(lambda: second.roster.running() == len(second.agents), 10)
        rejoined = time.monotonic() - restarted
        swarm.serve_until(lambda: second.metrics.completed > completed, 10)
        resumed = time.monotonic() - restarted
        _serve_out(swarm, client, 40)
        pids = [p.pid for p in swarm.launcher.procs.values()]
    assert all(gone(pid) for pid in pids)
    assert len(pids) == len(swarm.plan) and rejoined < 10 and resumed < 10
    stats = client.stats
    assert sum(stats.answers.values()) == stats.sent  # answered, or reported failed: no loss
    assert stats.answers.get("unanswered", 0) == 0  # the lost ones were resent and answered
    q = second.metrics.query_summary()
    assert q["in_flight"] == 0 and q["submitted"] == q["completed"] + q["failed"] + q["dropped"]


def _false_deaths_under_bad_links(load_s: float, beats: tuple[str, ...]) -> dict:
    links = ("delay:*@0+600=200±50", "drop:*@0+600=0.05")
    with Swarm(_run(*links, beats=beats)) as swarm:
        swarm.coord.restart_clock()
        client = LoadThread(swarm, load_s, 15)
        _serve_out(swarm, client, load_s + 30)
        now, n = swarm.coord.now(), len(swarm.coord.agents)
        heartbeat = swarm.scenario.failures.heartbeat_interval_s
        faults = swarm.injector.summary()
    return {**faults, "periods": n * now / heartbeat, "p50_s": client.stats.to_dict()["p50_s"]}


def test_delay_and_loss_on_every_link_declare_no_worker_falsely_dead():
    """200 ms ± 50 ms and 5% loss on every link, heartbeats every 0.25 s with liveness 5: no
    false death in about 250 heartbeat periods (the slow test measures the rate)."""
    beats = ("failures.heartbeat_interval_s=0.25", "failures.heartbeat_liveness=5")
    out = _false_deaths_under_bad_links(8.0, beats)
    assert out["periods"] > 200 and out["messages_dropped"] > 0
    assert out["false_deaths"] == 0
    assert out["p50_s"] > 4 * 2 * 0.15  # four stages, each request and answer held >= 150 ms


@pytest.mark.slow
@pytest.mark.timeout(900)  # four minutes of lossy load, then the drain
def test_false_deaths_under_delay_and_loss_stay_below_a_thousandth_of_heartbeat_periods():
    """The scenario's heartbeats (1 s, liveness 3) over 4 minutes: about 2,000 periods."""
    out = _false_deaths_under_bad_links(240.0, ())
    assert out["false_deaths"] < 0.001 * out["periods"]


@pytest.mark.parametrize("mode", ["crash", "hang", "nan", "invalid"])
def test_a_controller_fault_is_caught_by_the_guardrail_and_lifted_at_its_end(offline, mode):
    offline.controls.attach("autoscaling", make_controller("autoscaling", "hpa"), "hpa")
    guard = offline.slots["autoscaling"].acting.guard
    policy = guard.policy
    injector = Injector(SimpleNamespace(coord=offline, launcher=None), (), seed=0)
    injector.apply(parse_fault(f"controller:{mode}@0+1"), offline.now())
    obs = offline.slots["autoscaling"].task.observe(offline.view())
    guard.act(obs)
    assert guard.last_reason == ("raised" if mode == "crash" else
                                 "deadline" if mode == "hang" else "invalid")  # fmt: skip
    injector.tick()  # not yet due: still misbehaving
    assert guard.policy is not policy
    injector.lifts[0][2]()  # its end
    assert guard.policy is policy and injector.summary()["guardrail_fallbacks"] == 1
    guard.act(obs)
    assert guard.last_reason is None


def test_a_worker_takes_hang_and_slow_faults_and_refuses_malformed_ones():
    faults = WorkerFaults()
    faults.take({"kind": "slow", "for_s": 2.0, "factor": 3.0}, now=10.0)
    job = Pending(due=11.0)
    faults.stretch(job, start=10.5)
    assert job.due == pytest.approx(10.5 + 0.5 * 3)
    late = Pending(due=13.0)
    faults.stretch(late, start=12.5)  # started after the slow-down ended
    assert late.due == 13.0
    faults.take({"kind": "hang", "for_s": None}, now=20.0)
    assert faults.hung_for(1e9) == math.inf
    for bad in ({"kind": "melt"}, {"kind": "slow", "factor": 0.5}, {"kind": "hang", "for_s": -1},
                {"kind": "hang", "for_s": True}, [1, 2], None):  # fmt: skip
        with pytest.raises(ValueError):
            faults.take(bad, now=0.0)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ten minutes of live load at the profiles' own times
def test_one_fault_schedule_in_the_simulator_and_live_gives_the_same_availability_and_p99():
    """Item 14: a kill, a pause, a partition and a slow node within 10 minutes, on the same
    seed's arrivals (live at the profile's own times): availability within 5 points, p99
    within 20%."""
    from experiments.reliability import sim_live_stage

    out = sim_live_stage(SimpleNamespace(compare_s=600.0))
    assert "skipped" not in out, out
    assert abs(out["availability_gap_pp"]) <= 5 and 0.8 <= out["p99_ratio"] <= 1.2, out

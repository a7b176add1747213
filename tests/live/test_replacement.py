"""Re-placing workers whose process is gone (``live.replacement``), on the local launcher: a
SIGKILLed worker is declared dead at once and a new one serves its layer; a paused one,
whose process lives, is declared dead by its heartbeats and left to come back by itself."""

from __future__ import annotations

from procs import gone

from live.config import LiveConfig
from live.faults import agents_of
from live.load import LoadThread
from live.replacement import EXITED
from live.runner import LiveRun, Swarm
from swarmsim.faults import parse_fault
from swarmsim.query import AgentState

BEATS = ("failures.heartbeat_interval_s=0.2", "failures.heartbeat_liveness=3")
ZERO = LiveConfig(time_scale=0, deadline_s=5.0, reconnect_initial_s=0.2)


def _swarm() -> Swarm:
    overrides = ("rate=4", "corpus.n_shards=2", *BEATS)
    return Swarm(LiveRun("homelab", overrides, workers=6, config=ZERO, replace_dead=True))


def _serve(swarm: Swarm) -> LoadThread:
    client = LoadThread(swarm, 1.5, 10)
    swarm.serve_until(lambda: not client.is_alive() and not swarm.coord.active, 30)
    assert not client.is_alive() and client.stats.sent > 0
    return client


def test_a_killed_worker_is_re_placed_and_its_layer_serves_again():
    with _swarm() as swarm:
        coord = swarm.coord
        coord.restart_clock()
        victim = coord.agents[agents_of(coord, parse_fault("kill:embedder@0").target)[0]]
        swarm.launcher.kill(victim.id)  # the only embedder: without re-placement, no_replica
        swarm.serve_until(lambda: coord.roster.running() == 7 and len(coord.agents) == 8, 15)
        assert victim.state == AgentState.DEAD and swarm.replaced == {victim.id}
        reg = coord.telemetry.registry  # declared at once, not at its heartbeats' timeout
        assert reg.get_sample_value("swarmsim_worker_deaths_total", {"reason": EXITED}) == 1
        assert coord.counts["deaths"] == 1
        new = coord.agents[max(coord.agents)]
        assert (new.layer, new.device, new.node) == (victim.layer, victim.device, victim.node)
        assert new.state == AgentState.RUNNING
        client = _serve(swarm)
        pids = [p.pid for p in swarm.launcher.procs.values()]
    assert client.stats.answers == {"completed": client.stats.sent}
    assert all(gone(pid) for pid in pids)


def test_a_paused_worker_is_not_re_placed_it_comes_back():
    with _swarm() as swarm:
        coord = swarm.coord
        coord.restart_clock()
        pause = parse_fault("pause:evaluator@0+1.5")
        victim = coord.agents[agents_of(coord, pause.target)[0]]
        swarm.injector.apply(pause, coord.now())
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 5)
        assert victim.state == AgentState.DEAD and swarm.launcher.alive(victim.id)
        swarm.serve_until(lambda: victim.state == AgentState.RUNNING, 10)
        assert victim.state == AgentState.RUNNING and not swarm.replaced
        assert len(coord.agents) == 7

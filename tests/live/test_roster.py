"""The roster's bookkeeping without processes: load time, node health, pools."""

from __future__ import annotations

from live.roster import Roster
from live.worker import WorkerSpec
from swarmsim.metrics import Metrics
from swarmsim.query import AgentState


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def roster(launcher, clock: Clock, dead_after_s: float = 3.0) -> Roster:
    return Roster(launcher, Metrics(0.0, 1.0), clock, dead_after_s, startup_timeout_s=60.0)


def spec(wid: int, layer: str = "retriever", shard: int = 0) -> WorkerSpec:
    return WorkerSpec(wid, "", layer, "retriever", "cpu-desktop", "", shard=shard)


def test_load_seconds_sum_each_startup_and_role_change_as_it_completes(launcher):
    clock = Clock()
    r = roster(launcher, clock)
    a, b = r.launch(spec(0)), r.launch(spec(1))
    clock.t = 2.5
    r.ready(a, "retriever", "retriever", 0)
    assert r.metrics.load_s == 2.5  # b is still loading: it counts nothing yet
    clock.t = 10.0
    r.leave(a, AgentState.SWITCHING)
    clock.t = 11.0
    assert r.ready(a, "embedder", "embedder", -1) == ("role_change", 10.0)
    assert r.metrics.load_s == 3.5
    assert b.state == AgentState.STARTING and a.pool is r.pools["embedder", -1]


def test_a_node_is_up_while_one_of_its_agents_is_alive_or_none_was_placed(launcher):
    clock = Clock()
    r = roster(launcher, clock, dead_after_s=3.0)
    a, b = r.launch(spec(0), node=0), r.launch(spec(1), node=1)
    for agent in (a, b):
        r.ready(agent, "retriever", "retriever", 0)
    assert r.node_up(3, clock.t).tolist() == [True, True, True]  # node 2: nothing placed
    clock.t = 5.0
    a.heard("HEARTBEAT", {}, 4.0)  # a heartbeats, b went silent past interval x liveness
    assert r.node_up(3, clock.t).tolist() == [True, False, True]
    r.dead(b)
    assert r.node_up(3, clock.t).tolist() == [True, False, True]
    r.leave(a, AgentState.DRAINING)
    r.stop(a)  # stopped by scale-in: not evidence that its node is down
    assert r.node_up(3, clock.t).tolist() == [True, False, True]


def test_only_running_agents_sit_in_a_pool(launcher):
    clock = Clock()
    r = roster(launcher, clock)
    a = r.launch(spec(0))
    assert r.least_loaded("retriever", 0, credit=4) is None  # starting
    r.ready(a, "retriever", "retriever", 0)
    assert r.least_loaded("retriever", 0, credit=4) is a
    r.leave(a, AgentState.DRAINING)
    assert r.least_loaded("retriever", 0, credit=4) is None and a.pool is None


class Exited:
    """A launcher whose processes in ``gone`` have exited."""

    def __init__(self) -> None:
        self.gone: set[int] = set()

    def start(self, spec: object) -> None: ...
    def stop(self, worker_id: int) -> None: ...
    def close(self) -> None: ...

    def alive(self, worker_id: int) -> bool:
        return worker_id not in self.gone


def test_a_layer_waits_for_an_agent_declared_dead_whose_process_lives_not_for_a_killed_one():
    """As the simulator holds work for an agent it gave up on: a paused, hung or partitioned
    worker comes back, so its layer's work waits; a killed one (process gone) does not."""
    launcher, clock = Exited(), Clock()
    r = roster(launcher, clock)
    a = r.launch(spec(0, "synth-small", -1))
    r.ready(a, "synth-small", "synthesizer", -1)
    r.dead(a)
    assert r.servable("synth-small", -1)  # declared dead, process alive: it may re-register
    launcher.gone.add(0)
    assert not r.servable("synth-small", -1)  # killed: nothing will take the work
    assert not r.servable("embedder", -1)  # a layer with no agent at all

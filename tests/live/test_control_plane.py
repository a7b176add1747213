"""The live coordinator as a ControlPlane, without processes: plans are validated as the
simulator validates them, a bad one from a controller falls back to the default plan."""

from __future__ import annotations

import numpy as np
import pytest

from live.state import Job, Query
from live.worker import WorkerSpec
from swarmsim.errors import SwarmError
from swarmsim.inference import InferenceStrategy
from swarmsim.query import AgentState, FailureReason, Outcome


def waiting_query(coord, qid: int = 7) -> Query:
    """A query embedded and waiting for its route plan at the retrieval stage."""
    stage = next(i for i, s in enumerate(coord.pipeline.stages) if s == "retriever")
    q = Query(qid, b"client", f"t{qid}", 0.0, 60.0, 0, "small", 10, 10, 0)
    q.stage, q.vector = stage, np.zeros(coord.files.dim, dtype=np.float32)
    coord.active[q.id] = q
    coord.awaiting[q.id] = q
    return q


def running_retriever(coord, wid: int, shard: int) -> None:
    spec = WorkerSpec(wid, "", "retriever", "retriever", "cpu-desktop", "", shard=shard)
    coord.roster.launch(spec)
    coord.roster.ready(coord.agents[wid], "retriever", "retriever", shard)


def test_route_refuses_a_plan_the_simulator_would_refuse(offline):
    coord = offline
    running_retriever(coord, 0, shard=0)
    q = waiting_query(coord)
    with pytest.raises(ValueError, match="agent 5 is not an accepting replica of shard 0"):
        coord.route(q.id, ((0, 5),))  # no such agent
    with pytest.raises(ValueError, match="agent 0 is not an accepting replica of shard 1"):
        coord.route(q.id, ((1, 0),))  # agent 0 holds shard 0
    coord.roster.leave(coord.agents[0], AgentState.DRAINING)
    with pytest.raises(ValueError, match="agent 0"):
        coord.route(q.id, ((0, 0),))  # draining: accepts no new work
    assert q.id in coord.awaiting and not q.done  # a refused plan changes nothing
    with pytest.raises(ValueError, match="query 8 is not waiting"):
        coord.route(8, ())


def test_a_routed_search_queues_at_its_replica_past_the_credit(offline):
    """As in the simulator, a router's choice binds: six searches routed to replica 0 of
    shard 0 all go there (the credit of 4 would send the last two to idle replica 1)."""
    coord = offline
    coord.send_worker = lambda agent, msg: True  # type: ignore[method-assign]
    running_retriever(coord, 0, shard=0)
    running_retriever(coord, 1, shard=0)
    for qid in range(6):
        coord.route(waiting_query(coord, qid).id, ((0, 0),))
    assert coord.cfg.worker_credit < 6
    assert (coord.agents[0].outstanding, coord.agents[1].outstanding) == (6, 0)


def test_a_controller_plan_the_coordinator_refuses_falls_back_to_the_default(offline):
    coord = offline
    q = waiting_query(coord)

    class StalePlan:
        active = True

        def decide(self, swarm, query) -> None:
            swarm.route(query.id, ((0, 99),))

    coord.controls.route_slot = StalePlan()
    coord.controls.decide_route(q, "retriever")
    assert coord.counts["bad_plans"] == 1
    # the default plan had no running replica to name: the query ends, explicitly
    assert q.outcome == Outcome.FAILED and q.reason == FailureReason.NO_SHARD
    assert coord.metrics.reasons == {FailureReason.NO_SHARD: 1}


def test_the_view_reports_node_health_and_load_time_from_the_roster(offline):
    coord = offline
    running_retriever(coord, 0, shard=0)
    coord.metrics.load_s = 4.0
    view = coord.view()
    assert view.node_up.tolist() == coord.roster.node_up(len(coord.node_names), 0.0).tolist()
    assert view.node_up.all() and view.totals.load_s == 4.0
    coord.roster.dead(coord.agents[0])
    assert not coord.view().node_up[coord.agents[0].node]


def test_configure_is_explicitly_unsupported_live(offline):
    with pytest.raises(SwarmError, match="does not serve inference strategies"):
        offline.configure(0, InferenceStrategy())


def test_the_simulator_and_the_live_coordinator_are_both_a_swarm(offline):
    """One contract: both answer views and take every ControlPlane command (runtime check of
    the protocol's methods; mypy checks the signatures on the simulator's side)."""
    from swarmsim.scenario_files import load_scenario
    from swarmsim.simulation import Simulation
    from swarmsim.view import ControlPlane, Swarm

    sim = Simulation(load_scenario("homelab"), seed=0)
    for plane in (sim, offline):
        assert isinstance(plane, ControlPlane) and isinstance(plane, Swarm)
    assert offline.view().node_up.all()  # nothing placed yet: no node known down


def test_the_default_plan_queues_at_a_replica_at_its_credit_rather_than_drop_its_shard(offline):
    """Under a burst every retriever is at the worker credit: the default plan still names
    each shard's least-loaded replica (the search waits there, as in the simulator), so the
    query keeps its recall instead of failing ``no_shard``."""
    coord = offline
    n = coord.files.n_shards
    for shard in range(n):
        running_retriever(coord, shard, shard)
        for j in range(coord.cfg.worker_credit):
            coord.roster.add_job(coord.agents[shard], Job(f"b{shard}-{j}", None, "retriever",
                                                         "SEARCH", None, shard))  # fmt: skip
    assert coord.dispatch.least_loaded("retriever", 0) is None  # all at their credit
    assert coord.default_plan("retriever") == tuple((s, s) for s in range(n))

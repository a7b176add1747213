"""The live view's SLO violations count the queries in flight past the SLO, kept as queries
arrive and end (``swarmsim.summary.OverdueCounter``), as a scan of the active ones would."""

from __future__ import annotations

from live.client import query_payload
from live.protocol import DATA, Message
from live.worker import WorkerSpec
from swarmsim.query import Outcome
from swarmsim.summary import count_overdue


def test_overdue_queries_in_flight_count_until_they_end(offline) -> None:
    coord = offline
    coord.send_worker = lambda agent, msg: True  # type: ignore[method-assign]  # no processes
    for wid, (name, layer) in enumerate(coord.scenario.layers.items()):
        shard = 0 if layer.role == "retriever" else -1
        coord.roster.launch(WorkerSpec(wid, "", name, layer.role, "cpu-desktop", "", shard=shard))
        coord.roster.ready(coord.agents[wid], name, layer.role, shard)
    clock = [0.0]
    coord.now = coord.pipeline.now = lambda: clock[0]  # type: ignore[method-assign]
    for i in range(4):
        clock[0] = float(i)
        coord.pipeline.admit(b"c", Message(DATA, "QUERY", f"q{i}", "c", query_payload(tokens=8)))
    queries = list(coord.active.values())
    assert len(queries) == 4  # all in flight: their jobs were sent, none answered
    slo = coord.metrics.slo_s
    for now, late in ((slo + 0.5, 1), (slo + 2.5, 3)):
        clock[0] = now
        assert count_overdue(coord.active, now, slo, since=0.0) == late
        assert coord.view().totals.slo_violations == coord.metrics.slo_violations + late
    coord.finish(queries[0], Outcome.FAILED, "deadline")  # it ends: it counts as a failure
    assert coord.pipeline.overdue.at(clock[0]) == count_overdue(coord.active, clock[0], slo, 0.0)
    assert coord.pipeline.overdue.at(clock[0]) == 2

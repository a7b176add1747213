"""Work past its deadline is cancelled at the worker, and admission by deadline keeps the
admitted queries within the SLO under overload (real processes over ZeroMQ)."""

from __future__ import annotations

import threading
import time

import zmq

from experiments.hostile import SLO_S, overload
from live import sockets
from live.config import LiveConfig
from live.load import drive, queries
from live.protocol import DATA, Message
from live.runner import LiveRun, Swarm

BEATS = ("failures.heartbeat_interval_s=0.5", "failures.heartbeat_liveness=3")


def test_a_huge_generation_with_a_short_deadline_frees_the_synthesizer_at_it():
    """Two 32,768-token generations for the large model (about 23 s each, emulated at a
    twentieth) with 1 s deadlines: the one running is stopped and the one queued behind it
    dropped at 1 s, and honest queries sent alongside are all served."""
    run = LiveRun("homelab", overrides=("rate=2", *BEATS), workers=8,
                  config=LiveConfig(time_scale=0.05))  # fmt: skip
    with Swarm(run) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        synth = next(a for a in coord.agents.values() if a.layer == "synth-large")
        large = next(i for i, c in enumerate(swarm.scenario.workload.classes) if c.model == "large")
        huge = {"qclass": large, "input_tokens": 1000, "output_tokens": 32_768, "pool": 0}
        ctx = zmq.Context()
        try:
            sock = sockets.dealer(ctx, coord.client_address, b"greedy")
            for task in ("huge-1", "huge-2"):
                deadline = time.time() + 1.0
                sockets.send(sock, Message(DATA, "QUERY", task, "greedy", huge, deadline=deadline))
            honest = {}
            arrivals = queries(swarm.scenario, 0, len(coord.files.queries))

            def client() -> None:
                honest["stats"] = drive(coord.client_address, arrivals, 4.0, drain_s=15)

            thread = threading.Thread(target=client, daemon=True)
            thread.start()
            swarm.serve_until(lambda: synth.outstanding == 2, 5)
            held_at = coord.now()
            swarm.serve_until(lambda: synth.outstanding == 0, 5)
            freed_after = coord.now() - held_at
            answers = []
            swarm.serve_until(lambda: bool(answers.extend(_answers(sock))) or len(answers) >= 2, 3)
            swarm.serve_until(lambda: not thread.is_alive() and not coord.active, 30)
        finally:
            ctx.destroy(linger=0)
    assert freed_after < 1.5  # the huge jobs left the replica at their deadline, not ~46 s on
    assert sorted((m.task, m.payload["reason"]) for m in answers) == [
        ("huge-1", "deadline"),
        ("huge-2", "deadline"),
    ]  # fmt: skip (either may fail first)
    assert all(m.payload["latency_s"] < 1.5 for m in answers)
    stats = honest["stats"]
    assert stats.sent >= 4 and stats.answers == {"completed": stats.sent}


def _answers(sock: zmq.Socket) -> list[Message]:
    got = []
    while (msg := sockets.try_recv(sock, routed=False)) is not None:
        got.append(msg[1])
    return got


def test_admission_by_slo_keeps_admitted_queries_within_it_at_overload():
    """At about 3x what the swarm serves within the SLO: refusals are answered at once and
    the p99 of the admitted queries (a failure counting as infinitely late) is within the
    SLO."""
    out = overload(rate=36.0, objective="slo", duration=6.0)
    assert out["refused"] > out["queries"] / 3  # it is overloaded
    assert out["admitted_p99_s"] <= SLO_S
    assert out["refusal_max_s"] < 0.05
    assert out["goodput_qps"] > 5

"""The load generator: a client process that sends the scenario's workload to the
coordinator's client port, with the simulator's own workload code and random streams.

For a given scenario and seed it sends the same queries at the same offsets as the
simulator creates them (the ``workload``, ``prefix``, ``bursts`` and ``queries`` streams of
``RandomStreams``), so a live run and a simulated run of one seed see the same arrivals and
the same prompts (prefix blocks). Run as
``python -m live.load --address ADDR --scenario REF [--set K=V ...] --seed N --duration S
--pool N [--keys DIR]``; it prints one JSON line of client-side counts when done, or when
stopped by SIGINT or SIGTERM, or when its parent (the swarm) goes away: then it sends nothing
more and waits a moment (``STOP_DRAIN_S``) for the answers it is owed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import zmq

from swarmsim.rng import RandomStreams
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario
from swarmsim.workload import Workload

from . import auth, sockets
from .errors import ProtocolError
from .keys import party
from .protocol import DATA, RESPONSE, Message

STOP_DRAIN_S = 1.5  # once stopped, how long the answers still owed are awaited


@dataclass
class ClientStats:
    """What the client saw: queries sent and answers by outcome, client-side latencies."""

    sent: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # of the answers other than completed
    latencies: list[float] = field(default_factory=list)
    errors: int = 0

    def to_dict(self) -> dict:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] if lat else None
        return {"sent": self.sent, "answers": self.answers, "reasons": self.reasons,
                "errors": self.errors, "p50_s": p50}  # fmt: skip


def queries(
    scenario: Scenario, seed: int, n_pool: int, base_dir: Path | None = None
) -> Iterator[tuple[float, dict]]:
    """(offset seconds, QUERY payload) in arrival order: the simulator's arrivals for ``seed``,
    with their prompts' prefix-block hashes (``blocks``) when the workload has them."""
    streams = RandomStreams(seed)
    workload = Workload(
        scenario.workload,
        streams["workload"].gen,
        base_dir,
        prefix_rng=streams["prefix"].gen,
        burst_rng=streams["bursts"].gen,
    )
    pool = streams["queries"]
    for arrival in workload.arrivals():
        payload = {
            "qclass": arrival.qclass,
            "input_tokens": arrival.input_tokens,
            "output_tokens": arrival.output_tokens,
            "pool": pool.randrange(n_pool),
        }
        if arrival.blocks:
            payload["blocks"] = list(arrival.blocks)
        yield arrival.t, payload


def drive(
    address: str,
    arrivals: Iterator[tuple[float, dict]],
    duration_s: float,
    drain_s: float,
    stop: Callable[[], bool] = lambda: False,
    secure: sockets.Secure | None = None,
) -> ClientStats:
    """Send ``arrivals`` until ``duration_s``, then wait up to ``drain_s`` for the answers;
    once ``stop()`` is true (the swarm is shutting down) send nothing more and wait at most
    ``STOP_DRAIN_S`` for the answers still owed (the swarm answers or fails them first)."""
    ctx = zmq.Context()
    sock = sockets.dealer(ctx, address, f"client-{os.getpid()}".encode(), secure=secure)
    stats, sent_at = ClientStats(), {}
    start = time.monotonic()
    end, stopping = duration_s + drain_s, False  # answers are awaited until ``end``
    try:
        pending = next(arrivals, None)
        while True:
            now = time.monotonic() - start
            if not stopping and stop():
                stopping, pending, end = True, None, min(end, now + STOP_DRAIN_S)
            if pending is not None and pending[0] >= duration_s:
                pending = None
            if pending is None and (not sent_at or now > end):
                break
            while pending is not None and pending[0] <= now:
                task = str(stats.sent)
                sockets.send(sock, Message(DATA, "QUERY", task, "client", pending[1]))
                sent_at[task] = time.monotonic()
                stats.sent += 1
                pending = next(arrivals, None)
                if pending is not None and pending[0] >= duration_s:
                    pending = None
            wait = 0.1 if pending is None else max(pending[0] - now, 0.0)
            if sock.poll(min(wait, 0.1) * 1000):
                _receive(sock, stats, sent_at)
    finally:
        ctx.destroy(linger=0)
    return stats


def _receive(sock: zmq.Socket, stats: ClientStats, sent_at: dict[str, float]) -> None:
    while (got := sockets.try_recv(sock, routed=False)) is not None:
        msg = got[1]
        if isinstance(msg, ProtocolError) or msg.type != RESPONSE:
            stats.errors += 1
            continue
        t0 = sent_at.pop(msg.task, None)
        if t0 is None:
            stats.errors += 1
            continue
        p = msg.payload if isinstance(msg.payload, dict) else {}
        outcome = str(p.get("outcome", "?"))
        stats.answers[outcome] = stats.answers.get(outcome, 0) + 1
        if outcome != "completed":
            reason = str(p.get("reason", "?"))
            stats.reasons[reason] = stats.reasons.get(reason, 0) + 1
        if outcome == "completed":
            stats.latencies.append(time.monotonic() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.load")
    parser.add_argument("--address", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--pool", type=int, required=True)
    parser.add_argument("--keys", type=Path, help="a key directory: send as its client key")
    args = parser.parse_args(argv)
    secure = None if args.keys is None else auth.client(party(args.keys, "client"))
    scenario = load_scenario(args.scenario, args.overrides)
    base = Path(args.scenario).parent if Path(args.scenario).is_file() else None
    arrivals = queries(scenario, args.seed, args.pool, base)
    parent, stopping = os.getppid(), []
    for sig in (signal.SIGINT, signal.SIGTERM):  # the swarm stops us: report, then exit
        signal.signal(sig, lambda *_: stopping.append(True))
    stats = drive(
        args.address,
        arrivals,
        args.duration,
        args.drain,
        stop=lambda: bool(stopping) or os.getppid() != parent,
        secure=secure,
    )
    print(json.dumps(stats.to_dict()))
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # its sockets are closed and its report written: skip freeing every module (numpy, faiss),
    # which on a loaded machine held a stopping swarm up for tenths of a second
    os._exit(code)

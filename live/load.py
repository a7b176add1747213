"""The load generator: a client process that sends the scenario's workload to the
coordinator's client port, with the simulator's own workload code and random streams.

For a given scenario and seed it sends the same queries at the same offsets as the
simulator creates them (the ``workload``, ``prefix``, ``bursts`` and ``queries`` streams of
``RandomStreams``), so a live run and a simulated run of one seed see the same arrivals and
the same prompts (prefix blocks). Run as
``python -m live.load --address ADDR --scenario REF [--set K=V ...] --seed N --duration S
--pool N [--retry S] [--keys DIR]``; it prints one JSON line of client-side counts when done,
or when stopped by SIGINT or SIGTERM, or when its parent (the swarm) goes away: then it sends
nothing more and waits a moment (``STOP_DRAIN_S``) for the answers it is owed.

With ``--retry S`` it is a Lazy Pirate client (the ZeroMQ guide's): a query unanswered after
S seconds is sent again under the same task id, up to ``RETRIES`` times, then counted
``unanswered``; an answer to a query already answered is counted a duplicate and dropped, so
a coordinator that restarts loses no query silently.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import zmq

from swarmsim.rng import RandomStreams
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario
from swarmsim.workload import Workload

from . import auth, sockets
from .errors import ProtocolError
from .keys import party
from .protocol import DATA, RESPONSE, Message

if TYPE_CHECKING:
    from .runner import Swarm

RETRIES = 2  # resends of an unanswered query before the client reports it failed
UNANSWERED = "unanswered"  # the client's outcome for a query it gave up on
STOP_DRAIN_S = 1.5  # once stopped, how long the answers still owed are awaited


@dataclass
class ClientStats:
    """What the client saw: queries sent and answers by outcome, client-side latencies."""

    sent: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # of the answers other than completed
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    resent: int = 0  # Lazy Pirate resends of unanswered queries
    duplicates: int = 0  # answers to queries already answered (dropped)

    def to_dict(self) -> dict:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] if lat else None
        return {"sent": self.sent, "answers": self.answers, "reasons": self.reasons,
                "errors": self.errors, "p50_s": p50, "resent": self.resent,
                "duplicates": self.duplicates}  # fmt: skip

    def answer(self, outcome: str) -> None:
        self.answers[outcome] = self.answers.get(outcome, 0) + 1


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


@dataclass
class Outstanding:
    """A query sent and not yet answered: when first sent, when last sent, how often."""

    payload: dict
    first: float
    last: float
    tries: int = 1


def drive(
    address: str,
    arrivals: Iterator[tuple[float, dict]],
    duration_s: float,
    drain_s: float,
    stop: Callable[[], bool] = lambda: False,
    retry_s: float | None = None,
    secure: sockets.Secure | None = None,
) -> ClientStats:
    """Send ``arrivals`` until ``duration_s``, then wait up to ``drain_s`` for the answers;
    once ``stop()`` is true (the swarm is shutting down) send nothing more and wait at most
    ``STOP_DRAIN_S`` for the answers still owed (the swarm answers or fails them first). With
    ``retry_s``, a query unanswered that long is resent (Lazy Pirate); queries still
    unanswered at the end are counted ``unanswered``."""
    ctx = zmq.Context()
    sock = sockets.dealer(ctx, address, f"client-{os.getpid()}".encode(), secure=secure)
    stats, waiting, answered = ClientStats(), {}, set()
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
            if pending is None and (not waiting or now > end):
                break
            while pending is not None and pending[0] <= now:
                task = str(stats.sent)
                sockets.send(sock, Message(DATA, "QUERY", task, "client", pending[1]))
                waiting[task] = Outstanding(pending[1], time.monotonic(), time.monotonic())
                stats.sent += 1
                pending = next(arrivals, None)
                if pending is not None and pending[0] >= duration_s:
                    pending = None
            if retry_s is not None and not stopping:
                _resend(sock, stats, waiting, retry_s)
            wait = 0.1 if pending is None else max(pending[0] - now, 0.0)
            if sock.poll(min(wait, 0.1) * 1000):
                _receive(sock, stats, waiting, answered)
    finally:
        ctx.destroy(linger=0)
    for _ in waiting:
        stats.answer(UNANSWERED)
    return stats


def _resend(sock: zmq.Socket, stats: ClientStats, waiting: dict, retry_s: float) -> None:
    """Resend each query unanswered for ``retry_s`` (oldest first: ``waiting`` is in send
    order); one resent ``RETRIES`` times already is given up on, counted ``unanswered``."""
    now = time.monotonic()
    while waiting:
        task, q = next(iter(waiting.items()))
        if now - q.last < retry_s:
            return
        del waiting[task]
        if q.tries > RETRIES:
            stats.answer(UNANSWERED)
            continue
        sockets.send(sock, Message(DATA, "QUERY", task, "client", q.payload))
        q.last, q.tries = now, q.tries + 1
        stats.resent += 1
        waiting[task] = q  # to the back: the most recently sent


def _receive(sock: zmq.Socket, stats: ClientStats, waiting: dict, answered: set) -> None:
    while (got := sockets.try_recv(sock, routed=False)) is not None:
        msg = got[1]
        if isinstance(msg, ProtocolError) or msg.type != RESPONSE:
            stats.errors += 1
            continue
        q = waiting.pop(msg.task, None)
        if q is None:
            if msg.task in answered:
                stats.duplicates += 1
            else:
                stats.errors += 1
            continue
        if q.tries > 1:  # only a query sent more than once can be answered twice
            answered.add(msg.task)
        p = msg.payload if isinstance(msg.payload, dict) else {}
        outcome = str(p.get("outcome", "?"))
        stats.answer(outcome)
        if outcome != "completed":
            reason = str(p.get("reason", "?"))
            stats.reasons[reason] = stats.reasons.get(reason, 0) + 1
        if outcome == "completed":
            stats.latencies.append(time.monotonic() - q.first)


class LoadThread(threading.Thread):
    """``drive`` from a thread of this process (with its own socket): seed 0's workload of
    ``swarm``'s scenario against a swarm run in-process (experiments and tests that inject
    faults); started at once, its ``stats`` final once it ends."""

    def __init__(
        self, swarm: Swarm, duration_s: float, drain_s: float = 30.0, retry_s: float | None = None
    ) -> None:
        super().__init__(daemon=True)
        coord = swarm.coord
        self.address, self.duration_s, self.drain_s = coord.client_address, duration_s, drain_s
        self.retry_s = retry_s
        self.arrivals = queries(swarm.scenario, 0, len(coord.files.queries))
        self.stats = ClientStats()
        self.start()

    def run(self) -> None:
        self.stats = drive(
            self.address, self.arrivals, self.duration_s, self.drain_s, retry_s=self.retry_s
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.load")
    parser.add_argument("--address", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--drain", type=float, default=30.0)
    parser.add_argument("--pool", type=int, required=True)
    parser.add_argument(
        "--retry", type=float, default=None, help="resend a query unanswered this long (s)"
    )
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
        retry_s=args.retry,
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

"""Stopping a swarm on SIGTERM or Ctrl-C: every process gone within ``SHUTDOWN_S`` of the
signal, every query answered.

The first signal is a request (``Stop``): the coordinator's loop ends, new queries are
answered FAILED with reason ``shutdown``, the load generator sends no more, queries in flight
get ``DRAIN_S`` to finish and the rest are failed with reason ``shutdown`` (their clients are
told), then the workers are sent STOP (they exit while the load generator reports), SIGTERM,
and SIGKILL if still there ``WORKER_GRACE_S`` later. Ctrl-C in a terminal reaches the whole
process group: workers ignore it (the coordinator stops them), the load generator stops
sending and waits for the answers it is owed.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from swarmsim.query import GONE, FailureReason, Outcome

from .dispatch import NAME
from .protocol import CONTROL, Message

if TYPE_CHECKING:
    from .runner import Swarm

SIGNALS = (signal.SIGTERM, signal.SIGINT)
SHUTDOWN_S = 2.0  # from the signal until the last process of the swarm has exited
DRAIN_S = 0.75  # of which queries in flight may take this long to finish
WORKER_GRACE_S = 0.5  # a worker still running this long after STOP and SIGTERM is killed
LOAD_GRACE_S = 0.6  # the load generator's time to take its last answers and report


class Stop:
    """SIGTERM and SIGINT as a request to stop: the first sets the time asked (the loops
    that poll it wind down); more change nothing (the wind-down is bounded, and an exception
    raised into it could leave workers behind)."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> bool:
        return self.at is not None

    @classmethod
    @contextlib.contextmanager
    def installed(cls) -> Iterator[Stop]:
        """A Stop handling both signals (also when started with SIGINT ignored, as a shell's
        background job is) until the block ends; the handlers before are put back."""
        stop = cls()
        before = {sig: signal.signal(sig, stop._handle) for sig in SIGNALS}
        try:
            yield stop
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)

    def _handle(self, *_: object) -> None:
        if self.at is None:
            self.at = time.monotonic()


def wind_down(swarm: Swarm, load: subprocess.Popen | None) -> dict[str, Any]:
    """Admit no more, let queries in flight finish for ``DRAIN_S``, fail the rest with
    reason shutdown (answered to their clients), and collect the load generator's report.
    The workers are stopped after, by ``Swarm.close``."""
    coord = swarm.coord
    coord.stopping = True
    if load is not None and load.poll() is None:
        load.send_signal(signal.SIGTERM)  # send no more; take the answers owed, report
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C without ``Stop``: cut short
        swarm.serve_until(lambda: not coord.active, DRAIN_S)
    for query in list(coord.active.values()):  # every accepted query gets its answer
        coord.finish(query, Outcome.FAILED, FailureReason.SHUTDOWN)
    stop = Message(CONTROL, "STOP", "", NAME)
    for agent in coord.agents.values():  # the workers exit while the load generator reports
        if agent.state not in GONE:
            coord.send_worker(agent, stop)
    return client_report(load)


def client_report(load: subprocess.Popen | None) -> dict[str, Any]:
    """The load generator's last line (its client-side counts), once it exits (told to by
    SIGTERM if it still runs); killed if it has not within ``LOAD_GRACE_S``."""
    if load is None:
        return {}
    if load.poll() is None:
        load.send_signal(signal.SIGTERM)
    try:
        out, _ = load.communicate(timeout=LOAD_GRACE_S)
    except subprocess.TimeoutExpired:
        load.kill()
        load.wait()
        return {}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}

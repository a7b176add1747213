"""A live swarm served from a thread of the test process (as ``live up`` serves it), for
tests that talk to it over its real sockets."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

from live.runner import LiveRun, serve


@contextlib.contextmanager
def serving(run: LiveRun, load: bool = False) -> Iterator[dict]:
    """Serve ``run`` until the block ends; yields its announced addresses (control,
    queries, http) and fails the test if the swarm does not shut down."""
    announced: queue.Queue = queue.Queue()
    stop = threading.Event()

    def target() -> None:
        try:
            serve(run, announced.put, load=load, stop=stop.is_set)
        except BaseException as err:  # surfaced to the test below
            announced.put(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    got = announced.get(timeout=120)
    if isinstance(got, BaseException):
        raise got
    try:
        yield got
    finally:
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the swarm did not shut down"

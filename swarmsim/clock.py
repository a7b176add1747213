"""Cheap timed callbacks on the SimPy event queue.

The hot path (message deliveries, service completions) schedules a minimal event through
``Environment.schedule``: an object with the two attributes SimPy's ``step`` reads
(``callbacks``, ``_ok``) whose callback calls ``fn(arg)``. No generator to resume, no
process object, no SimPy ``Event`` construction. Slower-moving behaviour (arrivals,
failures, control intervals) is written as ordinary SimPy processes. ``run_until`` is
``Environment.run(until=event)``'s loop without a method call and a try block per event.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush
from typing import Any

import simpy
from simpy.events import NORMAL


class Call:
    """An event that fires ``fn(arg)`` after ``delay`` simulated seconds."""

    __slots__ = ("_ok", "_value", "arg", "callbacks", "fn")

    def __init__(self, env: simpy.Environment, delay: float, fn: Callable[[Any], None], arg: Any):
        self.fn = fn
        self.arg = arg
        self._ok = True
        self._value = None
        self.callbacks = (_fire,)
        # env.schedule(self, NORMAL, delay), inlined (a Call is no simpy.Event: see above)
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))  # type: ignore[misc]


def _fire(call: Call) -> None:
    call.fn(call.arg)


def run_until(env: simpy.Environment, until: simpy.Event) -> None:
    """Process events until ``until`` has been processed, in exactly the order and with the
    failure check of ``env.run(until=until)`` (SimPy's ``Environment.step``, inlined). SimPy
    stops by raising from ``until``'s callback and re-schedules ``until`` (now callback-less)
    to resume with; the event number that costs is taken here too, so event counts agree."""
    if until.callbacks is None:
        return
    queue = env._queue
    while True:
        if not queue:
            raise RuntimeError(f"no scheduled events left but {until!r} was not triggered")
        env._now, _, _, event = heappop(queue)
        callbacks, event.callbacks = event.callbacks, None  # type: ignore[assignment]
        for callback in callbacks:
            callback(event)
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc
        if event is until:  # processed: its callbacks are gone, as env.run would leave them
            break
    next(env._eid)

"""Cheap timed callbacks on the SimPy event queue.

The hot path (message deliveries, service completions) schedules a minimal event through
``Environment.schedule``: an object with the two attributes SimPy's ``step`` reads
(``callbacks``, ``_ok``) whose callback calls ``fn(arg)``. No generator to resume, no
process object, no SimPy ``Event`` construction. Slower-moving behaviour (arrivals,
failures, control intervals) is written as ordinary SimPy processes.
"""

from __future__ import annotations

from collections.abc import Callable
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
        env.schedule(self, NORMAL, delay)  # type: ignore[arg-type]


def _fire(call: Call) -> None:
    call.fn(call.arg)

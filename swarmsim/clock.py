"""Cheap timed callbacks on the SimPy event queue.

The hot path (message hops, service completions) schedules a plain SimPy event whose
callback calls ``fn(arg)``: no generator to resume, no process object. Slower-moving
behaviour (arrivals, failures, control intervals) is written as SimPy processes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simpy
from simpy.events import NORMAL


class Call(simpy.Event):
    """An event that fires ``fn(arg)`` after ``delay`` simulated seconds."""

    def __init__(self, env: simpy.Environment, delay: float, fn: Callable[[Any], None], arg: Any):
        self.env = env
        self.callbacks = [self._fire]
        self._value = arg
        self._ok = True
        self.fn = fn
        env.schedule(self, NORMAL, delay)

    def _fire(self, _event: simpy.Event) -> None:
        self.fn(self._value)

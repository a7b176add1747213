"""A job carries its query's deadline, so the worker can drop work nobody waits for.

The coordinator stamps each job's header ``deadline`` (epoch seconds, as ``ts``) with its
query's deadline; the worker drops a queued job past it and stops a running one at it,
answering FAILED with reason ``deadline``. So no query, however large it claims to be,
holds a replica beyond its deadline. Epoch time crosses process boundaries (monotonic clocks
do not), so across machines the cut is as exact as their clocks agree (NTP: milliseconds).
An OpenAI-compatible backend's HTTP call cannot be stopped: its answer is discarded, but its
thread stays busy until the endpoint answers or times out.
"""

from __future__ import annotations

import math
import time

from .protocol import Message

REASON = "deadline"  # the reason a worker's FAILED answer gives for a job past its deadline


def wall_deadline(deadline: float, now: float) -> float:
    """The epoch time of ``deadline`` on a clock that reads ``now`` at this moment."""
    return time.time() + (deadline - now)


def remaining(msg: Message) -> float:
    """Seconds until ``msg``'s deadline (infinite without one)."""
    return math.inf if msg.deadline is None else msg.deadline - time.time()


def past_deadline(p: object) -> bool:
    """Whether a worker's FAILED answer says its job passed its deadline."""
    return isinstance(p, dict) and p.get("reason") == REASON

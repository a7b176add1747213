"""Injected delay and loss on the links between the coordinator and some agents.

Installed on the fabric only when a fault schedule has ``delay`` or ``drop`` faults, so a run
without them sends every message down the untouched path. A delayed message is handed to the
fabric ``MS ± J`` ms later (uniform jitter); a lost job or answer message is what it is on the
live runtime: nobody is told, the agent's slot stays taken, and the query fails at its deadline
(the scenario's, else 4 x the SLO, as live) unless the agent is declared dead first, when the
job is retried like the rest of its work. Heartbeats on such a link are lost or delayed alike;
:func:`silences` turns their arrivals into the coordinator's (false) death declarations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .clock import Call
from .query import FailureReason, Job, Outcome

if TYPE_CHECKING:
    import simpy

    from .coordinator import Coordinator
    from .fabric import Deliver, Fabric
    from .faults import Fault
    from .messages import Message
    from .rng import Stream

INJECTED = "injected"  # the fabric's drop reason for messages a drop fault lost


class LinkFaults:
    """Delay and drop faults in force, by agent id (or on every link), applied to sends."""

    def __init__(
        self,
        env: simpy.Environment,
        fabric: Fabric,
        stream: Stream,
        coordinator: Coordinator,
        deadline_s: float,
    ) -> None:
        self.env = env
        self.fabric = fabric
        self.stream = stream
        self.coordinator = coordinator
        self.deadline_s = deadline_s
        self.inner = fabric.send
        fabric.send = self.send  # type: ignore[method-assign]  # only while faults are scheduled
        self.by_agent: dict[int, list[Fault]] = {}
        self.everywhere: list[Fault] = []
        self.held: dict[int, list[Job]] = {}  # jobs whose message was lost, until their deadline
        self.dropped = 0

    def open(self, fault: Fault, agents: Sequence[int] | None) -> None:
        """``fault`` is in force on the links of ``agents`` (None: every link)."""
        for faults in self._lists(agents):
            faults.append(fault)

    def close(self, fault: Fault, agents: Sequence[int] | None) -> None:
        """``fault`` is lifted."""
        for faults in self._lists(agents):
            faults.remove(fault)

    def _lists(self, agents: Sequence[int] | None) -> list[list[Fault]]:
        if agents is None:
            return [self.everywhere]
        return [self.by_agent.setdefault(aid, []) for aid in agents]

    def extra_delay_s(self, fault: Fault) -> float:
        """One message's added delay under a delay fault: ``MS ± J`` ms, uniform."""
        assert fault.value is not None  # parse_fault requires one
        jitter = (2.0 * self.stream.uniform() - 1.0) * fault.jitter_ms if fault.jitter_ms else 0.0
        return (fault.value + jitter) / 1000.0

    def lost(self, fault: Fault) -> bool:
        """Whether one message is lost under a drop fault."""
        assert fault.value is not None
        return self.stream.uniform() < fault.value

    def send(self, msg: Message, src: str, dst: str, deliver: Deliver, ctx: Any) -> None:
        """The fabric's send, after the faults on the message's agent link."""
        aid = msg.dst if msg.dst >= 0 else msg.sender
        faults = self.by_agent.get(aid)
        if self.everywhere:
            faults = [*self.everywhere, *(faults or ())]
        if not faults:
            self.inner(msg, src, dst, deliver, ctx)
            return
        extra = 0.0
        for fault in faults:
            if fault.kind == "drop":
                if self.lost(fault):
                    self._drop(aid, ctx)
                    return
            else:
                extra += self.extra_delay_s(fault)
        if extra > 0.0:
            Call(self.env, extra, self._send_late, (msg, src, dst, deliver, ctx))
        else:
            self.inner(msg, src, dst, deliver, ctx)

    def _send_late(self, args: tuple[Message, str, str, Deliver, Any]) -> None:
        self.inner(*args)

    def _drop(self, aid: int, job: Job) -> None:
        fabric = self.fabric
        fabric.sent += 1
        fabric.dropped[INJECTED] = fabric.dropped.get(INJECTED, 0) + 1
        self.dropped += 1
        self.held.setdefault(aid, []).append(job)
        due = max(job.query.arrival + self.deadline_s - self.env.now, 0.0)
        Call(self.env, due, self._expire, (aid, job))

    def _expire(self, held: tuple[int, Job]) -> None:
        """A lost message's deadline: its slot is freed and its query failed (if in flight)."""
        aid, job = held
        jobs = self.held.get(aid, [])
        if job in jobs:
            jobs.remove(job)
            self.coordinator.release(job.agent, job.layer)
            self.coordinator.finish(job.query, Outcome.FAILED, FailureReason.DEADLINE)

    def surrender(self, aid: int) -> list[Job]:
        """The jobs held for an agent being declared dead (retried with the rest of its work)."""
        return self.held.pop(aid, [])

    def forget(self) -> None:
        """The coordinator restarted: the jobs it held are gone, their slots freed."""
        for jobs in self.held.values():
            for job in jobs:
                self.coordinator.release(job.agent, job.layer)
        self.held.clear()


def silences(arrivals: Sequence[float], timeout_s: float, rejoin_s: float) -> list[float]:
    """When the coordinator declares an agent dead, given when its heartbeats arrive (sorted):
    ``timeout_s`` after the last one heard whenever the next comes later than that; it takes
    the agent back ``rejoin_s`` after declaring it (its next READY), ignoring beats meanwhile."""
    out: list[float] = []
    if not arrivals:
        return out
    last = arrivals[0]
    for t in arrivals[1:]:
        while t - last > timeout_s:
            out.append(last + timeout_s)
            last += timeout_s + rejoin_s
        last = max(last, t)
    return out

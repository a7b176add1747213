"""Fault injection on a live swarm: the scenario's ``faults:`` schedule (``swarmsim.faults``)
and ``--inject`` / ``swarmsim live inject``, applied to real processes and sockets.

How each kind is realised live:

- ``kill``: SIGKILL to the worker's process (the launcher knows its pid).
- ``pause``: SIGSTOP, then SIGCONT after D: the process and its kernel sockets are frozen.
- ``hang``: a FAULT message; the worker's loop stops polling, serving and heartbeating (for
  D, or for good) while its process and sockets live, so libzmq keeps the TCP connection and
  its ZMTP heartbeats answered; only the application heartbeats fall silent.
- ``slow``: a FAULT message; the worker's jobs started in the next D seconds take X times as long.
- ``delay``, ``drop``, ``partition``: a fault layer on the coordinator's worker socket
  (:class:`LinkFaults`): messages to and from the affected workers are held in a time-ordered
  queue and released MS ± J ms later, lost with probability P (an RNG seeded from the run's
  seed), or, for a partition, every message to or from the workers placed on the node is lost.
- ``coordinator:restart``: the coordinator is closed as a crash would (its queries in flight
  are lost, its workers keep running) and a new one binds the same addresses; workers
  reconnect and re-register, clients resend unanswered queries (``live.load``, Lazy Pirate).
- ``controller:crash|hang|nan|invalid``: each acting controller is wrapped to raise, to
  overrun its decision deadline, or to return NaN or out-of-range actions; its guardrail
  replaces each such action by the heuristic's.

Fault times are seconds on the swarm's clock, which is the workload's: zero when the load
starts, so a fault ``@60`` strikes as the query arriving at 60 s is sent, as in the simulator.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from swarmsim.faults import ALL, Fault, Target
from swarmsim.query import AgentState

from . import sockets
from .protocol import CONTROL, Message

if TYPE_CHECKING:
    from .backends import Pending
    from .coordinator import Coordinator
    from .hierarchy import SupervisedLauncher
    from .launcher import LocalLauncher
    from .state import Agent

NAME = "coordinator"
FAULT_STREAM = 17  # the faults' RNG: seeded from (run seed, this), apart from every other
MAX_FAULT_S = 1e6  # longest hang or slow-down a FAULT message may ask for
WINDOW_S = 10.0  # the availability windows' width (as swarmsim.injection's)
COORDINATOR_RESTART = "coordinator_restart"  # why queries in flight at a restart failed


# --- the worker's side ---------------------------------------------------------------------


class WorkerFaults:
    """The faults a worker was told to play (FAULT messages): a hung loop, a slower service."""

    def __init__(self) -> None:
        self.hung_until = 0.0
        self.slow_until = 0.0
        self.factor = 1.0

    def take(self, payload: Any, now: float) -> None:
        """Start the fault a FAULT payload names; ValueError if it is malformed (it is
        network input): ``{"kind": "hang"|"slow", "for_s": D or None, "factor": X}``."""
        p = payload if isinstance(payload, dict) else {}
        kind, for_s, factor = p.get("kind"), p.get("for_s"), p.get("factor", 1.0)
        if for_s is not None and not (_number(for_s) and 0 < for_s <= MAX_FAULT_S):
            raise ValueError(f"FAULT for_s {for_s!r} is not in (0, {MAX_FAULT_S:g}]")
        until = math.inf if for_s is None else now + for_s
        if kind == "hang":
            self.hung_until = until
        elif kind == "slow" and _number(factor) and 1 <= factor <= MAX_FAULT_S:
            self.slow_until, self.factor = until, float(factor)
        else:
            raise ValueError(f"FAULT {kind!r} with factor {factor!r}: want hang, or slow >= 1")

    def hung_for(self, now: float) -> float:
        """Seconds the loop stays hung from ``now`` (0: it is not hung)."""
        return max(self.hung_until - now, 0.0)

    def stretch(self, job: Pending, start: float) -> None:
        """Make a job started at ``start`` take ``factor`` times as long, while slowed."""
        if start < self.slow_until and job.future is None and job.due > start:
            job.due = start + (job.due - start) * self.factor


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# --- the fault layer on the coordinator's worker socket ------------------------------------


@dataclass(frozen=True)
class LinkRule:
    """A delay, drop or partition fault on the links of ``agents`` (None: every link)."""

    fault: Fault
    agents: frozenset[int] | None


class LinkFaults:
    """Wraps the coordinator's send to and receive from workers: each message on a faulted
    link is lost, or held in a time-ordered queue and released when its delay has passed."""

    def __init__(self, coord: Coordinator, rng: np.random.Generator) -> None:
        self.coord, self.rng = coord, rng
        self.rules: list[LinkRule] = []
        self.held: list[tuple[float, int, bool, bytes, Message]] = []  # (release, seq, out, ..)
        self.seq = itertools.count()
        self.dropped = 0  # job and answer messages lost
        self.heartbeats_lost = 0

    def _lost(self, msg: Message) -> None:
        if msg.action == "HEARTBEAT":
            self.heartbeats_lost += 1
        else:
            self.dropped += 1

    def _fate(self, agent_id: int) -> float | None:
        """The extra delay in seconds of one message on ``agent_id``'s link; None: lost."""
        delay = 0.0
        for rule in self.rules:
            if rule.agents is not None and agent_id not in rule.agents:
                continue
            f = rule.fault
            if f.kind == "partition" or (f.kind == "drop" and self.rng.random() < (f.value or 0)):
                return None
            if f.kind == "delay":
                delay += ((f.value or 0.0) + f.jitter_ms * self.rng.uniform(-1.0, 1.0)) / 1000
        return delay

    def send(self, agent: Agent, msg: Message) -> bool:
        """The coordinator sends ``msg`` to ``agent`` over the faulted link (True: it left)."""
        fate = self._fate(agent.id)
        if fate is None:
            self._lost(msg)
            return True
        if fate <= 0:
            return sockets.send(self.coord.workers, msg, agent.ident)
        heapq.heappush(self.held, (self.coord.now() + fate, next(self.seq), True, agent.ident, msg))
        return True

    def receive(self, peer: bytes, msg: Message) -> None:
        """A worker's message arrived at the coordinator's socket: deliver, hold or lose it."""
        try:
            agent_id = int(peer[1:]) if peer[:1] == b"w" else -1
        except ValueError:
            agent_id = -1
        fate = self._fate(agent_id)
        if fate is None:
            self._lost(msg)
        elif fate <= 0:
            self.coord._from_worker(peer, msg)
        else:
            heapq.heappush(self.held, (self.coord.now() + fate, next(self.seq), False, peer, msg))

    def release(self, now: float) -> None:
        """Deliver the held messages whose delay has passed, in release order."""
        while self.held and self.held[0][0] <= now:
            _, _, outbound, peer, msg = heapq.heappop(self.held)
            if outbound:
                sockets.send(self.coord.workers, msg, peer)
            else:
                self.coord._from_worker(peer, msg)

    def due(self, now: float) -> float:
        """Seconds until the next held message is due (inf: none held)."""
        return self.held[0][0] - now if self.held else math.inf

    def idle(self) -> bool:
        return not self.rules and not self.held


# --- controllers that misbehave ------------------------------------------------------------


class Misbehaving:
    """Stands in for a guarded controller's policy while a ``controller:`` fault lasts."""

    def __init__(self, inner: Any, mode: str, shape: tuple[int, ...], deadline_s: float) -> None:
        self.inner, self.mode, self.shape, self.deadline_s = inner, mode, shape, deadline_s
        self.task: str = getattr(inner, "task", "")
        self.spoiled = 0  # decisions it spoiled (each one its guardrail fell back on)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Raise (crash), overrun the deadline (hang), or return NaN or out-of-range actions."""
        self.spoiled += 1
        if self.mode == "crash":
            raise RuntimeError("injected fault: controller:crash")
        if self.mode == "hang":
            time.sleep(self.deadline_s * 1.5)
            return np.asarray(self.inner.act(obs))
        if self.mode == "nan":
            return np.full(self.shape, np.nan)
        return np.full(self.shape, -1, dtype=np.int64)  # invalid: below every action's range

    def reset(self) -> None:
        self.inner.reset()


# --- the schedule --------------------------------------------------------------------------


class Host(Protocol):
    """What the injector acts on: the swarm's coordinator, its launcher, a restart."""

    coord: Coordinator | None
    launcher: LocalLauncher | SupervisedLauncher

    def restart_coordinator(self) -> None: ...


class Injector:
    """Applies a fault schedule to a live swarm from its loop, lifts each fault when its
    duration ends, and counts what the faults did (the summary's ``faults`` section)."""

    def __init__(self, host: Host, faults: Sequence[Fault], seed: int) -> None:
        self.host = host
        self.rng = np.random.default_rng([seed, FAULT_STREAM])
        self.pending: list[tuple[float, int, Fault]] = []  # (at, seq, fault)
        self.lifts: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.applied: list[dict[str, Any]] = []
        self.link: LinkFaults | None = None
        self.stopped: set[int] = set()  # pids SIGSTOPped and not yet continued
        self.struck: set[int] = set()  # agents a pause, hang or partition struck
        self.last_struck: list[int] = []  # the agents the fault applied last struck
        self.killed: set[int] = set()
        self.deaths = self.false_deaths = 0  # declared while the process lived; of them, false
        self.guardrail_fallbacks = 0  # decisions spoiled by lifted controller faults
        self.misbehaving: list[Misbehaving] = []  # the controller faults in force
        self.ok_windows: set[int] = set()  # windows with a completion within the SLO
        self.marked_to = -math.inf  # finished queries up to here are in ok_windows
        self.deaths_seen = 0
        self.death_marks: dict[int, float] = {}  # agent id -> when it was last seen dead
        for fault in faults:
            self.add(fault)

    @property
    def coord(self) -> Coordinator:
        assert self.host.coord is not None  # the injector runs only while the swarm does
        return self.host.coord

    def add(self, fault: Fault, base_s: float = 0.0) -> None:
        """Schedule ``fault`` at ``base_s`` + its time (``live inject``: now + its time)."""
        heapq.heappush(self.pending, (base_s + fault.at_s, next(self.seq), fault))

    def restarts(self) -> bool:
        """Whether a coordinator restart is scheduled (clients then resend lost queries)."""
        return any(f.kind == "coordinator" for _, _, f in self.pending)

    def due(self) -> float:
        """Seconds until the injector next has something to do (inf: nothing scheduled)."""
        now = self.coord.now()
        times = [self.pending[0][0]] if self.pending else []
        times += [self.lifts[0][0]] if self.lifts else []
        due = min(times, default=math.inf) - now
        return min(due, self.link.due(now)) if self.link is not None else due

    def tick(self) -> None:
        """Apply the faults now due, lift those whose time is up, release held messages,
        and judge the deaths declared since the last tick."""
        now = self.coord.now()
        while self.pending and self.pending[0][0] <= now:
            _, _, fault = heapq.heappop(self.pending)
            self.apply(fault, now)
        while self.lifts and self.lifts[0][0] <= now:
            heapq.heappop(self.lifts)[2]()
        if self.link is not None:
            self.link.release(now)
            if self.link.idle():
                self.coord.link = None
        if self.coord.counts["deaths"] != self.deaths_seen:
            self._judge_deaths()
        self._mark_windows(now)

    def apply(self, fault: Fault, now: float) -> None:
        """Strike with ``fault`` now, and schedule its lifting."""
        kind = fault.kind
        lift: Callable[[], None] | None = None
        self.last_struck = []
        if kind == "coordinator":
            self.host.restart_coordinator()
            if self.link is not None:  # the new coordinator's socket gets the same layer
                self.link.coord, self.link.held = self.coord, []
                self.coord.link = self.link
        elif kind == "controller":
            lift = self._controllers(fault.target.name)
        elif kind in ("delay", "drop", "partition"):
            lift = self._link(fault)
        else:
            lift = self._workers(fault)
        end = None if fault.end_s is None else now + (fault.end_s - fault.at_s)
        agents = sorted(self.last_struck)
        self.applied.append({"text": fault.text, "kind": kind, "at": now, "end": end,
                             "agents": agents})  # fmt: skip
        if lift is not None and end is not None:
            heapq.heappush(self.lifts, (end, next(self.seq), lift))

    def _workers(self, fault: Fault) -> Callable[[], None] | None:
        coord, launcher = self.coord, self.host.launcher
        agents = [coord.agents[i] for i in agents_of(coord, fault.target)]
        self.last_struck = [a.id for a in agents]
        alive = [a for a in agents if launcher.alive(a.id)]
        if fault.kind == "kill":
            for a in alive:
                launcher.kill(a.id)
            self.killed.update(self.last_struck)
            return None
        self.struck.update(self.last_struck)
        if fault.kind == "pause":
            pids = [launcher.pid(a.id) for a in alive]
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            self.stopped.update(pids)
            return lambda: self._resume(pids)
        payload = {"kind": fault.kind, "for_s": fault.duration_s, "factor": fault.value or 1.0}
        for a in alive:  # straight to the socket: an injection, not traffic on the link
            sockets.send(coord.workers, Message(CONTROL, "FAULT", "", NAME, payload), a.ident)
        return None  # the worker lifts its own hang or slow-down when D has passed

    def _resume(self, pids: list[int]) -> None:
        for pid in pids:
            if pid in self.stopped:
                self.stopped.discard(pid)
                _signal(pid, signal.SIGCONT)

    def _link(self, fault: Fault) -> Callable[[], None]:
        coord = self.coord
        if fault.kind == "partition":
            node = coord.node_names.index(fault.target.name)
            agents: frozenset[int] | None = frozenset(
                a.id for a in coord.agents.values() if a.node == node
            )
            self.struck.update(agents or ())
        elif fault.target.name == "*":
            agents = None
        else:
            agents = frozenset(agents_of(coord, fault.target))
        self.last_struck = sorted(coord.agents if agents is None else agents)
        rule = LinkRule(fault, agents)
        link = self.link = self.link or LinkFaults(coord, self.rng)
        link.rules.append(rule)
        coord.link = link
        return lambda: link.rules.remove(rule)

    def _controllers(self, mode: str) -> Callable[[], None]:
        """Wrap every acting controller's policy; the lift puts each back."""
        coord, swapped = self.coord, []
        for slot in coord.slots.values():
            if slot.acting is None:
                continue
            guard = slot.acting.guard
            shape = np.asarray(guard.action_space.sample()).shape
            deadline = guard.deadline_s or coord.cfg.decision_deadline_s
            wrapper = Misbehaving(guard.policy, mode, shape, deadline)
            swapped.append((guard, guard.policy, wrapper))
            guard.policy = wrapper
            self.misbehaving.append(wrapper)

        def lift() -> None:
            for guard, policy, wrapper in swapped:
                self.guardrail_fallbacks += wrapper.spoiled
                self.misbehaving.remove(wrapper)
                guard.policy = policy

        return lift

    def _judge_deaths(self) -> None:
        """Count the deaths declared while the process lived (a kill's are not counted); one
        no pause, hang or partition had struck is false: delay or loss alone made it look
        dead."""
        coord, launcher = self.coord, self.host.launcher
        self.deaths_seen = coord.counts["deaths"]
        for agent in coord.agents.values():
            if agent.state != AgentState.DEAD or self.death_marks.get(agent.id) == agent.gone:
                continue
            self.death_marks[agent.id] = agent.gone
            if agent.id in self.killed or not launcher.alive(agent.id):
                continue
            self.deaths += 1
            self.false_deaths += agent.id not in self.struck

    def _mark_windows(self, now: float) -> None:
        """Note the availability windows in which a query completed within the SLO."""
        coord = self.coord
        warmup, slo = coord.metrics.warmup_s, coord.metrics.slo_s
        for end, _, outcome, latency, _ in reversed(coord.finished):
            if end <= self.marked_to:
                break
            if outcome == "completed" and latency <= slo and end >= warmup:
                self.ok_windows.add(int((end - warmup) // WINDOW_S))
        self.marked_to = now

    def applied_count(self, kind: str) -> int:
        """How many faults of ``kind`` have been applied so far."""
        return sum(text.startswith(f"{kind}:") for text in (a["text"] for a in self.applied))

    def close(self) -> None:
        """Continue every process still paused (so that it can be stopped)."""
        self._resume(list(self.stopped))

    def used(self) -> bool:
        """Whether the run had a fault schedule or a fault was injected."""
        return bool(self.applied or self.pending)

    def summary(self) -> dict[str, Any]:
        """The summary's ``faults`` section, with the simulator's keys
        (``swarmsim.summary.FaultSummary``)."""
        coord = self.coord
        m, now = coord.metrics, coord.now()
        ended = len(m.latencies) + m.late_failures
        n_windows = int((now - m.warmup_s) / WINDOW_S + 0.5)
        spoiled = sum(p.spoiled for p in self.misbehaving)
        return {
            "applied": list(self.applied),
            "deaths_declared": self.deaths,
            "false_deaths": self.false_deaths,
            "late_results_discarded": coord.protocol_errors.get("stray", 0),
            "messages_dropped": 0 if self.link is None else self.link.dropped,
            "heartbeats_lost": 0 if self.link is None else self.link.heartbeats_lost,
            "guardrail_fallbacks": self.guardrail_fallbacks + spoiled,
            "availability": len(m.latencies) / ended if ended else None,
            "window_availability": (
                len(self.ok_windows & set(range(n_windows))) / n_windows if n_windows > 0 else None
            ),
            "window_s": WINDOW_S,
        }


def agents_of(coord: Coordinator, target: Target) -> list[int]:
    """The agents a worker or link fault's target names: those of the layer or role, in id
    order, all of them (``#*``) or the i-th."""
    ids = sorted(a.id for a in coord.agents.values() if target.name in (a.layer, a.role))
    return ids if target.index == ALL else ids[target.index : target.index + 1]


def agent_counts(coord: Coordinator) -> dict[str, int]:
    """Agents per layer and per role the coordinator knows (dead ones too: a fault's index
    counts them, as it counts a scenario's agents)."""
    counts: dict[str, int] = {}
    for agent in coord.agents.values():
        for name in {agent.layer, agent.role}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

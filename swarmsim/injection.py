"""A fault schedule realised in the simulator, each fault at its time, as the live runtime does.

=====================  ========================================================================
``kill``               the agent crashes for good (``Failures.crash``); declared dead a
                       heartbeat timeout later, its work retried or failed as for any crash
``pause`` / ``hang``   the agent makes no progress (no service, no heartbeats) for D (hang
                       without D: for good). It is declared dead a heartbeat timeout in, unless
                       it thaws first; then its work is retried, and once it thaws its answers
                       to that work are discarded (``late_results_discarded``) and it rejoins
                       ``rejoin_s`` later (live: it hears no coordinator, reconnects, READY)
``slow``               its work progresses X times slower for D (a service spanning the window
                       is stretched by the part inside it)
``delay`` / ``drop``   messages between the coordinator and the agents (``*``: all) are late
                       by MS ± J or lost with probability P (``linkfaults``), heartbeats too:
                       a silence past the timeout is a false death declaration
``partition``          every message between the coordinator and the agents on the node is
                       lost, as a drop of 1 (even on the coordinator's own node: live, where
                       the coordinator has no node, does the same), so they are declared dead
                       a heartbeat timeout in, their work retried elsewhere; once healed,
                       each rejoins at its next reconnect attempt (capped doubling back-off
                       from ``RECONNECT_S``, as a live worker that heard nothing)
``coordinator``        every query in flight fails (``coordinator_restart``) and its client
                       sends it again ``retry_s`` after it first did (live: a Lazy Pirate
                       client, up to ``RETRIES`` times); the coordinator's backlogs are gone,
                       answers to old work are discarded, the agents rejoin ``rejoin_s`` later
``controller``         the acting controllers crash, hang, answer NaN or an invalid action while
                       it lasts (``controllers.injected.FaultWindows`` asks ``controller_mode``)
=====================  ========================================================================

``rejoin_s`` = heartbeat interval x liveness + ``RECONNECT_S``: an agent the coordinator gave up
on hears no more heartbeats, notices after the same timeout, backs off its first reconnect delay
and says READY. ``retry_s`` = the deadline (the scenario's, else 4 x the SLO) + that timeout:
a query unanswered that long was lost. Randomness (detection phases, jitter, loss) comes from
the ``faults`` stream, appended after the others, so a schedule leaves their draws alone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .clock import Call
from .faults import ALL, LINK_KINDS, Fault
from .linkfaults import LinkFaults, silences
from .pool import add_outstanding
from .query import GONE, AgentState, FailureReason, Job, Outcome, Query
from .serving import at_receiver
from .summary import AppliedFault, FaultSummary, availability, window_availability
from .workclock import WorkClock

if TYPE_CHECKING:
    import simpy

    from .cluster import Agent, Cluster
    from .coordinator import Coordinator
    from .failures import Failures
    from .lifecycle import Lifecycle
    from .metrics import Metrics
    from .rng import Stream
    from .scenario import Scenario
    from .service import ServiceModel

RECONNECT_S = 1.0  # live/config.py RECONNECT_INITIAL_S: a worker's first reconnect back-off
RECONNECT_MAX_S = 32.0  # live/config.py RECONNECT_MAX_S: ... doubling, capped here
RETRIES = 2  # live/load.py RETRIES: a client's resends of a query left unanswered
WINDOW_S = 10.0  # the availability windows' width
FROZEN_KINDS = ("pause", "hang")


class Injector:
    """Applies a scenario's fault schedule to a simulation's components."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        stream: Stream,
        *,
        cluster: Cluster,
        coordinator: Coordinator,
        failures: Failures,
        lifecycle: Lifecycle,
        service: ServiceModel,
        metrics: Metrics,
    ) -> None:
        self.env, self.stream = env, stream
        self.cluster, self.coordinator, self.failures = cluster, coordinator, failures
        self.lifecycle, self.metrics = lifecycle, metrics
        self.schedule = scenario.fault_schedule
        cfg = scenario.failures
        self.interval_s = cfg.heartbeat_interval_s
        self.timeout_s = cfg.heartbeat_interval_s * cfg.heartbeat_liveness
        self.rejoin_s = self.timeout_s + RECONNECT_S
        self.deadline_s = scenario.deadline_s or 4 * scenario.slo_latency_s  # live's default
        self.retry_s = self.deadline_s + self.timeout_s
        self.resends = scenario.workload.session_mode != "closed-loop"  # a session moves on
        self.tries: dict[int, int] = {}  # query id -> times its client has sent it
        self.clock = WorkClock()
        self.started: dict[int, tuple[float, float]] = {}  # agent -> (start, work) of its batch
        kinds = {f.kind for f in self.schedule}
        if kinds & {"slow", *FROZEN_KINDS}:
            self.base_seconds = service.seconds
            service.seconds = self._seconds  # type: ignore[method-assign]  # only with such faults
        self.links: LinkFaults | None = None
        if kinds & {*LINK_KINDS, "partition"}:
            self.links = LinkFaults(env, failures.fabric, stream, coordinator, self.deadline_s)
        self.controller_faults = [f for f in self.schedule if f.kind == "controller"]
        self.applied: list[AppliedFault] = []
        self.killed: set[int] = set()
        self.given_up: set[int] = set()  # agents declared dead here that have not rejoined
        self.cut: set[int] = set()  # agents a partition cuts off now
        self.late_pending: dict[int, int] = {}  # frozen agent declared dead -> answers it owes
        self.deaths = self.false_deaths = self.late = self.heartbeats_lost = 0
        self.guardrail_fallbacks = 0
        metrics.ok_ends = []

    def start(self) -> None:
        """Schedule every fault at its time; those at 0 apply now, before the first arrival."""
        for fault in self.schedule:
            if fault.at_s <= self.env.now:
                self._apply(fault)
            else:
                Call(self.env, fault.at_s - self.env.now, self._apply, fault)

    # --- applying one fault -----------------------------------------------------------------

    def _apply(self, fault: Fault) -> None:
        kind, now = fault.kind, self.env.now
        end = fault.end_s
        agents = self.targets(fault) if kind in ("kill", "slow", *FROZEN_KINDS, *LINK_KINDS) else []
        row = AppliedFault(
            text=fault.text, kind=kind, at=now, end=end, agents=[a.id for a in agents]
        )
        self.applied.append(row)
        if kind == "kill":
            for agent in agents:
                self._kill(agent)
        elif kind in FROZEN_KINDS:
            for agent in agents:
                self._freeze(agent, math.inf if end is None else end)
        elif kind == "slow":
            assert fault.value is not None and end is not None  # parse_fault requires both
            for agent in agents:
                self._rate_window(agent, end, 1.0 / fault.value)
        elif kind in LINK_KINDS:
            self._open_link(fault, agents)
        elif kind == "partition":
            self._partition(fault)
        elif kind == "coordinator":
            self._restart()

    def targets(self, fault: Fault) -> list[Agent]:
        """The agents a worker or link fault strikes now: of its layer or role (``*``: all),
        not stopped, in id order; ``#i`` picks the i-th (none when there are fewer)."""
        name, index = fault.target.name, fault.target.index
        agents = [
            a
            for a in self.cluster.agents
            if a.state != AgentState.STOPPED
            and (name == "*" or a.layer.name == name or a.layer.role == name)
        ]
        return agents if index == ALL else agents[index : index + 1]

    def detection_delay(self) -> float:
        """Seconds from an agent's last heartbeat-sending moment to its death declaration: the
        last beat fell uniformly within the preceding interval (as ``Failures``)."""
        return self.timeout_s - self.stream.uniform() * self.interval_s

    # --- worker faults ----------------------------------------------------------------------

    def _kill(self, agent: Agent) -> None:
        self.killed.add(agent.id)
        if agent.state != AgentState.DEAD:
            self.failures.agent_failures += 1
            self.failures.crash(agent, self.detection_delay())
            if self.links is not None:  # jobs whose message was lost: retried on detection too
                agent.lost.extend(self.links.surrender(agent.id))

    def _freeze(self, agent: Agent, end: float) -> None:
        now = self.env.now
        self._rate_window(agent, end, 0.0)
        delay = self.detection_delay()
        if end - now > delay:
            Call(self.env, delay, self._declare_frozen, agent)
        if end < math.inf:
            Call(self.env, end - now, self._thaw, agent)

    def _rate_window(self, agent: Agent, end: float, rate: float) -> None:
        """From now to ``end`` the agent works at ``rate``; a batch in service is re-timed."""
        now, aid = self.env.now, agent.id
        batch = agent.batch
        if not batch or agent.state in GONE or aid not in self.started:
            self.clock.add(aid, now, end, rate)
            return
        t0, work = self.started[aid]
        left = work - self.clock.done(aid, t0, now)
        self.clock.add(aid, now, end, rate)
        agent.epoch += 1  # the completion scheduled at the old pace is void
        self.started[aid] = (now, left)
        done = self.clock.finish(aid, now, left)
        if done < math.inf:
            serving = self.coordinator.serving
            Call(self.env, done - now, serving.on_served, (agent, batch, agent.epoch))

    def _seconds(self, agent: Agent, batch: Sequence[Job]) -> float:
        """The service time of ``batch`` at the agent's pace from now (its work clock)."""
        work = self.base_seconds(agent, batch)
        now = self.env._now
        self.started[agent.id] = (now, work)
        if agent.id not in self.clock.windows:
            return work
        return self.clock.finish(agent.id, now, work) - now

    def _declare_frozen(self, agent: Agent) -> None:
        if (
            agent.state in GONE
            or not agent.known_alive
            or not self.clock.frozen(agent.id, self.env.now)
        ):
            return
        self.late_pending[agent.id] = self._declare(agent)

    def _thaw(self, agent: Agent) -> None:
        self.late += self.late_pending.pop(agent.id, 0)
        if agent.id in self.given_up:
            Call(self.env, self.rejoin_s, self._rejoin, agent)

    def _declare(self, agent: Agent) -> int:
        """Declare a live but silent agent dead: its work (and any job whose message was lost)
        is retried; the answers it still owes for that work, returned."""
        owed = len(agent.batch) + len(agent.queue)
        self.failures.take_work(agent)
        if self.links is not None:
            agent.lost.extend(self.links.surrender(agent.id))
        self.failures.declare_dead(agent)
        self.deaths += 1
        self.given_up.add(agent.id)
        return owed

    def _rejoin(self, agent: Agent) -> None:
        """The agent says READY again: it serves with the model or shard it kept (a frozen
        one cannot: its thaw brings it back)."""
        if agent.state != AgentState.DEAD or agent.id in self.killed or agent.node.failed:
            return
        if agent.id not in self.given_up or self.clock.frozen(agent.id, self.env.now):
            return
        self.given_up.discard(agent.id)
        if agent.retiring:
            self.lifecycle.retire_crashed(agent)
            return
        agent.state = AgentState.RUNNING
        self.failures.set_known(agent, True)

    # --- link faults ------------------------------------------------------------------------

    def _open_link(self, fault: Fault, agents: list[Agent]) -> None:
        assert self.links is not None and fault.duration_s is not None
        ids = None if fault.target.name == "*" else [a.id for a in agents]
        self.links.open(fault, ids)
        Call(self.env, fault.duration_s, self._close_link, (fault, ids))
        for agent in agents:
            for t in silences(self._beats(fault), self.timeout_s, self.rejoin_s):
                Call(self.env, t - self.env.now, self._false_death, agent)

    def _partition(self, fault: Fault) -> None:
        """Cut the node's agents off from the coordinator."""
        assert self.links is not None and fault.duration_s is not None
        node = fault.target.name
        agents = [
            a for a in self.cluster.agents if a.state != AgentState.STOPPED and a.node.name == node
        ]
        self.applied[-1]["agents"] = [a.id for a in agents]
        self.failures.partitions += 1
        rule = dataclasses.replace(fault, kind="drop", value=1.0)
        ids = [a.id for a in agents]
        self.links.open(rule, ids)
        self.cut.update(ids)
        Call(self.env, fault.duration_s, self._heal, (rule, agents))
        for agent in agents:
            delay = self.detection_delay()
            if fault.duration_s > delay:
                Call(self.env, delay, self._declare_cut, agent)

    def _declare_cut(self, agent: Agent) -> None:
        serving = agent.state in (AgentState.RUNNING, AgentState.DRAINING)
        if serving and agent.known_alive and agent.id in self.cut:
            self._declare(agent)  # its answers are lost on the way, not late

    def _heal(self, healed: tuple[Fault, list[Agent]]) -> None:
        """The partition ends: each agent given up rejoins at its next reconnect attempt."""
        assert self.links is not None
        rule, agents = healed
        self.links.close(rule, [a.id for a in agents])
        for agent in agents:
            self.cut.discard(agent.id)
            Call(self.env, self._next_attempt(rule.at_s) - self.env.now, self._rejoin, agent)

    def _next_attempt(self, silent_since: float) -> float:
        """When a worker that heard nothing from ``silent_since`` on next says READY, from
        now: it gives a session up after the heartbeat timeout, naps its back-off (doubling
        from ``RECONNECT_S`` up to ``RECONNECT_MAX_S``), and tries again."""
        t, nap = silent_since + self.timeout_s, RECONNECT_S
        while t + nap < self.env.now:
            t += nap + self.timeout_s
            nap = min(2 * nap, RECONNECT_MAX_S)
        return t + nap

    def _close_link(self, lifted: tuple[Fault, list[int] | None]) -> None:
        assert self.links is not None
        self.links.close(*lifted)

    def _beats(self, fault: Fault) -> list[float]:
        """When one agent's heartbeats reach the coordinator around ``fault``'s window (the
        beats sent in it lost or delayed by it), in order."""
        assert self.links is not None and fault.end_s is not None
        ivl, now = self.interval_s, self.env.now
        t = now - ivl + self.stream.uniform() * ivl
        out = []
        while t < fault.end_s + self.timeout_s + self.rejoin_s + 2 * ivl:
            if t < now or t >= fault.end_s:
                out.append(t)
            elif fault.kind == "drop":
                if self.links.lost(fault):
                    self.heartbeats_lost += 1
                else:
                    out.append(t)
            else:
                out.append(t + self.links.extra_delay_s(fault))
            t += ivl
        return sorted(out)

    def _false_death(self, agent: Agent) -> None:
        now = self.env.now
        serving = agent.state in (AgentState.RUNNING, AgentState.DRAINING)
        if not serving or not agent.known_alive or self.clock.frozen(agent.id, now):
            return
        self.late += self._declare(agent)
        self.false_deaths += 1
        Call(self.env, self.rejoin_s, self._rejoin, agent)

    # --- the coordinator and the controllers ------------------------------------------------

    def _restart(self) -> None:
        """The coordinator restarts empty: queries in flight fail (their clients send them
        again), backlogs and held-back work are gone, answers still due are discarded, the
        agents rejoin ``rejoin_s`` later."""
        coord, now = self.coordinator, self.env.now
        for query in list(coord.active.values()):
            coord.finish(query, Outcome.FAILED, FailureReason.COORDINATOR_RESTART)
            tries = self.tries.get(query.id, 1)
            if self.resends and tries <= RETRIES:
                self.tries[query.id] = tries + 1
                due = max(query.arrival + self.retry_s - now, 0.0)
                Call(self.env, due, self._resend, query)
        for layer in self.cluster.layers.values():
            layer.backlog.clear()
        if self.links is not None:
            self.links.forget()
        known = []
        for agent in self.cluster.agents:
            if agent.state in GONE:
                continue
            add_outstanding(agent, -len(agent.blocked))
            agent.blocked.clear()
            self.late += at_receiver(agent) + len(agent.batch)
            if agent.known_alive:
                agent.known_alive = False
                known.append(agent)
        for layer in self.cluster.layers.values():
            layer.refresh()
        Call(self.env, self.rejoin_s, self._rejoin_all, known)

    def _resend(self, lost: Query) -> None:
        """A client sends a query lost in a restart again, under the same id."""
        q = Query(lost.id, self.env.now, lost.qclass, lost.model, lost.input_tokens,
                  lost.output_tokens, lost.pool, lost.blocks)  # fmt: skip
        self.coordinator.accept(q)

    def _rejoin_all(self, agents: list[Agent]) -> None:
        for agent in agents:
            if agent.state not in GONE and not agent.known_alive:
                self.failures.set_known(agent, True)

    def controller_mode(self) -> str | None:
        """How the acting controllers misbehave now (crash, hang, nan, invalid), or None."""
        now = self.env.now
        for fault in self.controller_faults:
            end = math.inf if fault.end_s is None else fault.end_s
            if fault.at_s <= now < end:
                return fault.target.name
        return None

    def struck(self) -> None:
        """A controller fault spoiled one decision (its guardrail used the heuristic)."""
        self.guardrail_fallbacks += 1

    # --- the summary ------------------------------------------------------------------------

    def summary(self) -> FaultSummary:
        """The ``faults`` section of the metrics summary."""
        m, now = self.metrics, self.env.now
        return FaultSummary(
            applied=list(self.applied),
            deaths_declared=self.deaths,
            false_deaths=self.false_deaths,
            late_results_discarded=self.late,
            messages_dropped=0 if self.links is None else self.links.dropped,
            heartbeats_lost=self.heartbeats_lost,
            guardrail_fallbacks=self.guardrail_fallbacks,
            availability=availability(m),
            window_availability=window_availability(m.ok_ends or (), m.warmup_s, now, WINDOW_S),
            window_s=WINDOW_S,
        )

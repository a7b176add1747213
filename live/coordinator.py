"""The coordinator: three ROUTER sockets (workers, clients, operators) and a loop that reads
poll -> dispatch -> housekeeping.

It is the live runtime's ``ControlPlane`` (``route`` / ``configure`` / ``scale`` /
``assign``) and builds ``ClusterView`` snapshots from what its workers report, so the same
``Task`` objects and controllers that ran in the simulator decide here. Every accepted query
gets exactly one final answer, completed or failed, by its deadline; the jobs of a worker
that stops heartbeating are retried on another replica. Its workers are a ``Roster``, its
backlog and retries a ``Dispatch``, the query's life (advance -> join -> finish) a
``Pipeline``, its controllers ``Controls``, what its synthesizers' prefix caches hold a
``KVIndex``; heartbeats and the retry budget are the scenario's ``failures`` section, as in
the simulator.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from swarmsim.errors import SwarmError
from swarmsim.inference import InferenceStrategy
from swarmsim.lifecycle import lifecycle_record
from swarmsim.metrics import Metrics
from swarmsim.profiles import load_profiles
from swarmsim.query import GONE, AgentState, FailureReason, Outcome
from swarmsim.scenario import Scenario
from swarmsim.view import NO_AGENT, ClusterView, RoutePlan

from . import sockets
from .attachment import TaskSlot
from .auth import Guard, check_exposure, unauthenticated
from .config import LiveConfig
from .controls import Controls
from .corpusfiles import CorpusFiles
from .dispatch import NAME, Dispatch, job_id
from .errors import ProtocolError
from .faults import COORDINATOR_RESTART, Injector, LinkFaults
from .guard import THROTTLED, WORKER_CONTROLS, PeerGuard
from .kvindex import KVIndex
from .launcher import Launcher
from .limits import CLIENT_MAX_BYTES, CLIENT_RCVHWM, MAX_TASK_CHARS
from .nodebeat import NodeBeats, is_supervisor
from .pipeline import Pipeline
from .protocol import CONTROL, DATA, RESPONSE, Message, decode
from .roster import Roster
from .scaling import retire_drained, scale_layer
from .state import MAX_REPORTED_QUEUE, Agent, Job, Query
from .telemetry import Telemetry, build_view
from .window import LoadWindow

CLIENT_FLUSH_MS = 200  # at close, how long answers already sent may take to reach clients


class Coordinator:
    """The live swarm's coordinator (one per swarm, in the process that runs it)."""

    def __init__(
        self,
        scenario: Scenario,
        files: CorpusFiles,
        launcher: Launcher,
        cfg: LiveConfig | None = None,
        workers_bind: str = "tcp://127.0.0.1:0",
        clients_bind: str = "tcp://127.0.0.1:0",
        telemetry: Telemetry | None = None,
        control_bind: str = "tcp://127.0.0.1:0",
        metrics: Metrics | None = None,  # a restarted coordinator's: the run's so far
        keys: Path | None = None,
        insecure: bool = False,
    ) -> None:
        self.scenario, self.files, self.launcher = scenario, files, launcher
        self.cfg = cfg or LiveConfig()
        self.deadline_s = self.cfg.deadline_s or scenario.deadline_s or 4 * scenario.slo_latency_s
        failures = scenario.failures
        self.heartbeat_s = failures.heartbeat_interval_s
        self.dead_after_s = failures.heartbeat_interval_s * failures.heartbeat_liveness
        check_exposure((workers_bind, clients_bind, control_bind), keys is not None, insecure)
        self.keys, self.insecure = keys, insecure  # kept for a restart (live.faults)
        self.ctx = zmq.Context()
        self.auth: Guard | None = None  # the authenticator, when the swarm has keys
        try:
            self.auth = None if keys is None else Guard(self.ctx, keys)
            secure = (lambda _: None) if self.auth is None else self.auth.server
            self.workers = sockets.router(self.ctx, workers_bind, self.cfg.hwm, secure("workers"))
            self.clients = sockets.router(self.ctx, clients_bind, self.cfg.hwm, secure("clients"))
            self.control = sockets.router(self.ctx, control_bind, self.cfg.hwm,
                                          secure("control"))  # operators  # fmt: skip
        except BaseException:
            if self.auth is not None:
                self.auth.close()
            self.ctx.destroy(linger=0)
            raise
        self.stopping = False  # shutting down: new queries are answered FAILED shutdown
        self.poller = zmq.Poller()
        for sock in (self.workers, self.clients, self.control):
            self.poller.register(sock, zmq.POLLIN)
        for sock in (self.clients, self.control):  # no query or request is near 4 MB
            sock.setsockopt(zmq.MAXMSGSIZE, CLIENT_MAX_BYTES)
            sock.setsockopt(zmq.RCVHWM, min(self.cfg.hwm, CLIENT_RCVHWM))
        self.sock_names = {self.workers: "workers", self.clients: "clients",
                           self.control: "control"}  # fmt: skip
        self.guard = PeerGuard(self.cfg.guard, time.monotonic())  # rogue and flooding peers
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()  # CPU seconds of this process at time zero
        self.metrics = metrics or Metrics(scenario.warmup_s, scenario.slo_latency_s)
        self.telemetry = telemetry or Telemetry(None)
        self.roster = Roster(launcher, self.metrics, self.now, self.dead_after_s,
                             self.cfg.startup_timeout_s, tuple(scenario.layers))  # fmt: skip
        self.window = LoadWindow(scenario.layers)
        self.kv = KVIndex(scenario, load_profiles())
        self.dispatch = Dispatch(self.roster, self.window, scenario.layers, self.cfg.worker_credit,
                                 failures.max_attempts, self.metrics, self, self.now)  # fmt: skip
        self.controls = Controls(self, self.cfg)
        self.pipeline = Pipeline(scenario, files, self.metrics, self.telemetry, self.dispatch,
                                 self.controls, self._reply, self.now, self.deadline_s,
                                 self.cfg.max_backlog, self.cfg.admission)  # fmt: skip
        self.events: list[dict[str, Any]] = []  # lifecycle and controller events, decisions
        self.node_names = tuple(g.name for g in scenario.nodes)
        self.layer_roles = tuple(ly.role for ly in scenario.layers.values())
        self.protocol_errors: dict[str, int] = {}
        self.counts = {"sent": 0, "received": 0, "role_changes": 0, "deaths": 0, "bad_plans": 0}
        self.stage_s: dict[str, float] = {}
        self.next_beat = self.next_control = 0.0
        self.last_traffic = -1.0  # monotonic time a poll last found messages (spin_s)
        self.link: LinkFaults | None = None  # injected link faults on the worker socket
        self.injector: Injector | None = None  # takes operators' INJECT requests
        self.nodes = NodeBeats(self)  # node supervisors' aggregated heartbeats (live.nodebeat)

    # --- addresses, records and lifetime ----------------------------------------------------

    @property
    def worker_address(self) -> str:
        return sockets.endpoint(self.workers)

    @property
    def client_address(self) -> str:
        return sockets.endpoint(self.clients)

    @property
    def control_address(self) -> str:
        return sockets.endpoint(self.control)

    @property
    def agents(self) -> dict[int, Agent]:
        return self.roster.agents

    @property
    def slots(self) -> dict[str, TaskSlot]:
        return self.controls.slots

    @property
    def changes(self) -> deque[dict[str, Any]]:
        return self.controls.changes

    def now(self) -> float:
        """Seconds since the swarm started (the clock of timelines and views)."""
        return time.monotonic() - self.t0

    def restart_clock(self) -> None:
        """Make now time zero (when the load starts), so that arrivals in the timeline are
        offsets of the workload, as in the simulator."""
        shift = self.now()
        self.t0 += shift
        self.cpu0 = time.process_time()
        self.roster.shift(shift)
        self.next_beat = self.next_control = self.window.start = 0.0

    def close(self) -> None:
        """Tell every worker to stop, stop their processes, close the sockets."""
        for agent in self.agents.values():
            if agent.state not in GONE:
                self.send_worker(agent, Message(CONTROL, "STOP", "", NAME))
        try:
            self.launcher.close()
        finally:
            self.controls.close()
            if self.auth is not None:
                self.auth.close()
            self.clients.close(linger=CLIENT_FLUSH_MS)  # final answers get a moment to leave
            self.ctx.destroy(linger=0)
            self.telemetry.close()

    def crash(self) -> None:
        """Stop as a crashed coordinator would (``coordinator:restart``): the sockets close,
        the queries in flight are lost (failed in the metrics, answered to no client), and
        the workers keep running, to re-register with the next coordinator."""
        self.pipeline.reply = lambda *_: None
        for query in list(self.active.values()):
            self.finish(query, Outcome.FAILED, COORDINATOR_RESTART)
        self.controls.close()
        if self.auth is not None:
            self.auth.close()
        self.ctx.destroy(linger=0)

    # --- the loop --------------------------------------------------------------------------

    def step(self, timeout_s: float) -> None:
        """One pass: poll (at most ``timeout_s``) -> dispatch what arrived -> housekeeping."""
        events = self._poll(max(min(timeout_s, self._housekeeping_due()), 0))
        if self.workers in events:
            self._drain(self.workers, self._from_worker if self.link is None else self.link.receive)
        if self.clients in events:
            self._drain(self.clients, self._from_client)
        if self.control in events:
            self._drain(self.control, self._from_operator)
        self.controls.install_loaded()
        self.housekeeping()

    def _poll(self, timeout_s: float) -> dict[zmq.Socket, int]:
        """The sockets with messages waiting, within ``timeout_s``: polled without sleeping
        while the last traffic is under ``spin_s`` old (``LiveConfig.spin_s``), else blocking."""
        start = now = time.monotonic()
        spin_until = min(self.last_traffic + self.cfg.spin_s, start + timeout_s)
        while now < spin_until:
            events = self.poller.poll(0)
            if events:
                self.last_traffic = time.monotonic()
                return dict(events)
            now = time.monotonic()
        events = self.poller.poll(max(timeout_s - (now - start), 0) * 1000)
        if events:
            self.last_traffic = time.monotonic()
        return dict(events)

    def _housekeeping_due(self) -> float:
        now = self.now()
        due = min(self.next_beat, self.next_control) - now
        return min(due, self.pipeline.next_deadline() - now)

    def _drain(self, sock: zmq.Socket, handle: Callable[[bytes, Message], None]) -> None:
        name = self.sock_names[sock]
        for _ in range(1000):  # bounded, so housekeeping runs even under a flood
            try:
                if self.auth is None:
                    peer, frames = sockets.recv_raw(sock, True, zmq.NOBLOCK)
                else:
                    user, peer, frames = sockets.recv_raw_keyed(sock)
                    if not self.auth.admits(sock, user):  # refused, never answered
                        self._refuse(sock, None, unauthenticated(user))
                        continue
            except zmq.Again:
                return
            self.counts["received"] += 1
            if peer is None or self.guard.ignored(name, peer, time.monotonic()):
                continue  # a banned peer: dropped undecoded, unanswered
            try:
                msg = decode(frames)
            except ProtocolError as err:
                self._refuse(sock, peer, err)
                continue
            handle(peer, msg)

    def _refuse(
        self, sock: zmq.Socket, peer: bytes | None, err: ProtocolError, task: str = ""
    ) -> None:
        self.count_error(err.reason)
        self.telemetry.protocol_error(err.reason)
        if peer and self.guard.error(self.sock_names[sock], peer, time.monotonic()):
            sockets.send(sock, Message(RESPONSE, "ERROR", task, NAME, {"error": str(err)}), peer)

    def count_error(self, reason: str) -> None:
        self.protocol_errors[reason] = self.protocol_errors.get(reason, 0) + 1

    def housekeeping(self) -> None:
        """Heartbeats out, dead workers out, late queries failed, control decisions."""
        now = self.now()
        if now >= self.next_beat:
            self.next_beat = now + self.heartbeat_s
            self._heartbeat(now)
        for query in self.pipeline.expired(now):
            self.finish(query, Outcome.FAILED, FailureReason.DEADLINE)
        retire_drained(self.roster, self.send_worker)
        if now >= self.next_control:
            if self.next_control > 0:
                self.controls.decide_interval()
                self.window.reset(now)
                self.roster.mark_busy()
            self.next_control = now + self.scenario.control_interval_s
        self.telemetry.sample(self)

    def _heartbeat(self, now: float) -> None:
        self.controls.check()
        if self.auth is not None:
            self.auth.refresh()  # keys added or revoked since
        beat = Message(CONTROL, "HEARTBEAT", "", NAME)
        for agent in list(self.agents.values()):
            if agent.state in GONE:
                continue
            verdict = self.roster.verdict(agent, now)
            if verdict is not None:
                self.dead(agent, verdict)
            elif agent.state != AgentState.STARTING:
                if not self.nodes.covers(agent, now):  # else its supervisor's beat stands for it
                    self.send_worker(agent, beat)
                if self.roster.expire(agent, now):
                    self.dispatch.pump(agent.layer)
        self.nodes.beat(beat, now)

    def send_worker(self, agent: Agent, msg: Message) -> bool:
        self.counts["sent"] += 1
        if self.link is not None:  # an injected delay, drop or partition (live.faults)
            return self.link.send(agent, msg)
        return sockets.send(self.workers, msg, agent.ident)

    # --- workers ---------------------------------------------------------------------------

    def _from_worker(self, peer: bytes, msg: Message) -> None:
        if is_supervisor(peer):
            self.nodes.receive(peer, msg)
            return
        agent = self._agent_of(peer)
        if agent is None:
            self._refuse(self.workers, peer, ProtocolError("peer", f"unknown worker {peer!r}"))
            return
        agent.heard(msg.action, msg.payload, self.now())
        if msg.type == CONTROL and msg.action in ("READY", "HEARTBEAT"):
            self._worker_state(agent, msg)
        elif msg.type == RESPONSE and msg.action in ("DONE", "FAILED"):
            self._job_answer(agent, msg)

    def _agent_of(self, peer: bytes) -> Agent | None:
        try:
            agent_id = int(peer[1:]) if peer[:1] == b"w" else -1
        except ValueError:
            return None
        return self.agents.get(agent_id)

    def _worker_state(self, agent: Agent, msg: Message) -> None:
        p = msg.payload if isinstance(msg.payload, dict) else {}
        agent.report(p)
        # a heartbeat from a worker still starting: it served a coordinator before this one
        rejoin = msg.action == "HEARTBEAT" and agent.state == AgentState.STARTING
        joins = msg.action == "READY" or rejoin
        if not joins or agent.state in (AgentState.DRAINING, AgentState.STOPPED):
            self.kv.reported(agent.id, p)
            return
        layer, role, shard = agent.layer, agent.role, agent.shard
        if p.get("layer") in self.scenario.layers and isinstance(p.get("shard"), int):
            layer, role, shard = p["layer"], str(p.get("role")), p["shard"]
        loaded = self.roster.ready(agent, layer, role, shard)
        self.kv.ready(agent)
        self.kv.reported(agent.id, p)
        if self.record and loaded is not None:
            kind, since = loaded
            row = lifecycle_record(kind, agent.id, agent.layer, agent.device, since, self.now())
            self.events.append(row)
        self.dispatch.pump(agent.layer)

    def dead(self, agent: Agent, reason: str) -> None:
        """Declare ``agent`` dead: its jobs go to another replica (or fail)."""
        self.counts["deaths"] += 1
        self.telemetry.worker_death(reason)
        for job in self.roster.dead(agent):
            self.dispatch.retry(job, FailureReason.AGENT_FAILED)

    def _job_answer(self, agent: Agent, msg: Message) -> None:
        job = self.roster.pop_job(agent, msg.task)
        if job is None:
            self.count_error("stray")
            return
        now = self.now()
        query, p = job.query, msg.payload if isinstance(msg.payload, dict) else {}
        agent.report(p)
        self.kv.reported(agent.id, p)
        if job.action == "SYNTH" and msg.action == "DONE":
            self.kv.served(agent.id, query.blocks)
        took = now - job.sent
        agent.observe_latency(took)
        role = self.scenario.layers[job.layer].role
        self.stage_s[role] = self.stage_s.get(role, 0.0) + took
        self.window.answered(job.layer, took)
        self.telemetry.stage_latency(job.layer, took)
        if not query.done:  # else finished (deadline): the answer only frees the credit
            self.pipeline.answered(job, agent, msg.action != "FAILED", p, now)
        self.dispatch.pump(job.layer)

    def _from_operator(self, peer: bytes, msg: Message) -> None:
        if msg.type != CONTROL or msg.action in WORKER_CONTROLS:
            self._refuse(self.control, peer, ProtocolError("action", f"{msg.action} to control"))
            return
        self.controls.request(peer, msg)

    # --- queries ---------------------------------------------------------------------------

    def _from_client(self, peer: bytes, msg: Message) -> None:
        if msg.type != DATA or msg.action != "QUERY":
            self._refuse(self.clients, peer, ProtocolError("action", f"{msg.action} from client"))
            return
        if self.stopping:  # not admitted: told so, not left waiting
            answer = {"outcome": str(Outcome.FAILED), "reason": str(FailureReason.SHUTDOWN)}
            sockets.send(self.clients, Message(RESPONSE, "FAILED", msg.task, NAME, answer), peer)
            return
        if not self.guard.admit(peer, time.monotonic()):
            self._throttled(peer, msg)
            return
        try:
            self.pipeline.admit(peer, msg)
        except ProtocolError as err:  # the refusal names the query, so a client can match it
            self._refuse(
                self.clients, peer, err, msg.task if len(msg.task) <= MAX_TASK_CHARS else ""
            )

    def _throttled(self, peer: bytes, msg: Message) -> None:
        """A client past its rate: its query is dropped unadmitted, answered while it is not
        banned and the refusals' reply budget lasts."""
        self.metrics.submitted += 1
        self.metrics.count_end(Outcome.DROPPED, THROTTLED, self.now())
        if self.guard.may_reply("clients", peer, time.monotonic()):
            answer = {"outcome": str(Outcome.DROPPED), "reason": THROTTLED}
            sockets.send(self.clients, Message(RESPONSE, "FAILED", msg.task, NAME, answer), peer)

    def _reply(self, query: Query, action: str, answer: dict[str, Any]) -> None:
        msg = Message(RESPONSE, action, query.client_task, NAME, answer)
        sockets.send(self.clients, msg, query.client)

    def finish(self, query: Query, outcome: Outcome, reason: FailureReason | str = "") -> None:
        """Give ``query`` its one final answer (``Pipeline.finish``)."""
        self.pipeline.finish(query, outcome, reason)

    def skip_shard(self, query: Query) -> None:
        self.pipeline.skip_shard(query)

    @property
    def active(self) -> dict[int, Query]:
        return self.pipeline.active

    @property
    def awaiting(self) -> dict[int, Query]:
        return self.pipeline.awaiting

    @property
    def finished(self) -> deque[tuple[float, str, str, float, float | None]]:
        return self.pipeline.finished

    @property
    def record(self) -> bool:
        return self.pipeline.record

    @record.setter
    def record(self, on: bool) -> None:
        self.pipeline.record = on

    # --- the ControlPlane ------------------------------------------------------------------

    def default_plan(self, layer: str) -> RoutePlan:
        """Every shard with a running replica, each on its least-loaded one, past the worker
        credit if all are at it (as the simulator's plan queues a search at its replica:
        under a burst the searches wait there instead of the query failing ``no_shard``).
        Unlike the simulator's (all shards or none), a shard with no running replica is left
        out, so the query goes on at lower recall instead of waiting."""
        plan = []
        for shard in range(self.files.n_shards):
            agent = self.roster.least_loaded(layer, shard, credit=MAX_REPORTED_QUEUE)
            if agent is not None:
                plan.append((shard, agent.id))
        return tuple(plan)

    def route(self, query: int, plan: RoutePlan) -> None:
        """Search the plan's shards for the waiting ``query``, each on the named replica, past
        its credit (as the simulator queues a routed search at its replica, so a router that
        overloads one is not rescued by dispatch). Raises ValueError, as the simulator does,
        for a query not waiting for a route or a plan naming an agent that is not a running
        replica of its shard."""
        q = self.awaiting.get(query)
        if q is None:
            raise ValueError(f"query {query} is not waiting for a route")
        layer = self.pipeline.stages[q.stage]
        if not isinstance(layer, str) or q.vector is None:
            self.finish(q, Outcome.FAILED, FailureReason.NO_EMBEDDING)
            return
        agents = [(shard, self.agents.get(aid), aid) for shard, aid in plan]
        for shard, agent, aid in agents:
            if agent is None or agent.layer != layer or agent.shard != shard or agent.pool is None:
                raise ValueError(f"agent {aid} is not an accepting replica of shard {shard}")
        del self.awaiting[query]
        shards = {shard: agent for shard, agent, _ in agents}
        q.pending = len(shards)
        if not shards:
            self.finish(q, Outcome.FAILED, FailureReason.NO_SHARD)
            return
        for shard, agent in shards.items():
            job = Job(job_id(q, shard), q, layer, "SEARCH", None, shard)
            self.dispatch.send(job, agent, placed=True)

    def configure(self, query: int, strategy: InferenceStrategy) -> None:
        """Not served live: the live runtime's synthesizers have no inference strategies."""
        raise SwarmError(
            f"configure(query {query}, {strategy!r}): the live runtime does not serve "
            "inference strategies"
        )

    def place(self, query: int, agent: int) -> None:
        """Send the waiting ``query``'s synthesizer job to the running replica ``agent`` of
        its layer (``NO_AGENT``: the layer's dispatch rule picks). Raises ValueError, as the
        simulator does, for a query not waiting for a replica or an agent that is not a
        running replica of its layer. A retry after a failure goes by the layer's rule."""
        q = self.pipeline.placing.get(query)
        if q is None:
            raise ValueError(f"query {query} is not waiting for a synthesizer replica")
        layer = self.pipeline.layer_of(q)
        target = self.agents.get(agent)
        if agent != NO_AGENT and (target is None or target.layer != layer or target.pool is None):
            raise ValueError(f"agent {agent} is not an accepting replica of layer {layer}")
        del self.pipeline.placing[query]
        self.pipeline.send_stage(q, layer, target)

    def scale(self, layer: str, target: int) -> None:
        """Set ``layer``'s replicas (clamped to its min/max): start or drain workers."""
        scale_layer(self.roster, self.scenario.layers, self.files.n_shards, layer, target,
                    self.kv.capacity)  # fmt: skip

    def assign(self, agent: int, layer: str, shard: int | None = None) -> None:
        """Move ``agent`` into ``layer`` (its role and model; retrievers hold ``shard``)."""
        a = self.agents.get(agent)
        cfg = self.scenario.layers.get(layer)
        if a is None or cfg is None or a.state != AgentState.RUNNING or a.layer == layer:
            return
        shard = -1 if cfg.role != "retriever" else (shard if shard is not None else 0)
        self.roster.leave(a, AgentState.SWITCHING)
        self.counts["role_changes"] += 1
        self.metrics.role_changes += 1
        payload = {"layer": layer, "role": cfg.role, "shard": shard, "model": cfg.model,
                   "kv_blocks": self.kv.capacity(layer, a.device)}  # fmt: skip
        self.send_worker(a, Message(CONTROL, "ASSIGN", "", NAME, payload))

    # --- views and recordings --------------------------------------------------------------

    def view(
        self,
        query: Query | None = None,
        roles: tuple[str, ...] | None = None,
        layer_stats: bool = True,
    ) -> ClusterView:
        """A ``ClusterView`` of the live swarm built from worker telemetry."""
        return build_view(self, query, roles, layer_stats)

    def recording(self) -> list[dict[str, Any]]:
        """What ``--record`` writes: the per-query timeline, then the lifecycle and controller
        events and the decisions logged with their observations."""
        return [*self.pipeline.timeline, *self.events]

    def take_recording(self) -> list[dict[str, Any]]:
        """The rows recorded since the last call, removed (a long-running swarm streams them
        to its file instead of holding them)."""
        rows = self.recording()
        self.pipeline.timeline.clear()
        self.events.clear()
        return rows

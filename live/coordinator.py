"""The coordinator: two ROUTER sockets (workers, clients) and a loop that reads
poll -> dispatch -> housekeeping.

It is the live runtime's ``ControlPlane`` (``route`` / ``scale`` / ``assign``) and builds
``ClusterView`` snapshots from what its workers report, so the same ``Task`` objects and
controllers that ran in the simulator decide here. Every accepted query gets exactly one
final answer, completed or failed, by its deadline; the jobs of a worker that stops
heartbeating are retried on another replica.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import zmq

from envs.registry import make_task
from envs.task import Actor, Task
from swarmsim.errors import SwarmError
from swarmsim.lifecycle import lifecycle_record
from swarmsim.metrics import Metrics
from swarmsim.scenario import Scenario
from swarmsim.view import ARRIVAL_HISTORY, ClusterView, RoutePlan

from . import operator, sockets
from .attachment import ACTING, CANDIDATE, TaskSlot
from .config import LiveConfig
from .corpusfiles import CorpusFiles
from .errors import ProtocolError
from .launcher import Launcher
from .protocol import CONTROL, DATA, RESPONSE, Message
from .scaling import retire_drained, scale_layer
from .state import DEAD, DRAINING, GONE, RUNNING, STARTING, STOPPED, SWITCHING, Agent, Job, Query
from .telemetry import Telemetry, build_view
from .worker import STAGE_ACTIONS, WorkerSpec

NAME = "coordinator"
FINISHED_WINDOW = 50_000  # the most recent finished queries kept for status and report


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
    ) -> None:
        self.scenario, self.files, self.launcher = scenario, files, launcher
        self.cfg = cfg or LiveConfig()
        self.deadline_s = self.cfg.deadline_s or scenario.deadline_s or 4 * scenario.slo_latency_s
        self.stages = [_stage_layers(s) for s in scenario.stages]
        self.ctx = zmq.Context()
        try:
            self.workers = sockets.router(self.ctx, workers_bind, self.cfg.hwm)
            self.clients = sockets.router(self.ctx, clients_bind, self.cfg.hwm)
            self.control = sockets.router(self.ctx, control_bind, self.cfg.hwm)  # operators
        except BaseException:
            self.ctx.destroy(linger=0)
            raise
        self.poller = zmq.Poller()
        for sock in (self.workers, self.clients, self.control):
            self.poller.register(sock, zmq.POLLIN)
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()  # CPU seconds of this process at time zero
        self.metrics = Metrics(scenario.warmup_s, scenario.slo_latency_s)
        self.telemetry = telemetry or Telemetry(None)
        self.agents: dict[int, Agent] = {}
        self.specs: dict[int, WorkerSpec] = {}
        self.active: dict[int, Query] = {}  # in arrival order, so deadlines expire in order
        self.awaiting: dict[int, Query] = {}  # queries waiting for a route plan
        self.backlog: dict[str, deque[Job]] = {name: deque() for name in scenario.layers}
        self.timeline: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []  # lifecycle and controller events, decisions
        self.record = False
        self.slots: dict[str, TaskSlot] = {}  # controllers attached, per Task
        self.route_slot: TaskSlot | None = None  # the slot of the per-query routing Task
        self.changes: deque[dict[str, Any]] = deque(maxlen=100)  # controller events (status)
        # controllers named by ATTACH requests are read and verified off the loop
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attach")
        self.loading: list[tuple[bytes, Message, Future]] = []
        self.finished: deque[tuple[float, str, str, float, float | None]] = deque(
            maxlen=FINISHED_WINDOW
        )  # (end, arm, outcome, latency, recall) of the most recent queries
        self.node_names = [g.name for g in scenario.nodes]
        self.protocol_errors: dict[str, int] = {}
        self.counts = {"sent": 0, "received": 0, "retries": 0, "role_changes": 0, "deaths": 0}
        self.ids = itertools.count()
        self.ticks = itertools.count(1)  # orders changes of agents' loads (dispatch ties)
        self.stage_s: dict[str, float] = {}
        self.layer_marks: dict[str, dict[str, float]] = {n: {} for n in scenario.layers}
        self.arrivals: dict[str, int] = dict.fromkeys(scenario.layers, 0)
        self.arrival_history: dict[str, deque[float]] = {
            n: deque(maxlen=ARRIVAL_HISTORY) for n in scenario.layers
        }  # jobs/s of the completed intervals before the current one (LayerStats)
        self.recent: dict[str, list[float]] = {n: [] for n in scenario.layers}
        self.next_beat = self.next_control = 0.0
        self.interval_start = 0.0

    # --- addresses and lifetime -------------------------------------------------------------

    @property
    def worker_address(self) -> str:
        return sockets.endpoint(self.workers)

    @property
    def client_address(self) -> str:
        return sockets.endpoint(self.clients)

    @property
    def control_address(self) -> str:
        return sockets.endpoint(self.control)

    def now(self) -> float:
        """Seconds since the swarm started (the clock of timelines and views)."""
        return time.monotonic() - self.t0

    def restart_clock(self) -> None:
        """Make now time zero (when the load starts), so that arrivals in the timeline are
        offsets of the workload, as in the simulator."""
        shift = self.now()
        self.t0 += shift
        self.cpu0 = time.process_time()
        for agent in self.agents.values():
            agent.born -= shift
            agent.last_seen -= shift
        self.next_beat = self.next_control = self.interval_start = 0.0

    def launch(self, spec: WorkerSpec, node: int = 0) -> None:
        """Start a worker through the launcher; it counts as starting until READY."""
        self.specs[spec.id] = spec
        now = self.now()
        self.agents[spec.id] = Agent(
            spec.id,
            spec.layer,
            spec.role,
            spec.shard,
            spec.model,
            spec.device,
            node,
            STARTING,
            now,
            now,
        )
        self.launcher.start(spec)

    def ready(self) -> int:
        """Agents running."""
        return sum(a.state == RUNNING for a in self.agents.values())

    def close(self) -> None:
        """Tell every worker to stop, stop their processes, close the sockets."""
        for agent in self.agents.values():
            if agent.state not in GONE:
                self.send_worker(agent, Message(CONTROL, "STOP", "", NAME))
        try:
            self.launcher.close()
        finally:
            self.loader.shutdown(wait=False, cancel_futures=True)
            self.ctx.destroy(linger=0)
            self.telemetry.close()

    # --- the loop --------------------------------------------------------------------------

    def step(self, timeout_s: float) -> None:
        """One pass: poll (at most ``timeout_s``) -> dispatch what arrived -> housekeeping."""
        events = dict(self.poller.poll(max(min(timeout_s, self._housekeeping_due()), 0) * 1000))
        if self.workers in events:
            self._drain(self.workers, self._from_worker)
        if self.clients in events:
            self._drain(self.clients, self._from_client)
        if self.control in events:
            self._drain(self.control, self._from_operator)
        if self.loading:
            self._install_loaded()
        self.housekeeping()

    def _housekeeping_due(self) -> float:
        now = self.now()
        due = min(self.next_beat, self.next_control) - now
        if self.active:
            due = min(due, next(iter(self.active.values())).deadline - now)
        return due

    def _drain(self, sock: zmq.Socket, handle: Callable[[bytes, Message], None]) -> None:
        for _ in range(1000):  # bounded, so housekeeping runs even under a flood
            got = sockets.try_recv(sock, routed=True)
            if got is None:
                return
            peer, msg = got
            self.counts["received"] += 1
            if isinstance(msg, ProtocolError):
                self._refuse(sock, peer, msg)
            else:
                handle(peer, msg)

    def _refuse(self, sock: zmq.Socket, peer: bytes | None, err: ProtocolError) -> None:
        self.protocol_errors[err.reason] = self.protocol_errors.get(err.reason, 0) + 1
        self.telemetry.protocol_error(err.reason)
        if peer:
            sockets.send(sock, Message(RESPONSE, "ERROR", "", NAME, {"error": str(err)}), peer)

    def housekeeping(self) -> None:
        """Heartbeats out, dead workers out, late queries failed, control decisions."""
        now = self.now()
        if now >= self.next_beat:
            self.next_beat = now + self.cfg.heartbeat_interval_s
            self._heartbeat(now)
        while self.active:
            query = next(iter(self.active.values()))
            if query.deadline > now:
                break
            self.finish(query, "failed", "deadline")
        retire_drained(self)
        if now >= self.next_control:
            if self.next_control > 0:
                for slot in list(self.slots.values()):
                    if slot.active and slot.task.decision == "control":
                        slot.decide(self)
                self._reset_interval(now)
            self.next_control = now + self.scenario.control_interval_s
        self.telemetry.sample(self)

    def _heartbeat(self, now: float) -> None:
        for slot in self.slots.values():
            self._log_changes(slot.check())
        beat = Message(CONTROL, "HEARTBEAT", "", NAME)
        for agent in list(self.agents.values()):
            if agent.state in GONE:
                continue
            if agent.state != STARTING and now - agent.last_seen > self.cfg.dead_after_s:
                self._dead(agent, "heartbeat")
            elif agent.state == STARTING and now - agent.born > self.cfg.startup_timeout_s:
                self._dead(agent, "startup")
            elif agent.state != STARTING:
                self.send_worker(agent, beat)

    # --- workers ---------------------------------------------------------------------------

    def _from_worker(self, peer: bytes, msg: Message) -> None:
        agent = self._agent_of(peer)
        if agent is None:
            self._refuse(self.workers, peer, ProtocolError("peer", f"unknown worker {peer!r}"))
            return
        agent.last_seen = self.now()
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
        busy, queue = p.get("busy_s"), p.get("queue")
        if isinstance(busy, float | int):
            agent.busy_s = float(busy)
        if isinstance(queue, int):
            agent.queue = queue
        if isinstance(p.get("pid"), int):
            agent.pid = p["pid"]
        if msg.action != "READY" or agent.state in (DRAINING, STOPPED):
            return
        if agent.state == DEAD:  # came back after being declared dead: a new incarnation
            agent.born, agent.gone, agent.jobs = self.now(), -1.0, {}
        if p.get("layer") in self.scenario.layers and isinstance(p.get("shard"), int):
            agent.layer, agent.role, agent.shard = p["layer"], str(p.get("role")), p["shard"]
        if self.record and agent.state in (STARTING, SWITCHING):
            kind, since = "startup", agent.born
            if agent.state == SWITCHING:
                kind, since = "role_change", agent.switching_since
            self.events.append(
                lifecycle_record(kind, agent.id, agent.layer, agent.device, since, self.now())
            )
        agent.state = RUNNING
        agent.load_mark = next(self.ticks)
        self._pump(agent.layer)

    def _dead(self, agent: Agent, reason: str) -> None:
        """Declare ``agent`` dead: its jobs go to another replica (or fail)."""
        agent.state, agent.gone = DEAD, self.now()
        self.counts["deaths"] += 1
        self.telemetry.worker_death(reason)
        jobs, agent.jobs = list(agent.jobs.values()), {}
        for job in jobs:
            self._retry(job, f"worker {agent.id} dead ({reason})")

    def _job_answer(self, agent: Agent, msg: Message) -> None:
        job = agent.jobs.pop(msg.task, None)
        if job is None:
            self._count_error("stray")
            return
        agent.load_mark = next(self.ticks)
        now = self.now()
        query, p = job.query, msg.payload if isinstance(msg.payload, dict) else {}
        agent.observe_latency(now - job.sent)
        layer = self.scenario.layers[job.layer]
        self.stage_s[layer.role] = self.stage_s.get(layer.role, 0.0) + now - job.sent
        self.recent[job.layer].append(now - job.sent)
        self.telemetry.stage_latency(job.layer, now - job.sent)
        if query.outcome:  # already finished (deadline): the answer only frees the credit
            self._pump(job.layer)
            return
        if msg.action == "FAILED":
            self._retry(job, str(p.get("error", "worker failed"))[:80])
        else:
            node = self.node_names[agent.node] if agent.node < len(self.node_names) else "local"
            query.timeline.append(_stage_record(job, agent, node, now, p))
            self._stage_done(job, p)
        self._pump(job.layer)

    # --- queries ---------------------------------------------------------------------------

    def _from_client(self, peer: bytes, msg: Message) -> None:
        if msg.type != DATA or msg.action != "QUERY":
            self._refuse(self.clients, peer, ProtocolError("action", f"{msg.action} from client"))
            return
        try:
            query = self._query(peer, msg)
        except ProtocolError as err:
            self._refuse(self.clients, peer, err)
            return
        self.metrics.submitted += 1
        self.active[query.id] = query
        self.telemetry.query_in()
        if sum(map(len, self.backlog.values())) >= self.cfg.max_backlog:
            self.finish(query, "dropped", "backlog-full")
            return
        self.advance(query)

    def _query(self, peer: bytes, msg: Message) -> Query:
        p = msg.payload
        fields = ("qclass", "input_tokens", "output_tokens", "pool")
        if not isinstance(p, dict) or not all(_is_int(p.get(f)) for f in fields):
            raise ProtocolError("payload", f"a query needs integer fields {fields}")
        classes = self.scenario.workload.classes
        n_pool = len(self.files.queries)
        if not (0 <= p["qclass"] < len(classes) and 0 <= p["pool"] < n_pool):
            raise ProtocolError("payload", f"class {p['qclass']} or pool {p['pool']} out of range")
        if p["input_tokens"] < 0 or p["output_tokens"] < 0:
            raise ProtocolError("payload", "token counts must be >= 0")
        now = self.now()
        return Query(
            next(self.ids),
            peer,
            msg.task,
            now,
            now + self.deadline_s,
            p["qclass"],
            classes[p["qclass"]].model,
            p["input_tokens"],
            p["output_tokens"],
            p["pool"],
        )

    def advance(self, query: Query) -> None:
        """Start the query's current stage, or finish it after the last one."""
        if query.stage == len(self.stages):
            self.finish(query, "completed")
            return
        layers = self.stages[query.stage]
        layer = layers if isinstance(layers, str) else layers[query.model]
        query.stage_start = self.now()
        role = self.scenario.layers[layer].role
        if role == "retriever":
            self.awaiting[query.id] = query
            slot = self.route_slot
            if slot is not None and slot.active:
                slot.decide(self, query)
            else:
                self.route(query.id, self.default_plan(layer))
            return
        self._send_job(
            Job(self._job_id(query), query, layer, STAGE_ACTIONS[role], self._payload(query, role))
        )

    def _payload(self, query: Query, role: str) -> Any:
        if role == "embedder":
            return {"pool": query.pool}
        if role == "synthesizer":
            return {
                "input_tokens": query.input_tokens,
                "output_tokens": query.output_tokens,
                "docs": query.docs,
            }
        return {"pool": query.pool, "ids": query.docs}  # evaluator

    def _job_id(self, query: Query, shard: int = -1, attempt: int = 1) -> str:
        return f"{query.id}.{query.stage}.{shard}.{attempt}"

    def _stage_done(self, job: Job, p: dict[str, Any]) -> None:
        query = job.query
        if job.action == "EMBED":
            vec = p.get("vector")
            if not isinstance(vec, bytes) or len(vec) != self.files.dim * 4:
                self._retry(job, "bad embedding")
                return
            query.vector = np.frombuffer(vec, dtype=np.float32)
        elif job.action == "SEARCH":
            ids, scores = p.get("ids"), p.get("scores")
            if isinstance(ids, list) and isinstance(scores, list):
                query.hits.extend(zip(scores, ids, strict=False))
            query.searched.append(job.shard)
            query.pending -= 1
            if query.pending > 0:
                return
            self._join(query)
        elif job.action == "SYNTH":
            query.answer = str(p.get("answer", ""))
        elif job.action == "EVAL" and isinstance(p.get("gold_hit"), float | int):
            query.gold_hit = float(p["gold_hit"])
        query.stage += 1
        self.advance(query)

    def _join(self, query: Query) -> None:
        """All searched shards answered: merge to the global top-k and credit recall."""
        hits = sorted(query.hits, key=lambda h: -h[0])[: self.files.k]
        query.docs = [int(doc) for _, doc in hits]
        query.recall = self.files.recall(query.pool, query.docs)
        self.metrics.recall_sum += query.recall
        self.metrics.retrievals += 1

    def finish(self, query: Query, outcome: str, reason: str = "") -> None:
        """Record the query's one final answer and send it to its client."""
        if query.outcome:
            return
        now = self.now()
        query.outcome, query.reason, query.end = outcome, reason, now
        self.active.pop(query.id, None)
        self.awaiting.pop(query.id, None)
        m, latency = self.metrics, now - query.arrival
        if outcome == "completed":
            m.completed += 1
            m.latency_sum += latency
            m.slo_violations += latency > m.slo_s
            if query.arrival >= m.warmup_s:
                m.latencies.append(latency)
                if query.recall is not None:
                    m.recalls.append(query.recall)
        else:
            m.count_end(outcome, reason, query.arrival)
        self.telemetry.query_out(outcome, latency)
        self.finished.append((now, query.arm, outcome, latency, query.recall))
        answer = {
            "outcome": outcome,
            "reason": reason,
            "latency_s": latency,
            "recall": query.recall,
            "answer": query.answer[:2000],
        }
        action = "DONE" if outcome == "completed" else "FAILED"
        sockets.send(
            self.clients, Message(RESPONSE, action, query.client_task, NAME, answer), query.client
        )
        if self.record:
            self.timeline.append(_query_record(query))

    # --- dispatch --------------------------------------------------------------------------

    def _accepting(self, agent: Agent) -> bool:
        return agent.state == RUNNING and len(agent.jobs) < self.cfg.worker_credit

    def _least_loaded(self, layer: str, shard: int = -1) -> Agent | None:
        """The accepting agent with the fewest jobs; ties go to the one whose load changed
        longest ago, as in the simulator's pools (a dispatch rule the two must share)."""
        best = None
        for agent in self.agents.values():
            if (
                agent.layer == layer
                and agent.shard == shard
                and self._accepting(agent)
                and (
                    best is None
                    or (len(agent.jobs), agent.load_mark) < (len(best.jobs), best.load_mark)
                )
            ):
                best = agent
        return best

    def _send_job(self, job: Job, agent: Agent | None = None) -> None:
        """Send ``job`` to ``agent`` (or the least-loaded accepting one), else hold it."""
        if agent is None or not self._accepting(agent):
            agent = self._least_loaded(job.layer, job.shard)
        if agent is None and not self._servable(job.layer, job.shard):
            self._unservable(job)
            return
        if agent is None:
            self.backlog[job.layer].append(job)
            return
        job.agent, job.sent = agent.id, self.now()
        agent.jobs[job.id] = job
        agent.load_mark = next(self.ticks)
        self.arrivals[job.layer] += 1
        payload = job.query.vector if job.action == "SEARCH" else job.payload
        msg = Message(DATA, job.action, job.id, NAME, payload)
        if not self.send_worker(agent, msg):
            agent.jobs.pop(job.id, None)
            self._dead(agent, "unreachable")
            self._send_job(job)

    def _servable(self, layer: str, shard: int) -> bool:
        """Some agent of ``layer`` (holding ``shard``) runs or is on its way."""
        return any(
            a.layer == layer and a.shard == shard and a.state in (RUNNING, STARTING, SWITCHING)
            for a in self.agents.values()
        )

    def _unservable(self, job: Job) -> None:
        """No agent can ever take ``job``: a search skips its shard (the query goes on with
        the others, at lower recall); any other stage fails the query."""
        reason = "shard-unavailable" if job.action == "SEARCH" else "no-replica"
        self._count_error(reason)
        if job.action != "SEARCH":
            self.finish(job.query, "failed", reason)
            return
        job.query.pending -= 1
        if job.query.pending == 0:
            self._join(job.query)
            job.query.stage += 1
            self.advance(job.query)

    def send_worker(self, agent: Agent, msg: Message) -> bool:
        self.counts["sent"] += 1
        return sockets.send(self.workers, msg, agent.ident)

    def _pump(self, layer: str) -> None:
        """Send held jobs of ``layer`` to agents that have room."""
        backlog = self.backlog[layer]
        for _ in range(len(backlog)):
            job = backlog.popleft()
            if job.query.outcome:
                continue
            agent = self._least_loaded(layer, job.shard)
            if agent is None:
                backlog.appendleft(job)
                return
            self._send_job(job, agent)

    def _retry(self, job: Job, reason: str) -> None:
        if job.query.outcome:
            return
        if job.attempt >= self.cfg.max_attempts:
            self.finish(job.query, "failed", reason)
            return
        self.counts["retries"] += 1
        self.metrics.retries += 1
        job.attempt += 1
        job.id = self._job_id(job.query, job.shard, job.attempt)
        self._send_job(job)

    def _count_error(self, reason: str) -> None:
        self.protocol_errors[reason] = self.protocol_errors.get(reason, 0) + 1

    # --- the ControlPlane ------------------------------------------------------------------

    def default_plan(self, layer: str) -> RoutePlan:
        """The simulator's default: every shard, each on its least-loaded accepting replica."""
        plan = []
        for shard in range(self.files.n_shards):
            agent = self._least_loaded(layer, shard)
            if agent is not None:
                plan.append((shard, agent.id))
        return tuple(plan)

    def route(self, query: int, plan: RoutePlan) -> None:
        """Search the plan's shards for ``query``, each on the named replica."""
        q = self.awaiting.pop(query, None)
        if q is None or q.outcome:
            return
        layer = self.stages[q.stage] if isinstance(self.stages[q.stage], str) else None
        if layer is None or q.vector is None:
            self.finish(q, "failed", "route-without-embedding")
            return
        shards = dict(plan)
        q.pending = len(shards)
        if not shards:
            self.finish(q, "failed", "no-shard")
            return
        for shard, agent_id in shards.items():
            job = Job(self._job_id(q, shard), q, layer, "SEARCH", None, shard=shard)
            self._send_job(job, self.agents.get(agent_id))

    def scale(self, layer: str, target: int) -> None:
        """Set ``layer``'s replicas (clamped to its min/max): start or drain workers."""
        scale_layer(self, layer, target)

    def assign(self, agent: int, layer: str, shard: int | None = None) -> None:
        """Move ``agent`` into ``layer`` (its role and model; retrievers hold ``shard``)."""
        a = self.agents.get(agent)
        cfg = self.scenario.layers.get(layer)
        if a is None or cfg is None or a.state != RUNNING or a.layer == layer:
            return
        shard = -1 if cfg.role != "retriever" else (shard if shard is not None else 0)
        a.state, a.switching_since = SWITCHING, self.now()
        self.counts["role_changes"] += 1
        self.metrics.role_changes += 1
        payload = {"layer": layer, "role": cfg.role, "shard": shard, "model": cfg.model}
        self.send_worker(a, Message(CONTROL, "ASSIGN", "", NAME, payload))

    # --- controllers -----------------------------------------------------------------------

    def attach(
        self,
        task: Task | str,
        controller: Actor,
        label: str,
        *,
        sha256: str | None = None,
        mode: str = ACTING,
        split: float = 0.0,
    ) -> None:
        """Let ``controller`` take ``task``'s decisions from the next one on (``mode``
        acting), or decide beside the acting one as a ``shadow`` or ``split`` candidate."""
        name = task if isinstance(task, str) else task.name
        slot = self.slots.get(name)
        if slot is None:
            task = make_task(name) if isinstance(task, str) else task
            if task.decision not in ("route", "control"):
                raise SwarmError(
                    f"{task.name}: the live runtime takes route and control decisions, "
                    f"not {task.decision!r} ones yet"
                )
            slot = TaskSlot(task, self.cfg, self.now)
        self._log_changes(slot.install(label, controller, sha256, mode, split))
        slot.log = self.events if self.record else None
        self.slots[name] = slot
        if slot.task.decision == "route":
            self.route_slot = slot

    def detach(self, task: str, which: str = ACTING) -> list[dict[str, Any]]:
        """Return ``task`` to its heuristic (or take its candidate out); the events made."""
        slot = self.slots.get(task)
        if slot is None or not slot.active:
            raise SwarmError(f"detach: no controller is attached to {task}")
        if which == CANDIDATE and slot.candidate is None:
            raise SwarmError(f"detach: {task} has no shadow or split candidate")
        events = slot.remove(which, "by operator")
        self._log_changes(events)
        return events

    def _log_changes(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.changes.append(event)
            self.telemetry.controller_change(event["task"], event["change"])
            if event["change"] == "auto-detached":
                print(f"swarmsim: {event['task']}: {event['controller']} auto-detached: "
                      f"{event['detail']}", file=sys.stderr)  # fmt: skip
            if self.record:
                self.events.append(event)

    def _from_operator(self, peer: bytes, msg: Message) -> None:
        if msg.action != "ATTACH":
            sockets.send(self.control, operator.handle(self, msg), peer)
            return
        p = msg.payload if isinstance(msg.payload, dict) else {}
        self.loading.append((peer, msg, self.loader.submit(operator.load, p)))

    def _install_loaded(self) -> None:
        """Attach the controllers whose loading finished, and answer their operators."""
        waiting = []
        for peer, msg, future in self.loading:
            if not future.done():
                waiting.append((peer, msg, future))
                continue
            reply = operator.answer(msg, lambda f=future: operator.attach(self, f.result()))
            sockets.send(self.control, reply, peer)
        self.loading = waiting

    def recording(self) -> list[dict[str, Any]]:
        """What ``--record`` writes: the per-query timeline, then the lifecycle and controller
        events and the decisions logged with their observations."""
        return [*self.timeline, *self.events]

    def take_recording(self) -> list[dict[str, Any]]:
        """The rows recorded since the last call, removed (a long-running swarm streams them
        to its file instead of holding them)."""
        rows = self.recording()
        self.timeline.clear()
        self.events.clear()
        return rows

    def view(
        self,
        query: Query | None = None,
        roles: tuple[str, ...] | None = None,
        layer_stats: bool = True,
    ) -> ClusterView:
        """A ``ClusterView`` of the live swarm built from worker telemetry."""
        return build_view(self, query, roles, layer_stats)

    def _reset_interval(self, now: float) -> None:
        elapsed = max(now - self.interval_start, 1e-9)  # as telemetry's arrival_rate
        for name, n in self.arrivals.items():
            self.arrival_history[name].append(n / elapsed)
        self.interval_start = now
        self.arrivals = dict.fromkeys(self.arrivals, 0)
        self.recent = {n: [] for n in self.recent}
        for agent in self.agents.values():
            agent.busy_mark = agent.busy_s


def _stage_layers(stage) -> str | dict[str, str]:
    return stage.layer if stage.layer is not None else dict(stage.layer_by_model)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _stage_record(
    job: Job, agent: Agent, node: str, now: float, p: dict[str, Any]
) -> dict[str, Any]:
    service = p.get("service_s")
    start = now - float(service) if isinstance(service, float | int) else job.sent
    return {
        "stage": job.query.stage,
        "layer": job.layer,
        "agent": agent.id,
        "node": node,
        "device": agent.device,
        "sent": job.sent,
        "start": max(start, job.sent),
        "end": now,
    }


def _query_record(q: Query) -> dict[str, Any]:
    """The same JSONL schema as ``swarmsim simulate --trace-out``."""
    return {
        "query": q.id,
        "class": q.qclass,
        "input_tokens": q.input_tokens,
        "output_tokens": q.output_tokens,
        "arrival": q.arrival,
        "end": q.end,
        "outcome": q.outcome,
        "reason": q.reason,
        "recall": q.recall,
        "stages": q.timeline,
        **({"arm": q.arm} if q.arm else {}),
    }

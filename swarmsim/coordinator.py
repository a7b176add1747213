"""The coordinator (planner) and the query path: dispatch, service, responses, retries.

A query passes the pipeline's stages in order. For each stage the coordinator sends work
to an agent of the stage's layer over the fabric (the retrieval stage fans out to one
replica per searched shard and joins the answers); the agent queues it, serves it in
batches and answers. Dispatch is per layer: ``central`` keeps one FIFO at the coordinator
and hands work to agents as they answer (Majordomo-style, an M/M/c queue); the others send
at once to an agent picked at random, round-robin, or by fewest outstanding jobs (JSQ).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .clock import Call
from .cluster import Agent, AgentState, Layer
from .messages import Message, MessageType
from .pool import add_outstanding

if TYPE_CHECKING:
    from .inference import InferenceStrategy
    from .simulation import Simulation

ACTIVE, COMPLETED, FAILED, DROPPED = 0, 1, 2, 3
OUTCOMES = ("in_flight", "completed", "failed", "dropped")


class Query:
    """One user query on its way through the pipeline."""

    __slots__ = (
        "arrival",
        "end",
        "id",
        "in_tok",
        "model",
        "out_tok",
        "pending",
        "pool",
        "qclass",
        "reason",
        "recall",
        "searched",
        "stage",
        "stage_start",
        "status",
        "strategy",
        "timeline",
    )

    def __init__(
        self,
        qid: int,
        arrival: float,
        qclass: int,
        model: str,
        in_tok: int,
        out_tok: int,
        pool: int,
    ) -> None:
        self.id = qid
        self.arrival = arrival
        self.qclass = qclass
        self.model = model
        self.in_tok = in_tok
        self.out_tok = out_tok
        self.pool = pool  # index into the corpus's query pool
        self.stage = 0
        self.stage_start = arrival
        self.pending = 0  # fan-out answers still awaited in the current stage
        self.searched: list[int] = []  # shards whose answers arrived
        self.recall = 1.0  # recall@k of its retrieval, once joined (1 without a retrieval stage)
        self.strategy: InferenceStrategy | None = None  # chosen at its synthesizer stage
        self.status = ACTIVE
        self.end = -1.0
        self.reason = ""
        # per answered job: (stage, layer, agent, node, device, sent, start, end)
        self.timeline: list[tuple] | None = None


class WorkItem:
    """One job for one agent: a query's stage (and shard, when retrieving)."""

    __slots__ = ("agent", "attempt", "hop", "layer", "query", "sent", "shard", "start", "strategy")

    def __init__(
        self,
        query: Query,
        layer: Layer,
        shard: int = -1,
        strategy: InferenceStrategy | None = None,
    ) -> None:
        self.query = query
        self.layer = layer
        self.shard = shard
        self.strategy = strategy  # synthesizer work only: how to serve it (None: the defaults)
        self.agent: Agent | None = None
        self.attempt = 0
        self.sent = 0.0
        self.start = 0.0
        self.hop = -1.0  # a fan-out's shared overhead draw; < 0: the job draws its own


class Coordinator:
    """Moves queries through the stages; the simulator's side of the swarm's planner."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.env = sim.env
        self.fabric = sim.fabric
        self.node = sim.cluster.coordinator.name
        self.sizes = sim.scenario.fabric.sizes
        self.hwm = sim.scenario.fabric.hwm
        self.drops_at_hwm = sim.scenario.fabric.socket in ("router", "pub")
        self.stages = sim.stage_layers
        self.dispatch_stream = sim.streams["dispatch"]
        self.max_retries = sim.scenario.failures.max_retries
        self.record = sim.record_timeline
        self.service = sim.service
        self.metrics = sim.metrics

    # --- stages -----------------------------------------------------------------------------

    def accept(self, query: Query) -> None:
        """A query arrives from a client: start its first stage."""
        self.metrics.submitted += 1
        if self.record:
            query.timeline = []
        self.advance(query)

    def advance(self, query: Query) -> None:
        """Start the query's current stage, or finish it after the last one."""
        if query.stage == len(self.stages):
            self.sim.finish(query, COMPLETED)
            return
        layers = self.stages[query.stage]
        layer = layers if isinstance(layers, Layer) else layers[query.model]
        if layer.overhead is not None and layer.overhead.dispatch_rows:
            delay = layer.overhead.dispatch(len(self.sim.active))
            Call(self.env, delay, self._begin, (query, layer))
            return
        self.begin(query, layer)

    def _begin(self, arg: tuple[Query, Layer]) -> None:
        self.begin(*arg)

    def begin(self, query: Query, layer: Layer) -> None:
        """Send the query's work for its current stage (after the coordinator's handling)."""
        query.stage_start = self.env._now
        if layer.role == "retriever":
            self.sim.start_retrieval(query, layer)
            return
        if self.sim.on_configure is not None and layer.role == "synthesizer":
            self.sim.start_synthesis(query, layer)
            return
        query.pending = 1
        layer.arrivals += 1
        self.dispatch(WorkItem(query, layer))

    def start_synthesis(self, query: Query, layer: Layer, strategy: InferenceStrategy) -> None:
        """Send the query's synthesizer job, to be served with ``strategy``."""
        query.strategy = strategy
        query.pending = 1
        layer.arrivals += 1
        self.dispatch(WorkItem(query, layer, -1, strategy))

    def fan_out(self, query: Query, layer: Layer, plan: list[tuple[int, Agent]]) -> None:
        """Send the query to one replica of each planned shard; the answers are joined."""
        if not plan:
            self.sim.finish(query, FAILED, "no_replica")
            return
        query.pending = len(plan)
        layer.arrivals += len(plan)
        hop = -1.0 if layer.overhead is None else layer.overhead.draw(len(self.sim.active))
        for shard, agent in plan:
            item = WorkItem(query, layer, shard)
            item.hop = hop
            self.send_work(agent, item)

    # --- dispatch ---------------------------------------------------------------------------

    def dispatch(self, item: WorkItem) -> None:
        """Hand ``item`` to an agent of its layer by the layer's rule, or queue it at the
        coordinator (the layer's backlog) until one can take it."""
        layer = item.layer
        if item.shard >= 0:
            agent = self.sim.pick_replica(item.shard)
            if agent is None:
                self.sim.finish(item.query, FAILED, "no_replica")
            else:
                self.send_work(agent, item)
            return
        if not layer.agents:
            self.sim.finish(item.query, FAILED, "no_replica")
            return
        layer.backlog.append(item)
        self.pump(layer)

    def pump(self, layer: Layer) -> None:
        """Send backlog work to agents the layer's rule picks, while any can take it.

        ``central`` waits for an agent with nothing outstanding (a shared FIFO: M/M/c); the
        other rules send at once to an accepting agent, which queues the work itself."""
        backlog = layer.backlog
        while backlog:
            agent = self.pick(layer)
            if agent is None:
                return
            self.send_work(agent, backlog.popleft())

    def pick(self, layer: Layer) -> Agent | None:
        """The agent the layer's dispatch rule chooses, or None when none can take work."""
        ready = layer.ready
        if not ready:
            return None
        rule = layer.cfg.dispatch
        if rule == "central":
            return layer.pool.idle()
        if rule == "least-loaded":
            return layer.pool.least()
        if rule == "random":
            return ready[self.dispatch_stream.randrange(len(ready))]
        layer.rr = (layer.rr + 1) % len(ready)
        return ready[layer.rr]

    def send_work(self, agent: Agent, item: WorkItem) -> None:
        """Send one job to ``agent``, subject to its socket's high-water mark: at the mark a
        ROUTER or PUB socket drops the message, a DEALER or PUSH socket holds it back."""
        item.agent = agent
        if agent.blocked or _at_receiver(agent) >= self.hwm:
            add_outstanding(agent, 1)
            if self.drops_at_hwm:
                self.fabric.drop(None, item, "hwm")
            else:
                agent.blocked.append(item)
            return
        add_outstanding(agent, 1)
        self._transmit(agent, item)

    def _transmit(self, agent: Agent, item: WorkItem) -> None:
        item.sent = self.env._now
        msg = Message(
            MessageType.DATA,
            item.layer.role,
            item.query.id,
            -1,
            item.sent,
            self._request_bytes(item),
            agent.id,
        )
        deliver = self.on_work if item.layer.overhead is None else self._handle
        self.fabric.send(msg, self.node, agent.node.name, deliver, item)

    # --- on the agent -----------------------------------------------------------------------

    def _handle(self, _msg: Message | None, item: WorkItem) -> None:
        """A job of a layer with an overhead reaches its agent's host: it joins the agent's queue
        after its stage's hop-and-handling time (a fan-out's jobs share one draw). Spent before
        service, it leaves the agent free meanwhile, as the live hops leave the worker free; a
        job that found its agent idle then records ``start - sent`` = overhead, as live does
        (whose ``start`` is ``end - service``)."""
        hop = item.hop if item.hop >= 0 else item.layer.overhead.draw(len(self.sim.active))
        Call(self.env, hop, self._handled, item)

    def _handled(self, item: WorkItem) -> None:
        self.on_work(None, item)

    def on_work(self, _msg: Message | None, item: WorkItem) -> None:
        """A job reaches its agent: queue it and start serving if idle."""
        agent = item.agent
        if agent.state == AgentState.DEAD:
            agent.lost.append(item)
            if not agent.known_alive:
                self.sim.failures.recover_lost(agent)
            return
        agent.queue.append(item)
        if not agent.batch:
            self.serve(agent)

    def serve(self, agent: Agent) -> None:
        """Take a batch from the agent's queue and schedule its completion.

        A batch holds work of one layer: after a role change the old layer's work is still
        served, with the old layer's service model and batch size."""
        queue = agent.queue
        head = queue[0]
        layer = head.layer
        if head.strategy is not None:
            batch = self._strategy_batch(queue, layer)
        else:
            batch = [queue.popleft()]
            while (
                queue
                and len(batch) < layer.cfg.batch_max
                and queue[0].layer is layer
                and queue[0].strategy is None
            ):
                batch.append(queue.popleft())
        now = self.env._now
        for item in batch:
            item.start = now
        agent.batch = batch
        agent.busy_since = now
        while agent.blocked and _at_receiver(agent) < self.hwm:
            self._transmit(agent, agent.blocked.popleft())
        Call(
            self.env,
            self.service.seconds(agent, batch),
            self.on_served,
            (agent, batch, agent.epoch),
        )

    @staticmethod
    def _strategy_batch(queue, layer: Layer) -> list[WorkItem]:
        """The head's batch under its strategy: up to its batch size, joined by the next jobs
        of the same layer and precision whose own batch size admits the larger batch."""
        head = queue.popleft()
        default = layer.cfg.batch_max
        cap = head.strategy.batch_size or default
        precision = head.strategy.precision
        batch = [head]
        while queue and len(batch) < cap:
            nxt = queue[0]
            s = nxt.strategy
            if nxt.layer is not layer or s is None or s.precision != precision:
                break
            if (s.batch_size or default) <= len(batch):
                break
            batch.append(queue.popleft())
        return batch

    def on_served(self, done: tuple[Agent, list[WorkItem], int]) -> None:
        agent, batch, epoch = done
        if epoch != agent.epoch:
            return  # the agent crashed mid-service; its work was handed to the failure path
        now = self.env._now
        agent.end_service(now)
        agent.served += len(batch)
        for item in batch:
            msg = Message(
                MessageType.RESPONSE,
                "DONE",
                item.query.id,
                agent.id,
                now,
                self._response_bytes(item),
                -1,
            )
            self.fabric.send(msg, agent.node.name, self.node, self.on_response, item)
        if agent.queue:
            self.serve(agent)

    # --- back at the coordinator ------------------------------------------------------------

    def on_response(self, _msg: Message | None, item: WorkItem) -> None:
        """An answer reaches the coordinator: join fan-outs and move the query on."""
        agent = item.agent
        now = self.env._now
        latency = now - item.sent
        agent.latency_s += 0.1 * (latency - agent.latency_s)
        layer = item.layer
        layer.recent_latency.append(latency)
        self.release(agent, layer)
        query = item.query
        if query.status != ACTIVE:
            return
        if query.timeline is not None:
            query.timeline.append(
                (
                    query.stage,
                    layer.name,
                    agent.id,
                    agent.node.name,
                    agent.device.profile.name,
                    item.sent,
                    item.start,
                    now,
                )
            )
        if item.shard >= 0:
            query.searched.append(item.shard)
        query.pending -= 1
        if query.pending == 0:
            layer.stage_s += now - query.stage_start
            if item.shard >= 0:
                self.sim.on_retrieved(query)
            query.stage += 1
            self.advance(query)

    def release(self, agent: Agent, layer: Layer) -> None:
        """One job of ``agent`` is answered or lost: free its slot."""
        add_outstanding(agent, -1)
        if layer.backlog:
            self.pump(layer)
        if agent.outstanding == 0 and agent.state in (AgentState.DRAINING, AgentState.SWITCHING):
            self.sim.lifecycle.drained(agent)

    def lost(self, item: WorkItem, reason: str) -> None:
        """A message of ``item`` was dropped on the fabric: its query is dropped."""
        self.release(item.agent, item.layer)
        self.sim.finish(item.query, DROPPED, reason)

    def retry(self, item: WorkItem, reason: str) -> None:
        """Re-dispatch work lost on a dead agent, or fail its query past the retry limit."""
        self.release(item.agent, item.layer)
        if item.query.status != ACTIVE:
            return
        if item.attempt >= self.max_retries:
            self.sim.finish(item.query, FAILED, reason)
            return
        item.attempt += 1
        self.sim.metrics.retries += 1
        self.dispatch(item)

    # --- message sizes ----------------------------------------------------------------------

    def _request_bytes(self, item: WorkItem) -> int:
        s, role = self.sizes, item.layer.role
        if role == "embedder":
            return s.header + s.query
        if role == "retriever":
            return s.header + s.embedding
        if role == "synthesizer":
            return s.header + item.query.in_tok * s.per_token
        return s.header + item.query.out_tok * s.per_token

    def _response_bytes(self, item: WorkItem) -> int:
        s, role = self.sizes, item.layer.role
        if role == "embedder":
            return s.header + s.embedding
        if role == "retriever":
            return s.header + self.sim.k * s.document
        if role == "synthesizer":
            return s.header + item.query.out_tok * s.per_token
        return s.header + s.control


def _at_receiver(agent: Agent) -> int:
    """Jobs sent to ``agent`` and not yet in service: in transit or in its socket queue."""
    return agent.outstanding - len(agent.batch) - len(agent.blocked)

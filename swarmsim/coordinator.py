"""The coordinator (planner) and the query path: dispatch, service, responses, retries.

A query passes the pipeline's stages in order. For each stage the coordinator sends work
to an agent of the stage's layer over the fabric (the retrieval stage fans out to one
replica per searched shard and joins the answers); the agent queues it, serves it in
batches and answers. Dispatch is per layer: ``central`` keeps one FIFO at the coordinator
and hands work to agents as they answer (Majordomo-style, an M/M/c queue); the others send
at once to an agent picked at random, round-robin, or by fewest outstanding jobs (JSQ).

The query's whole life (accept -> advance -> decide -> join -> finish -> record) is here;
decisions reach it through the hooks ``on_route`` / ``on_configure`` / ``on_place`` and come
back through ``route`` / ``configure`` / ``place``, which ``Simulation`` exposes as its
ControlPlane.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .clock import Call
from .cluster import Agent, Layer
from .inference import InferenceProfile, InferenceStrategy
from .messages import Message, MessageType, request_bytes
from .pool import add_outstanding
from .query import AgentState, FailureReason, Job, Outcome, Query
from .serving import Serving, at_receiver
from .summary import OverdueCounter, count_overdue
from .view import NO_AGENT, QueryOutcome, RoutePlan

if TYPE_CHECKING:
    import simpy

    from .corpus import Corpus
    from .fabric import Fabric
    from .metrics import Metrics
    from .rng import Stream
    from .scenario import Scenario
    from .service import ServiceModel

StageLayers = Layer | dict[str, Layer]  # a stage's layer, or its layer per model class
QueryHook = Callable[[Query], None]
OutcomeHook = Callable[[QueryOutcome], None]


class Coordinator:
    """Moves queries through the stages; the simulator's side of the swarm's planner."""

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        fabric: Fabric,
        service: ServiceModel,
        metrics: Metrics,
        stages: Sequence[StageLayers],
        *,
        node: str,
        corpus: Corpus | None,
        inference: InferenceProfile,
        dispatch_stream: Stream,
        timeline: list[dict[str, Any]] | None,
    ) -> None:
        self.env = env
        self.fabric = fabric
        self.service = service
        self.metrics = metrics
        self.stages = list(stages)
        self.node = node
        self.corpus = corpus
        self.k = corpus.k if corpus else 0
        self.n_shards = corpus.n_shards if corpus else 0
        self.inference = inference
        self.default_quality = inference.precision(inference.reference).quality
        self.dispatch_stream = dispatch_stream
        self.timeline = timeline  # finished queries' records, when recording
        self.sizes = scenario.fabric.sizes
        self.hwm = scenario.fabric.hwm
        self.drops_at_hwm = scenario.fabric.socket in ("router", "pub")
        self.max_attempts = scenario.failures.max_attempts
        self.deadline_s = scenario.deadline_s
        self.slo_s = scenario.slo_latency_s
        self.retriever = next(
            (ly for ly in _stage_members(self.stages) if ly.role == "retriever"), None
        )
        self.active: dict[int, Query] = {}  # queries in flight, in arrival order
        self.overdue_now = OverdueCounter(self.slo_s)  # of ``active``, for every view
        self.awaiting: dict[int, tuple[Query, Layer]] = {}  # waiting for a route
        self.configuring: dict[int, tuple[Query, Layer]] = {}  # waiting for a strategy
        self.placing: dict[int, tuple[Query, Layer]] = {}  # waiting for a synthesizer replica
        self.on_route: QueryHook | None = None  # a query needs a route plan
        self.on_configure: QueryHook | None = None  # a query needs an inference strategy
        self.on_place: QueryHook | None = None  # a query needs a synthesizer replica
        self.on_outcome: OutcomeHook | None = None  # a query ended
        self.on_end: QueryHook | None = None  # a query ended (closed-loop sessions)
        self.on_drained: Callable[[Agent], None] = _ignore  # a draining agent answered its last
        self.on_lost_found: Callable[[Agent], None] = _ignore  # work reached a dead agent
        self.serving = Serving(
            env,
            fabric,
            service,
            node=node,
            sizes=self.sizes,
            block_tokens=scenario.workload.block_tokens,
            k=self.k,
            hwm=self.hwm,
            transmit=self._transmit,
            respond=self.on_response,
            lost_found=lambda agent: self.on_lost_found(agent),
            load=self.active.__len__,
        )

    # --- stages -----------------------------------------------------------------------------

    def accept(self, query: Query) -> None:
        """A query arrives from a client: start its first stage."""
        self.metrics.submitted += 1
        self.active[query.id] = query
        self.overdue_now.accepted(query, self.env.now)
        if self.timeline is not None:
            query.timeline = []
        self.advance(query)

    def advance(self, query: Query) -> None:
        """Start the query's current stage, or finish it after the last one."""
        if query.stage == len(self.stages):
            self.finish(query, Outcome.COMPLETED)
            return
        layers = self.stages[query.stage]
        layer = layers if isinstance(layers, Layer) else layers[query.model]
        if layer.overhead is not None and layer.overhead.dispatch_rows:
            delay = layer.overhead.dispatch(len(self.active))
            Call(self.env, delay, self._begin, (query, layer))
            return
        self.begin(query, layer)

    def _begin(self, arg: tuple[Query, Layer]) -> None:
        if not arg[0].done:  # a coordinator restart may have failed it meanwhile
            self.begin(*arg)

    def begin(self, query: Query, layer: Layer) -> None:
        """Send the query's work for its current stage (after the coordinator's handling);
        a retrieval or, with a strategy or (failing that) a placement hook, a synthesis is
        first a decision point. A configured synthesis goes by the layer's dispatch rule."""
        query.stage_start = self.env._now
        if layer.role == "retriever":
            if self.on_route is None:
                self.fan_out(query, layer, self.default_plan())
                return
            self.awaiting[query.id] = (query, layer)
            self.on_route(query)
            return
        if self.on_configure is not None and layer.role == "synthesizer":
            self.configuring[query.id] = (query, layer)
            self.on_configure(query)
            return
        if self.on_place is not None and layer.role == "synthesizer":
            self.placing[query.id] = (query, layer)
            self.on_place(query)
            return
        query.pending = 1
        layer.arrivals += 1
        self.dispatch(Job(query, layer))

    def start_synthesis(self, query: Query, layer: Layer, strategy: InferenceStrategy) -> None:
        """Send the query's synthesizer job, to be served with ``strategy``."""
        query.strategy = strategy
        query.pending = 1
        layer.arrivals += 1
        self.dispatch(Job(query, layer, -1, strategy))

    def fan_out(self, query: Query, layer: Layer, plan: list[tuple[int, Agent]]) -> None:
        """Send the query to one replica of each planned shard; the answers are joined."""
        if not plan:
            self.finish(query, Outcome.FAILED, FailureReason.NO_REPLICA)
            return
        query.pending = len(plan)
        layer.arrivals += len(plan)
        hop = -1.0 if layer.overhead is None else layer.overhead.draw(len(self.active))
        for shard, agent in plan:
            job = Job(query, layer, shard)
            job.hop = hop
            self.send_work(agent, job)

    # --- decisions --------------------------------------------------------------------------

    def default_plan(self) -> list[tuple[int, Agent]]:
        """Every shard, each on its replica with the fewest outstanding jobs (none: [])."""
        plan = []
        for shard in range(self.n_shards):
            agent = self.pick_replica(shard)
            if agent is None:
                return []
            plan.append((shard, agent))
        return plan

    def pick_replica(self, shard: int) -> Agent | None:
        """The least-loaded accepting replica of ``shard``, or None."""
        pool = None if self.retriever is None else self.retriever.shard_pools.get(shard)
        return None if pool is None else pool.least()

    def route(self, query: int, plan: RoutePlan, agents: Sequence[Agent]) -> None:
        """Search ``plan``'s shards for the waiting ``query``, each on the named replica."""
        if query not in self.awaiting:
            raise ValueError(f"query {query} is not waiting for a route")
        resolved = []
        for shard, aid in plan:
            agent = agents[aid] if 0 <= aid < len(agents) else None
            if agent is None or agent.shard != shard or not agent.accepting:
                raise ValueError(f"agent {aid} is not an accepting replica of shard {shard}")
            resolved.append((shard, agent))
        q, layer = self.awaiting.pop(query)
        self.fan_out(q, layer, resolved)

    def configure(self, query: int, strategy: InferenceStrategy) -> None:
        """Serve the waiting ``query``'s synthesizer stage with ``strategy``."""
        if query not in self.configuring:
            raise ValueError(f"query {query} is not waiting for an inference strategy")
        if not isinstance(strategy, InferenceStrategy):
            raise TypeError(f"strategy must be an InferenceStrategy, got {strategy!r}")
        q, layer = self.configuring.pop(query)
        self.start_synthesis(q, layer, strategy)

    def place(self, query: int, agent: int, agents: Sequence[Agent]) -> None:
        """Send the waiting ``query``'s synthesizer job to the accepting replica ``agent`` of
        its layer; ``NO_AGENT`` leaves it to the layer's dispatch rule (when none accepts). A
        retry after a loss goes by the layer's rule too."""
        if query not in self.placing:
            raise ValueError(f"query {query} is not waiting for a synthesizer replica")
        q, layer = self.placing[query]
        target = agents[agent] if 0 <= agent < len(agents) else None
        if agent != NO_AGENT and (
            target is None or target.layer is not layer or not target.accepting
        ):
            raise ValueError(f"agent {agent} is not an accepting replica of layer {layer.name}")
        del self.placing[query]
        q.pending = 1
        layer.arrivals += 1
        if target is None:
            self.dispatch(Job(q, layer))
        else:
            self.send_work(target, Job(q, layer))

    # --- dispatch ---------------------------------------------------------------------------

    def dispatch(self, item: Job) -> None:
        """Hand ``item`` to an agent of its layer by the layer's rule, or queue it at the
        coordinator (the layer's backlog) until one can take it."""
        layer = item.layer
        if item.shard >= 0:
            agent = self.pick_replica(item.shard)
            if agent is None:
                self.finish(item.query, Outcome.FAILED, FailureReason.NO_REPLICA)
            else:
                self.send_work(agent, item)
            return
        if not layer.agents:
            self.finish(item.query, Outcome.FAILED, FailureReason.NO_REPLICA)
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

    def on_capacity(self, layer: Layer) -> None:
        """An agent of ``layer`` became ready: its backlog may move."""
        if layer.backlog:
            self.pump(layer)

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

    def send_work(self, agent: Agent, item: Job) -> None:
        """Send one job to ``agent``, subject to its socket's high-water mark: at the mark a
        ROUTER or PUB socket drops the message, a DEALER or PUSH socket holds it back."""
        item.agent = agent
        if agent.blocked or at_receiver(agent) >= self.hwm:
            add_outstanding(agent, 1)
            if self.drops_at_hwm:
                self.fabric.drop(None, item, "hwm")
            else:
                agent.blocked.append(item)
            return
        add_outstanding(agent, 1)
        self._transmit(agent, item)

    def _transmit(self, agent: Agent, item: Job) -> None:
        item.sent = self.env._now
        msg = Message(
            MessageType.DATA,
            item.layer.role,
            item.query.id,
            -1,
            item.sent,
            request_bytes(self.sizes, item.layer.role, item.query),
            agent.id,
        )
        serving = self.serving
        deliver = serving.on_work if item.layer.overhead is None else serving.handle
        self.fabric.send(msg, self.node, agent.node.name, deliver, item)

    # --- back at the coordinator ------------------------------------------------------------

    def on_response(self, _msg: Message | None, item: Job) -> None:
        """An answer reaches the coordinator: join fan-outs and move the query on."""
        agent = item.agent
        now = self.env._now
        latency = now - item.sent
        agent.latency_s += 0.1 * (latency - agent.latency_s)
        layer = item.layer
        layer.recent_latency.append(latency)
        self.release(agent, layer)
        query = item.query
        if query.outcome is not Outcome.IN_FLIGHT:
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
                    item.cached,
                )
            )
        if item.shard >= 0:
            query.searched.append(item.shard)
        query.pending -= 1
        if query.pending == 0:
            layer.stage_s += now - query.stage_start
            if item.shard >= 0:
                self.on_retrieved(query)
            query.stage += 1
            self.advance(query)

    def release(self, agent: Agent, layer: Layer) -> None:
        """One job of ``agent`` is answered or lost: free its slot."""
        add_outstanding(agent, -1)
        if layer.backlog:
            self.pump(layer)
        if agent.outstanding == 0 and agent.state in (AgentState.DRAINING, AgentState.SWITCHING):
            self.on_drained(agent)

    def lost(self, item: Job, reason: str) -> None:
        """A message of ``item`` was dropped on the fabric: its query is dropped."""
        self.release(item.agent, item.layer)
        self.finish(item.query, Outcome.DROPPED, reason)

    def retry(self, item: Job, reason: str) -> None:
        """Re-dispatch work lost on a dead agent, or fail its query past the retry limit."""
        self.release(item.agent, item.layer)
        if item.query.outcome is not Outcome.IN_FLIGHT:
            return
        if item.attempt >= self.max_attempts:
            self.finish(item.query, Outcome.FAILED, reason)
            return
        item.attempt += 1
        self.metrics.retries += 1
        self.dispatch(item)

    # --- the end of a query -----------------------------------------------------------------

    def on_retrieved(self, query: Query) -> None:
        """A retrieval's answers joined: credit its recall@k to the totals."""
        self.metrics.retrievals += 1
        if self.corpus is not None:
            query.recall = self.corpus.recall_at_k(query.pool, query.searched)
            self.metrics.recall_sum += query.recall

    def finish(self, query: Query, outcome: Outcome, reason: str = "") -> None:
        """Record a query's end (once); completed queries over the deadline count as failed."""
        if query.outcome is not Outcome.IN_FLIGHT:
            return
        now = self.env.now
        latency = now - query.arrival
        deadline = self.deadline_s
        if outcome is Outcome.COMPLETED and deadline is not None and latency > deadline:
            outcome, reason = Outcome.FAILED, FailureReason.DEADLINE
        query.outcome, query.end, query.reason = outcome, now, str(reason)
        self.awaiting.pop(query.id, None)
        if self.configuring:
            self.configuring.pop(query.id, None)
        if self.placing:
            self.placing.pop(query.id, None)
        del self.active[query.id]
        self.overdue_now.ended(query)
        quality = self.answer_quality(query) if outcome is Outcome.COMPLETED else 0.0
        self.metrics.record_end(query, latency, quality)
        if self.timeline is not None:
            self.timeline.append(query.to_record())
        if self.on_outcome is not None:
            late = outcome is not Outcome.COMPLETED or latency > self.slo_s
            self.on_outcome(
                QueryOutcome(query.id, query.qclass, str(outcome), latency, quality, late)
            )
        if self.on_end is not None:
            self.on_end(query)

    def answer_quality(self, query: Query) -> float:
        """A completed answer's quality: its precision's quality factor x its recall@k (1
        without a retrieval)."""
        recall = 1.0 if query.recall is None else query.recall
        strategy = query.strategy
        if strategy is None:
            return self.default_quality * recall
        return self.inference.precision(strategy.precision).quality * recall

    def overdue(self, since: float = 0.0) -> int:
        """Queries in flight (arrived at or after ``since``) older than the SLO."""
        if since == 0.0:  # what every view asks: kept up to date, not scanned
            return self.overdue_now.at(self.env.now)
        return count_overdue(self.active, self.env.now, self.slo_s, since)

    def can_serve(self) -> bool:
        """False when some stage has no agent left at all (none running, starting or dead
        awaiting restart): the cluster can serve nothing more."""
        for layers in self.stages:  # asked after every step of an env: no lists built
            if isinstance(layers, Layer):
                if not layers.agents:
                    return False
            elif not any(layer.agents for layer in layers.values()):
                return False
        return True


def _stage_members(stages: Sequence[StageLayers]) -> list[Layer]:
    return [ly for st in stages for ly in ([st] if isinstance(st, Layer) else st.values())]


def _ignore(_agent: Agent) -> None:
    """The default of a callback nobody wired (a coordinator without lifecycle or failures)."""

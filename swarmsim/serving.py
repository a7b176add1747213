"""The agents' side of the query path: a job reaches its agent, waits, is served in a batch,
and the answer goes back to the coordinator over the fabric."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from .clock import Call
from .messages import Message, MessageType, response_bytes
from .query import AgentState, Job

if TYPE_CHECKING:
    import simpy

    from .cluster import Agent, Layer
    from .fabric import Fabric, MessageSizes
    from .service import ServiceModel


class Serving:
    """Queues jobs on their agents, serves them in batches and sends the answers back."""

    def __init__(
        self,
        env: simpy.Environment,
        fabric: Fabric,
        service: ServiceModel,
        *,
        node: str,
        sizes: MessageSizes,
        block_tokens: int,
        k: int,
        hwm: int,
        transmit: Callable[[Agent, Job], None],
        respond: Callable[[Message | None, Job], None],
        lost_found: Callable[[Agent], None],
        load: Callable[[], int],
    ) -> None:
        self.env = env
        self.fabric = fabric
        self.service = service
        self.node = node  # the coordinator's host, where answers go
        self.sizes = sizes
        self.block_tokens = block_tokens  # tokens per prefix block of the queries' blocks
        self.k = k
        self.hwm = hwm
        self.transmit = transmit  # the coordinator's send of a job held back by the mark
        self.respond = respond  # the coordinator's handling of an answer
        self.lost_found = lost_found  # work reached an agent known to be dead
        self.load = load  # queries in the swarm (an overhead table's row)

    def handle(self, _msg: Message | None, job: Job) -> None:
        """A job of a layer with an overhead reaches its agent's host: it joins the agent's queue
        after its stage's hop-and-handling time (a fan-out's jobs share one draw). Spent before
        service, it leaves the agent free meanwhile, as the live hops leave the worker free; a
        job that found its agent idle then records ``start - sent`` = overhead, as live does
        (whose ``start`` is ``end - service``)."""
        hop = job.hop if job.hop >= 0 else job.layer.overhead.draw(self.load())
        Call(self.env, hop, self._handled, job)

    def _handled(self, job: Job) -> None:
        self.on_work(None, job)

    def on_work(self, _msg: Message | None, job: Job) -> None:
        """A job reaches its agent: queue it and start serving if idle."""
        agent = job.agent
        if agent.state == AgentState.DEAD:
            agent.lost.append(job)
            if not agent.known_alive:
                self.lost_found(agent)
            return
        agent.queue.append(job)
        if not agent.batch:
            self.serve(agent)

    def serve(self, agent: Agent) -> None:
        """Take a batch from the agent's queue and schedule its completion.

        A batch holds work of one layer: after a role change the old layer's work is still
        served, with the old layer's service model and batch size."""
        batch = take_batch(agent.queue)
        now = self.env._now
        for job in batch:
            job.start = now
        agent.batch = batch
        agent.busy_since = now
        if batch[0].layer.role == "synthesizer":
            self.prefill(agent, batch, now)
        while agent.blocked and at_receiver(agent) < self.hwm:
            self.transmit(agent, agent.blocked.popleft())
        Call(
            self.env,
            self.service.seconds(agent, batch),
            self.on_served,
            (agent, batch, agent.epoch),
        )

    def on_served(self, done: tuple[Agent, list[Job], int]) -> None:
        agent, batch, epoch = done
        if epoch != agent.epoch:
            return  # the agent crashed mid-service; its work was handed to the failure path
        now = self.env._now
        kv = agent.kv
        if kv is not None and batch[0].layer is agent.layer:
            for job in batch:
                kv.insert(job.query.blocks)
        agent.end_service(now)
        agent.served += len(batch)
        for job in batch:
            msg = Message(
                MessageType.RESPONSE,
                "DONE",
                job.query.id,
                agent.id,
                now,
                response_bytes(self.sizes, job.layer.role, job.query, self.k),
                -1,
            )
            self.fabric.send(msg, agent.node.name, self.node, self.respond, job)
        if agent.queue:
            self.serve(agent)

    def prefill(self, agent: Agent, batch: list[Job], now: float) -> None:
        """A synthesizer batch starts: its prompts' cached prefixes skip prefill, and its
        queries' first tokens are due when the rest is prefilled."""
        kv = agent.kv
        if kv is not None and batch[0].layer is agent.layer:
            for job in batch:
                q = job.query
                job.cached = min(kv.match(q.blocks) * self.block_tokens, q.input_tokens)
        t = self.service.prefill_seconds(agent, batch)
        if t is not None:
            for job in batch:
                job.query.first_token = now + t


def take_batch(queue: deque[Job]) -> list[Job]:
    """The next batch from an agent's queue: the head and the jobs behind it of the same layer,
    up to the layer's batch size (or the head's strategy's)."""
    head = queue[0]
    layer = head.layer
    if head.strategy is not None:
        return _strategy_batch(queue, layer)
    batch = [queue.popleft()]
    while (
        queue
        and len(batch) < layer.cfg.batch_max
        and queue[0].layer is layer
        and queue[0].strategy is None
    ):
        batch.append(queue.popleft())
    return batch


def _strategy_batch(queue: deque[Job], layer: Layer) -> list[Job]:
    """The head's batch under its strategy: up to its batch size, joined by the next jobs
    of the same layer and precision whose own batch size admits the larger batch."""
    head = queue.popleft()
    strategy = head.strategy
    if strategy is None:
        raise AssertionError("a strategy batch starts with a job that has a strategy")
    default = layer.cfg.batch_max
    cap = strategy.batch_size or default
    precision = strategy.precision
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


def at_receiver(agent: Agent) -> int:
    """Jobs sent to ``agent`` and not yet in service: in transit or in its socket queue."""
    outstanding: int = agent.outstanding
    return outstanding - len(agent.batch) - len(agent.blocked)

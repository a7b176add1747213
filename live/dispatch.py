"""Dispatch: a job goes to the least-loaded accepting agent of its layer (and shard), or
waits in its layer's backlog until one has room; a job whose agent failed is retried
elsewhere until the scenario's retry budget (``failures.max_attempts`` sends) is spent."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from swarmsim.metrics import Metrics
from swarmsim.query import FailureReason, Outcome

from .expiry import wall_deadline
from .protocol import DATA, Message
from .roster import Roster
from .state import Agent, Job, Query
from .window import LoadWindow

NAME = "coordinator"


class QueryLife(Protocol):
    """What dispatch hands back to the coordinator: a query's end, a shard skipped, a death."""

    def finish(self, query: Query, outcome: Outcome, reason: FailureReason | str = "") -> None:
        """Give ``query`` its one final answer."""

    def skip_shard(self, query: Query) -> None:
        """Go on with ``query``'s other shards: one of its searches cannot be served."""

    def dead(self, agent: Agent, reason: str) -> None:
        """Declare ``agent`` dead and retry its jobs."""

    def send_worker(self, agent: Agent, msg: Message) -> bool:
        """Send ``msg`` to ``agent``'s process; False when it cannot be reached."""

    def count_error(self, reason: str) -> None:
        """Count one refused or unservable message under ``reason``."""


def job_id(query: Query, shard: int = -1, attempt: int = 1) -> str:
    """A job's id: its query, stage, shard and attempt, unique within the swarm."""
    return f"{query.id}.{query.stage}.{shard}.{attempt}"


class Dispatch:
    """The backlog per layer and the rule that empties it."""

    def __init__(
        self,
        roster: Roster,
        window: LoadWindow,
        layers: Iterable[str],
        credit: int,
        max_attempts: int,
        metrics: Metrics,
        life: QueryLife,
        now: Callable[[], float],
    ) -> None:
        self.roster, self.window, self.metrics, self.life, self.now = (
            roster, window, metrics, life, now)  # fmt: skip
        self.credit, self.max_attempts = credit, max_attempts
        self.backlog: dict[str, deque[Job]] = {name: deque() for name in layers}
        self.retries = 0

    def waiting(self) -> int:
        """Jobs held at the coordinator, over all layers."""
        return sum(map(len, self.backlog.values()))

    def accepting(self, agent: Agent) -> bool:
        return agent.pool is not None and agent.outstanding < self.credit

    def least_loaded(self, layer: str, shard: int = -1) -> Agent | None:
        """The accepting agent with the fewest jobs; ties go to the one whose load changed
        longest ago, as in the simulator's pools (a dispatch rule the two must share)."""
        return self.roster.least_loaded(layer, shard, self.credit)

    def send(self, job: Job, agent: Agent | None = None, placed: bool = False) -> None:
        """Send ``job`` to ``agent`` (or the least-loaded accepting one), else hold it. A
        ``placed`` job (a controller chose its agent) goes to its agent while that runs, even
        past the credit, as the simulator sends a placed job to its agent's queue."""
        ok = agent is not None and (agent.pool is not None if placed else self.accepting(agent))
        if not ok:
            agent = self.least_loaded(job.layer, job.shard)
        if agent is None and not self.roster.servable(job.layer, job.shard):
            self._unservable(job)
            return
        if agent is None:
            self.backlog[job.layer].append(job)
            return
        job.agent, job.sent = agent.id, self.now()
        self.roster.add_job(agent, job)
        self.window.arrive(job.layer)
        payload = job.query.vector if job.action == "SEARCH" else job.payload
        deadline = wall_deadline(job.query.deadline, job.sent)  # the worker drops it after
        msg = Message(DATA, job.action, job.id, NAME, payload, deadline=deadline)
        if not self.life.send_worker(agent, msg):
            self.roster.pop_job(agent, job.id)
            self.life.dead(agent, "unreachable")
            self.send(job)

    def _unservable(self, job: Job) -> None:
        """No agent can ever take ``job``: a search skips its shard (the query goes on with
        the others, at lower recall); any other stage fails the query."""
        query = job.query
        if job.action == "SEARCH":
            self.life.count_error("shard-unavailable")
            self.life.skip_shard(query)
            return
        self.life.count_error(FailureReason.NO_REPLICA)
        self.life.finish(query, Outcome.FAILED, FailureReason.NO_REPLICA)

    def pump(self, layer: str) -> None:
        """Send held jobs of ``layer`` to agents that have room."""
        backlog = self.backlog[layer]
        for _ in range(len(backlog)):
            job = backlog.popleft()
            if job.query.done:
                continue
            agent = self.least_loaded(layer, job.shard)
            if agent is None:
                backlog.appendleft(job)
                return
            self.send(job, agent)

    def retry(self, job: Job, reason: FailureReason) -> None:
        """Send ``job`` again elsewhere, or fail its query once the budget is spent."""
        query = job.query
        if query.done:
            return
        if job.attempt >= self.max_attempts:
            self.life.finish(query, Outcome.FAILED, reason)
            return
        self.retries += 1
        self.metrics.retries += 1
        job.attempt += 1
        job.id = job_id(query, job.shard, job.attempt)
        self.send(job)

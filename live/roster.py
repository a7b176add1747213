"""The coordinator's workers: agents by id, their life from launch to stop, heartbeat
checks, and the pools of accepting agents that dispatch picks from.

An agent is in the pool of its (layer, shard) exactly while it is running, bucketed by its
jobs in flight (``swarmsim.pool.Pool``): the least-loaded pick is O(1), and ties go to the
agent that entered its bucket first, that is, whose load changed longest ago, as in the
simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from swarmsim.metrics import Metrics
from swarmsim.pool import Pool, add_outstanding
from swarmsim.query import GONE, AgentState

from .columns import AgentColumns
from .state import Agent, Job

if TYPE_CHECKING:
    from .launcher import Launcher
    from .worker import WorkerSpec

HEARTBEAT, STARTUP = "heartbeat", "startup"  # why a silent agent is declared dead


class Roster:
    """The agents of one swarm and the transitions between their states."""

    def __init__(
        self,
        launcher: Launcher,
        metrics: Metrics,
        now: Callable[[], float],
        dead_after_s: float,
        startup_timeout_s: float,
        layer_names: tuple[str, ...] = (),
    ) -> None:
        self.launcher, self.metrics, self.now = launcher, metrics, now
        self.dead_after_s, self.startup_timeout_s = dead_after_s, startup_timeout_s
        self.agents: dict[int, Agent] = {}
        self.specs: dict[int, WorkerSpec] = {}
        self.pools: dict[tuple[str, int], Pool] = {}
        self.columns = AgentColumns(layer_names)  # the view's agent table, kept up to date

    # --- transitions -----------------------------------------------------------------------

    def launch(self, spec: WorkerSpec, node: int = 0) -> Agent:
        """Start a worker through the launcher; it is starting until it reports READY."""
        agent = self.adopt(spec, node)
        self.launcher.start(spec)
        return agent

    def adopt(self, spec: WorkerSpec, node: int = 0) -> Agent:
        """Know a worker that runs already (a restarted coordinator's): starting until it
        reports READY."""
        self.specs[spec.id] = spec
        now = self.now()
        agent = Agent(spec.id, spec.layer, spec.role, spec.shard, spec.model, spec.device, node,
                      AgentState.STARTING, now, now)  # fmt: skip
        self.agents[spec.id] = agent
        self.columns.add(agent)
        return agent

    def ready(self, agent: Agent, layer: str, role: str, shard: int) -> tuple[str, float] | None:
        """``agent`` reported READY holding ``layer``/``shard``: it runs and joins its pool.
        The load it finished, as (``startup`` or ``role_change``, since when), if any; its
        duration is added to ``metrics.load_s``, as the simulator does at ready."""
        now = self.now()
        if agent.state == AgentState.DEAD:  # back after being declared dead: a new incarnation
            agent.born, agent.gone, agent.jobs, agent.outstanding = now, -1.0, {}, 0
        self._leave_pool(agent)
        agent.layer, agent.role, agent.shard = layer, role, shard
        loaded = None
        if agent.state == AgentState.STARTING:
            loaded = ("startup", agent.born)
        elif agent.state == AgentState.SWITCHING:
            loaded = ("role_change", agent.switching_since)
        if loaded is not None:
            self.metrics.load_s += now - loaded[1]
        agent.state = AgentState.RUNNING
        agent.changed()
        self.pools.setdefault((agent.layer, agent.shard), Pool()).add(agent)
        return loaded

    def leave(self, agent: Agent, state: AgentState) -> None:
        """``agent`` stops taking new work: it drains, switches role, dies or stops."""
        self._leave_pool(agent)
        agent.state = state
        agent.changed()
        if state == AgentState.SWITCHING:
            agent.switching_since = self.now()
        elif state in GONE:
            agent.gone = self.now()

    def dead(self, agent: Agent) -> list[Job]:
        """Declare ``agent`` dead; the jobs it held, for retrying elsewhere."""
        self.leave(agent, AgentState.DEAD)
        jobs, agent.jobs, agent.outstanding = list(agent.jobs.values()), {}, 0
        return jobs

    def stop(self, agent: Agent) -> None:
        """A drained agent stops (its process with it)."""
        self.leave(agent, AgentState.STOPPED)
        self.launcher.stop(agent.id)

    def _leave_pool(self, agent: Agent) -> None:
        if agent.pool is not None:
            agent.pool.remove(agent)

    def verdict(self, agent: Agent, now: float) -> str | None:
        """Why ``agent`` must be declared dead at this heartbeat (silent too long), or None."""
        if agent.state == AgentState.STARTING:
            return STARTUP if now - agent.born > self.startup_timeout_s else None
        return HEARTBEAT if now - agent.last_seen > self.dead_after_s else None

    # --- jobs ------------------------------------------------------------------------------

    def add_job(self, agent: Agent, job: Job) -> None:
        agent.jobs[job.id] = job
        add_outstanding(agent, 1)
        agent.changed()

    def expire(self, agent: Agent, now: float) -> int:
        """Forget ``agent``'s jobs whose query ended more than the heartbeat liveness ago:
        their request or answer was lost (a lossy link), and each would hold a credit for
        good. An answer still to come is then a late one, discarded. How many it forgot."""
        stale = [j for j in agent.jobs.values() if j.query.done]
        stale = [j for j in stale if now - j.query.end > self.dead_after_s]
        for job in stale:
            self.pop_job(agent, job.id)
        return len(stale)

    def pop_job(self, agent: Agent, job_id: str) -> Job | None:
        job = agent.jobs.pop(job_id, None)
        if job is not None:
            add_outstanding(agent, -1)
            agent.changed()
        return job

    # --- lookups ---------------------------------------------------------------------------

    def least_loaded(self, layer: str, shard: int, credit: int) -> Agent | None:
        """The running agent of ``layer`` (holding ``shard``) with the fewest jobs, if it has
        room for one more under ``credit``."""
        pool = self.pools.get((layer, shard))
        agent = None if pool is None else pool.least()
        return agent if agent is not None and agent.outstanding < credit else None

    def servable(self, layer: str, shard: int) -> bool:
        """Some agent of ``layer`` (holding ``shard``) runs or is on its way: starting,
        switching, or declared dead while its process lives (paused, hung or cut off by a
        partition, it re-registers when it can). Work for such a layer waits in its backlog
        until the query's deadline, as the simulator holds it for an agent it gave up on;
        only a layer whose processes are all gone fails it at once (``no_replica``)."""
        on_way = (AgentState.RUNNING, AgentState.STARTING, AgentState.SWITCHING)
        return any(
            a.layer == layer
            and a.shard == shard
            and (a.state in on_way or (a.state == AgentState.DEAD and self.launcher.alive(a.id)))
            for a in self.agents.values()
        )

    def members(self, layer: str) -> list[Agent]:
        return [a for a in self.agents.values() if a.layer == layer]

    def running(self) -> int:
        return sum(a.state == AgentState.RUNNING for a in self.agents.values())

    def node_up(self, n_nodes: int, now: float) -> np.ndarray:
        """Per node: some agent placed on it is alive, or none was placed there yet
        (``AgentColumns.node_up``)."""
        self.columns.flush()
        return self.columns.node_up(n_nodes, now, self.dead_after_s)

    def shift(self, seconds: float) -> None:
        """Move every agent's clock marks back by ``seconds`` (the swarm's time zero moved)."""
        for agent in self.agents.values():
            agent.born -= seconds
            agent.last_seen -= seconds
            agent.changed()

    def mark_busy(self) -> None:
        """A control interval begins: busy time counts from here."""
        for agent in self.agents.values():
            agent.busy_mark = agent.busy_s
            agent.changed()

"""Failures and their detection: node crashes and repairs, agent crashes, partitions.

Detection follows the Paranoid Pirate pattern (heartbeat every ``interval``, a peer is dead
after ``liveness`` missed beats) without one event per heartbeat: the last beat before a
crash fell uniformly within the preceding interval, so the coordinator notices
``interval * liveness - U * interval`` seconds after the crash. One event per failure, not
per heartbeat, keeps 10,000 agents cheap. Until detection the coordinator keeps sending
work to the dead agent; that work, and what the agent held, is retried on detection.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import simpy

from .clock import Call
from .cluster import Agent, Node
from .errors import check
from .fabric import PartitionConfig
from .query import AgentState, FailureReason

if TYPE_CHECKING:
    from .cluster import Cluster
    from .coordinator import Coordinator
    from .fabric import Fabric
    from .lifecycle import Lifecycle
    from .rng import Stream


@dataclass(frozen=True)
class FailureConfig:
    """Failure processes and how the coordinator detects them (Paranoid Pirate heartbeats)."""

    node_mtbf_s: float | None = None
    node_mttr_s: float = 300.0
    agent_mtbf_s: float | None = None
    agent_restart_s: float = 5.0  # process restart before the model / shard reload
    heartbeat_interval_s: float = 1.0  # REFERENCE.md: Paranoid Pirate, 1 s
    heartbeat_liveness: int = 3  # REFERENCE.md: liveness 3
    max_attempts: int = 3  # sends of one stage's work: the first plus retries after a death
    # Node supervisors (live.supervisor): a lone agent's crash is reported by its node's
    # supervisor at its next check (uniformly within ``supervisor_restart_s``, which also caps
    # the live supervisor's poll) and restarted by it after ``supervisor_restart_s``; a
    # supervisor's crash (every ``supervisor_mtbf_s`` per node) silences all its agents at
    # once, declared dead together after the heartbeat timeout
    supervisors: bool = False
    supervisor_mtbf_s: float | None = None
    supervisor_restart_s: float = 0.5  # live.supervisor.RESTART_INITIAL_S

    def __post_init__(self) -> None:
        for name in ("node_mtbf_s", "agent_mtbf_s"):
            value = getattr(self, name)
            check(value is None or value > 0, name, value, "> 0 or null")
        check(self.node_mttr_s > 0, "node_mttr_s", self.node_mttr_s, "> 0")
        check(
            self.heartbeat_interval_s > 0, "heartbeat_interval_s", self.heartbeat_interval_s, "> 0"
        )
        check(self.heartbeat_liveness >= 1, "heartbeat_liveness", self.heartbeat_liveness, ">= 1")
        check(self.max_attempts >= 1, "max_attempts", self.max_attempts, ">= 1")
        mtbf = self.supervisor_mtbf_s
        check(mtbf is None or (self.supervisors and mtbf > 0), "supervisor_mtbf_s", mtbf,
              "> 0 with supervisors: true, or null")  # fmt: skip
        restart = self.supervisor_restart_s
        check(restart >= 0, "supervisor_restart_s", restart, ">= 0")


class Failures:
    """Starts the scenario's failure processes and handles crashes, detection and recovery."""

    def __init__(
        self,
        env: simpy.Environment,
        cfg: FailureConfig,
        stream: Stream,
        cluster: Cluster,
        fabric: Fabric,
        coordinator: Coordinator,
        lifecycle: Lifecycle,
        partitions: Sequence[PartitionConfig] = (),
    ) -> None:
        self.env = env
        self.cfg = cfg
        self.stream = stream
        self.cluster = cluster
        self.fabric = fabric
        self.coordinator = coordinator
        self.lifecycle = lifecycle
        self.partition_cfgs = tuple(partitions)
        self.node_failures = 0
        self.agent_failures = 0
        self.partitions = 0
        self.supervisor_failures = 0

    def start(self) -> None:
        cfg = self.cfg
        if cfg.node_mtbf_s:
            for node in self.cluster.nodes:
                self.env.process(self._node_life(node, cfg.node_mtbf_s))
        if cfg.agent_mtbf_s:
            self.env.process(self._agent_crashes(cfg.agent_mtbf_s))
        if cfg.supervisor_mtbf_s:
            for node in self.cluster.nodes:
                self.env.process(self._supervisor_life(node, cfg.supervisor_mtbf_s))
        for part in self.partition_cfgs:
            self.env.process(self._partition(part))

    def detection_delay(self) -> float:
        """Seconds from a crash to the coordinator declaring the peer dead."""
        ivl = self.cfg.heartbeat_interval_s
        return ivl * self.cfg.heartbeat_liveness - self.stream.uniform() * ivl

    # --- processes --------------------------------------------------------------------------

    def _node_life(self, node: Node, mtbf_s: float) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.env.timeout(self.stream.exponential(mtbf_s))
            if not node.up:
                continue  # a released cloud node cannot fail
            self.node_failures += 1
            node.failed = True
            for agent in self._agents_on(node):
                self.crash(agent)
            yield self.env.timeout(self.stream.exponential(self.cfg.node_mttr_s))
            node.failed = False
            for agent in self._agents_on(node):
                self._restart(agent, 0.0)

    def _agent_crashes(self, mtbf_s: float) -> Generator[simpy.Event, None, None]:
        """Superposed crashes: each live agent fails at rate 1/MTBF, memorylessly."""
        while True:
            alive = [a for a in self.cluster.agents if a.state == AgentState.RUNNING]
            if not alive:
                yield self.env.timeout(mtbf_s)
                continue
            yield self.env.timeout(self.stream.exponential(mtbf_s / len(alive)))
            alive = [a for a in self.cluster.agents if a.state == AgentState.RUNNING]
            if alive:
                agent = alive[self.stream.randrange(len(alive))]
                self.agent_failures += 1
                self.process_exit(agent)

    def _supervisor_life(self, node: Node, mtbf_s: float) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.env.timeout(self.stream.exponential(mtbf_s))
            if node.up and not node.failed:
                self.supervisor_failures += 1
                self.supervisor_crash(node)

    def _partition(self, part: PartitionConfig) -> Generator[simpy.Event, None, None]:
        yield self.env.timeout(part.start_s)
        self.partitions += 1
        fabric = self.fabric
        fabric.cut = set(part.nodes)
        coord_side = self.cluster.coordinator.name in fabric.cut
        cut_off = [
            a
            for a in self.cluster.agents
            if (a.node.name in fabric.cut) != coord_side and a.state != AgentState.STOPPED
        ]
        Call(self.env, self.detection_delay(), self._declare_unreachable, cut_off)
        yield self.env.timeout(part.duration_s)
        fabric.cut = set()
        for agent in cut_off:
            if agent.state != AgentState.DEAD and not agent.node.failed:
                self.set_known(agent, True)

    # --- crash, detection, recovery ---------------------------------------------------------

    def _agents_on(self, node: Node) -> list[Agent]:
        return [
            a
            for a in self.cluster.agents
            if a.node is node and a.state not in (AgentState.STOPPED,)
        ]

    def crash(self, agent: Agent, detect_after: float | None = None) -> None:
        """The agent's process dies: what it held is lost until the coordinator notices,
        ``detect_after`` seconds later (default: a heartbeat detection delay)."""
        if agent.state == AgentState.DEAD:
            return
        self.take_work(agent)
        delay = self.detection_delay() if detect_after is None else detect_after
        Call(self.env, delay, self._declare_dead, (agent, agent.epoch))

    def process_exit(self, agent: Agent) -> None:
        """One agent's process dies (not its node) and is restarted: noticed after the heartbeat
        timeout and back after ``agent_restart_s``, or, with supervisors, reported by its
        supervisor at its next check and back after ``supervisor_restart_s``."""
        cfg = self.cfg
        if not cfg.supervisors:
            self.crash(agent)
            self._restart(agent, cfg.agent_restart_s)
            return
        self.crash(agent, self.stream.uniform() * cfg.supervisor_restart_s)
        self._restart(agent, cfg.supervisor_restart_s)

    def supervisor_crash(self, node: Node) -> None:
        """``node``'s supervisor dies, and its agents with it: their heartbeats stop in the
        same NODE_BEAT, so all are declared dead together after one heartbeat timeout; the
        node's process manager restarts the supervisor, which restarts them."""
        delay = self.detection_delay()
        for agent in self._agents_on(node):
            if agent.state != AgentState.DEAD:
                self.crash(agent, delay)
                self._restart(agent, self.cfg.agent_restart_s)

    def take_work(self, agent: Agent) -> None:
        """The agent is dead to the swarm: what it serves, queues or has held back for it is
        lost (retried once declared), and its pending service completion is void."""
        agent.lost.extend(agent.batch)
        if agent.batch:
            agent.end_service(self.env.now)
        agent.state = AgentState.DEAD
        agent.epoch += 1
        agent.lost.extend(agent.queue)
        agent.lost.extend(agent.blocked)
        agent.queue.clear()
        agent.blocked.clear()

    def _declare_dead(self, crashed: tuple[Agent, int]) -> None:
        agent, epoch = crashed
        if agent.epoch == epoch and agent.state == AgentState.DEAD:
            self.declare_dead(agent)

    def declare_dead(self, agent: Agent) -> None:
        """The coordinator gives the agent up: no more work for it, its lost work retried."""
        self.set_known(agent, False)
        self.recover_lost(agent)

    def _declare_unreachable(self, agents: list[Agent]) -> None:
        if self.fabric.cut:
            for agent in agents:
                self.set_known(agent, False)

    def set_known(self, agent: Agent, alive: bool) -> None:
        """The coordinator now believes the agent alive (it may take work) or not."""
        agent.known_alive = alive
        agent.layer.refresh()
        if alive:
            self.coordinator.on_capacity(agent.layer)

    def recover_lost(self, agent: Agent) -> None:
        """Retry (or fail) the work a dead agent took with it."""
        lost, agent.lost = agent.lost, []
        for job in lost:
            self.coordinator.retry(job, FailureReason.AGENT_FAILED)

    def _restart(self, agent: Agent, delay: float) -> None:
        """Restart a crashed agent's process after ``delay``."""
        Call(self.env, delay, self._revive, (agent, agent.epoch))

    def _revive(self, crashed: tuple[Agent, int]) -> None:
        """The restarted process says hello: the old incarnation's work is retried, then it
        reloads its model or shard before serving."""
        agent, epoch = crashed
        if agent.epoch != epoch or agent.state != AgentState.DEAD or agent.node.failed:
            return
        if agent.retiring:
            self.recover_lost(agent)
            self.lifecycle.retire_crashed(agent)
            return
        agent.state = AgentState.STARTING
        agent.loading_since = self.env.now
        self.set_known(agent, True)
        self.recover_lost(agent)
        load = self.lifecycle.load_seconds(agent)
        Call(self.env, load, self.lifecycle.ready, (agent, agent.epoch))

"""The cluster's state: nodes with devices, agents in layers, and what each costs.

Pure state and bookkeeping; the behaviour that changes it over time lives in
``coordinator.py`` (the query path), ``lifecycle.py`` (scaling, role changes) and
``failures.py``. An agent is one worker process playing one role; an agent of the
retriever layer holding shard ``s`` is a *replica* of that shard.
"""

from __future__ import annotations

from collections import deque
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .kvcache import KVCache, capacity_blocks
from .layers import LayerConfig
from .nodes import NodeGroup, expand_names
from .pool import Pool
from .profiles import DeviceProfile, Profiles
from .query import AgentState
from .view import ARRIVAL_HISTORY

if TYPE_CHECKING:
    from .overhead import Overhead
    from .query import Job
    from .scenario import Scenario


def replica_capacity(
    cfg: LayerConfig, device: DeviceProfile, profiles: Profiles, block_tokens: int
) -> int | None:
    """Prefix-cache blocks of one replica of a ``cfg`` layer on ``device`` (None: the layer
    keeps no cache); the live runtime sizes its emulated synthesizers' caches with it too."""
    if cfg.kv_cache is None:
        return None
    model = profiles.models.get(cfg.model or "")
    return capacity_blocks(
        cfg.kv_cache,
        device.vram_gb,
        model.vram_gb if model else 0.0,
        model.kv_bytes_per_token if model else None,
        block_tokens,
    )


class Meter:
    """Running totals of what the cluster bills: USD and GPU-seconds, O(1) to read at any time.

    A device bills while it hosts an agent (on-prem) or while its node is provisioned
    (cloud); every start or stop of billing changes the meter's rates.
    """

    __slots__ = ("gpu_s", "gpus", "t", "usd", "usd_per_s")

    def __init__(self) -> None:
        self.t = 0.0
        self.usd = 0.0
        self.gpu_s = 0.0
        self.usd_per_s = 0.0
        self.gpus = 0

    def change(self, now: float, usd_per_hour: float, gpus: int) -> None:
        """From ``now`` on, bill ``usd_per_hour`` and ``gpus`` more (negative: less)."""
        self.usd, self.gpu_s = self.totals(now)
        self.t = now
        self.usd_per_s += usd_per_hour / 3600
        self.gpus += gpus

    def totals(self, now: float) -> tuple[float, float]:
        """(USD, GPU-seconds) billed up to ``now``."""
        dt = now - self.t
        return self.usd + self.usd_per_s * dt, self.gpu_s + self.gpus * dt


class Device:
    """A GPU, accelerator or a node's CPU."""

    __slots__ = (
        "cores_used",
        "exclusive_users",
        "index",
        "meter",
        "node",
        "profile",
        "training",
        "users",
        "vram_used",
    )

    def __init__(self, node: Node, index: int, profile: DeviceProfile, meter: Meter) -> None:
        self.node = node
        self.index = index  # -1 for the CPU
        self.profile = profile
        self.meter = meter
        self.users = 0
        self.exclusive_users = 0  # agents of exclusive layers (an LLM holds the whole GPU)
        self.vram_used = 0.0
        self.cores_used = 0
        self.training = False  # a background training job holds the GPU (swarmsim.training)

    @property
    def is_gpu(self) -> bool:
        return self.profile.kind != "cpu"

    def attach(self, now: float, vram_gb: float, exclusive: bool) -> None:
        if self.users == 0 and not self.node.cloud:
            self.meter.change(now, self.profile.price_per_hour, int(self.is_gpu))
        self.users += 1
        self.exclusive_users += exclusive
        self.vram_used += vram_gb
        self.cores_used += 0 if self.is_gpu else 1

    def detach(self, now: float, vram_gb: float, exclusive: bool) -> None:
        self.users -= 1
        self.exclusive_users -= exclusive
        self.vram_used -= vram_gb
        self.cores_used -= 0 if self.is_gpu else 1
        if self.users == 0 and not self.node.cloud:
            self.meter.change(now, -self.profile.price_per_hour, -int(self.is_gpu))


class Node:
    """A machine: devices, a host on the fabric graph, up or down; cloud nodes are provisioned."""

    __slots__ = (
        "cloud",
        "cpu",
        "cpu_cores",
        "devices",
        "failed",
        "group",
        "id",
        "meter",
        "name",
        "ready_at",
        "region",
        "up",
    )

    def __init__(
        self, nid: int, name: str, group: NodeGroup, profiles: Profiles, meter: Meter
    ) -> None:
        self.id = nid
        self.name = name
        self.group = group
        self.region = group.region
        self.cloud = group.cloud
        self.meter = meter
        self.devices = [
            Device(self, i, profiles.device(d), meter) for i, d in enumerate(group.devices)
        ]
        self.cpu = Device(self, -1, profiles.device(group.cpu), meter)
        self.cpu_cores = group.cpu_cores
        self.up = False  # powered: on-prem nodes always; cloud nodes while provisioned
        self.failed = False
        self.ready_at = 0.0  # when a provisioning cloud node can host work

    def device(self, index: int | None) -> Device:
        return self.cpu if index is None or index < 0 else self.devices[index]

    def power(self, now: float, up: bool) -> None:
        """Bring a node up or release it; a cloud node bills all its devices while up."""
        if up != self.up and self.cloud:
            sign = 1 if up else -1
            price = sum(d.profile.price_per_hour for d in [*self.devices, self.cpu])
            gpus = sum(1 for d in self.devices if d.is_gpu)
            self.meter.change(now, sign * price, sign * gpus)
        self.up = up

    @property
    def in_use(self) -> bool:
        return self.cpu.users > 0 or any(d.users for d in self.devices)


class Agent:
    """One worker process: its layer, device, state, queues and running statistics."""

    __slots__ = (
        "batch",
        "blocked",
        "born",
        "busy_s",
        "busy_since",
        "device",
        "epoch",
        "gone",
        "id",
        "known_alive",
        "kv",
        "latency_s",
        "layer",
        "loading_since",
        "lost",
        "node",
        "outstanding",
        "pool",
        "queue",
        "retiring",
        "served",
        "shard",
        "state",
        "vram_gb",
    )

    def __init__(
        self, aid: int, layer: Layer, device: Device, shard: int, vram_gb: float, now: float
    ) -> None:
        self.id = aid
        self.layer = layer
        self.device = device
        self.node = device.node
        self.shard = shard  # -1 unless a retriever
        self.vram_gb = vram_gb
        self.state = AgentState.STARTING
        self.retiring = False  # scaled in: stops once drained, and is not restarted after a crash
        self.known_alive = True  # the coordinator's belief, updated by heartbeats
        self.epoch = 0  # bumped on crash so that stale completion events are ignored
        self.queue: deque[Job] = deque()  # received, waiting for service
        self.blocked: deque[Job] = deque()  # held at the sender by the high-water mark
        self.lost: list[Job] = []  # work that reached or sat on the agent when it died
        self.outstanding = 0  # sent by the coordinator and not yet answered
        self.pool: Pool | None = None  # the dispatch pool holding the agent while it accepts
        self.batch: list[Job] = []  # in service now
        self.kv: KVCache | None = None  # its prefix cache, when its layer has one
        self.born = now
        self.loading_since = now
        self.gone = -1.0
        self.busy_since = 0.0
        self.busy_s = 0.0
        self.served = 0
        self.latency_s = 0.0  # EWMA of the stage latency the coordinator saw

    def end_service(self, now: float) -> None:
        """The batch in service ends (done or crashed): account its busy time."""
        layer = self.batch[0].layer
        self.busy_s += now - self.busy_since
        layer.busy_recent += now - max(self.busy_since, layer.interval_start)
        self.batch = []

    def busy_recent(self, now: float) -> float:
        """Seconds of the current batch's service inside the layer's current interval."""
        if not self.batch:
            return 0.0
        start: float = self.batch[0].layer.interval_start
        return now - max(self.busy_since, start)

    @property
    def accepting(self) -> bool:
        """True when the coordinator may send this agent new work."""
        return self.state == AgentState.RUNNING and self.known_alive


class Layer:
    """The replicas of one role (and model): the unit that is dispatched to and scaled."""

    def __init__(self, lid: int, name: str, cfg: LayerConfig) -> None:
        self.id = lid
        self.name = name
        self.cfg = cfg
        self.role = cfg.role
        self.exclusive = cfg.role == "synthesizer" if cfg.exclusive is None else cfg.exclusive
        self.agents: list[Agent] = []  # every agent ever in the layer that is not stopped
        self.ready: list[Agent] = []  # accepting agents, for random and round-robin dispatch
        self.pool = Pool()  # accepting agents by outstanding jobs, for least-loaded dispatch
        self.shard_pools: dict[int, Pool] = {}  # retrievers: accepting replicas of each shard
        self.backlog: deque[Job] = deque()  # work queued at the coordinator for the layer
        self.rr = 0
        self.arrivals = 0  # work items dispatched to the layer since the last control interval
        self.stage_s = 0.0  # summed time queries spent in this layer's stage, to the join
        self.recent_latency: list[float] = []  # stage latencies since the last control interval
        self.interval_start = 0.0  # when the current control interval began
        self.arrival_history: deque[float] = deque(maxlen=ARRIVAL_HISTORY)  # earlier jobs/s
        self.busy_recent = 0.0  # busy seconds of finished services in the current interval
        self.overhead: Overhead | None = None  # per-job hop-and-handling draws (the simulation's)

    def refresh(self) -> None:
        """Recompute the accepting set after any state change of one of its agents."""
        for agent in self.agents:
            if agent.pool is not None:
                agent.pool.remove(agent)
        running = AgentState.RUNNING  # ``Agent.accepting``, inlined: layers can be large
        self.ready = [a for a in self.agents if a.state == running and a.known_alive]
        if self.role != "retriever":
            self.pool = Pool.of(self.ready)
            self.shard_pools = {}
            return
        self.pool = Pool()
        by_shard: dict[int, list[Agent]] = {}
        for agent in self.ready:
            by_shard.setdefault(agent.shard, []).append(agent)
        self.shard_pools = {shard: Pool.of(group) for shard, group in by_shard.items()}

    def count(self, *states: AgentState) -> int:
        return sum(1 for a in self.agents if a.state in states)


class Names(NamedTuple):
    """The names and classes of a cluster's nodes and layers, fixed once it is built."""

    nodes: tuple[str, ...]
    node_group: np.ndarray  # read-only int64 per node: index into groups
    groups: tuple[str, ...]
    layers: tuple[str, ...]
    layer_roles: tuple[str, ...]


class Cluster:
    """Nodes, layers and agents of one run, built from a scenario."""

    def __init__(self, scenario: Scenario, profiles: Profiles) -> None:
        self.scenario = scenario
        self.profiles = profiles
        self.meter = Meter()
        self.nodes: list[Node] = []
        for group in scenario.nodes:
            initial = group.count if group.initial is None else group.initial
            for i, name in enumerate(expand_names(group)):
                node = Node(len(self.nodes), name, group, profiles, self.meter)
                node.power(0.0, not group.cloud or i < initial)
                self.nodes.append(node)
        self.by_name = {n.name: n for n in self.nodes}
        self.layers = {
            name: Layer(i, name, cfg) for i, (name, cfg) in enumerate(scenario.layers.items())
        }
        self.agents: list[Agent] = []
        self.caches: dict[int, KVCache] = {}  # every prefix cache made, by agent id (latest)
        coordinator = scenario.coordinator or self.nodes[0].name
        self.coordinator = self.by_name[coordinator]

    @cached_property
    def names(self) -> Names:
        """Node and layer names, computed once: every view carries them."""
        groups = tuple(g.name for g in self.scenario.nodes)
        node_group = np.array([groups.index(n.group.name) for n in self.nodes], dtype=np.int64)
        node_group.flags.writeable = False
        return Names(
            tuple(n.name for n in self.nodes),
            node_group,
            groups,
            tuple(self.layers),
            tuple(layer.role for layer in self.layers.values()),
        )

    def model_vram(self, layer: Layer) -> float:
        """GPU memory one replica of ``layer`` needs (0 on a CPU or without a model profile)."""
        model = layer.cfg.model
        return self.profiles.models[model].vram_gb if model in self.profiles.models else 0.0

    def fits(self, device: Device, layer: Layer, replacing: Agent | None = None) -> bool:
        """Whether one more replica of ``layer`` fits on ``device`` (memory, the GPU for an
        exclusive layer, or a free core), counting ``replacing``'s place as free."""
        if device.node.failed or (not device.node.up and not device.node.cloud):
            return False
        mine = replacing if replacing is not None and replacing.device is device else None
        if device.is_gpu:
            vram = device.vram_used - (mine.vram_gb if mine else 0.0)
            others = device.exclusive_users - (1 if mine and mine.layer.exclusive else 0)
            if layer.exclusive and others > 0:
                return False
            return vram + self.model_vram(layer) <= device.profile.vram_gb
        return device.cores_used - (1 if mine else 0) < device.node.cpu_cores

    def add_agent(self, layer: Layer, device: Device, shard: int, now: float) -> Agent:
        vram = self.model_vram(layer) if device.is_gpu else 0.0
        agent = Agent(len(self.agents), layer, device, shard, vram, now)
        device.attach(now, vram, layer.exclusive)
        self.agents.append(agent)
        layer.agents.append(agent)
        self._give_cache(agent)
        return agent

    def _give_cache(self, agent: Agent) -> None:
        """A fresh prefix cache sized for the agent's device and model, if its layer has one."""
        size = replica_capacity(
            agent.layer.cfg,
            agent.device.profile,
            self.profiles,
            self.scenario.workload.block_tokens,
        )
        if size is None:
            agent.kv = None
            return
        agent.kv = self.caches[agent.id] = KVCache(size)

    def remove_agent(self, agent: Agent, now: float) -> None:
        if agent.pool is not None:
            agent.pool.remove(agent)
        agent.state = AgentState.STOPPED
        agent.gone = now
        agent.device.detach(now, agent.vram_gb, agent.layer.exclusive)
        agent.layer.agents.remove(agent)
        agent.layer.refresh()

    def move_agent(self, agent: Agent, layer: Layer, shard: int, now: float) -> None:
        """Re-home ``agent`` into ``layer`` (its device memory follows the new model)."""
        old = agent.layer
        if agent.pool is not None:
            agent.pool.remove(agent)
        old.agents.remove(agent)
        agent.device.detach(now, agent.vram_gb, old.exclusive)
        agent.vram_gb = self.model_vram(layer) if agent.device.is_gpu else 0.0
        agent.device.attach(now, agent.vram_gb, layer.exclusive)
        agent.layer = layer
        agent.shard = shard
        layer.agents.append(agent)
        self._give_cache(agent)
        old.refresh()
        layer.refresh()

    def gpu_hours(self, now: float) -> float:
        return self.meter.totals(now)[1] / 3600

    def cost_usd(self, now: float) -> float:
        return self.meter.totals(now)[0]

    def cost_rate(self, layer: Layer) -> float:
        """USD per hour of the devices the layer's live agents occupy (shared devices split)."""
        rate = 0.0
        for a in layer.agents:
            if a.state != AgentState.DEAD:
                rate += a.device.profile.price_per_hour / max(a.device.users, 1)
        return rate

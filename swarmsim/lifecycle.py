"""Replica lifecycle: scale out and in, role changes, cloud provisioning.

A replica asked for now serves later: starting = (cloud provisioning delay, if its node must
be brought up) + start-up time -> running. Start-up is the model or shard bytes over the disk
bandwidth, plus, when the scenario's ``startup`` section asks for it, the serving engine's own
start and a download of the weights (:class:`StartupConfig`). Scaling in
drains a replica (no new work; it finishes what it has) before it stops. A role change
finishes the agent's outstanding work, then loads the new model or shard.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .clock import Call
from .cluster import Agent, Device, Layer, Node
from .errors import ConfigError, UnknownNameError, check
from .query import AgentState

if TYPE_CHECKING:
    import simpy

    from .cluster import Cluster
    from .coordinator import Coordinator
    from .metrics import Metrics

LIVE = (AgentState.STARTING, AgentState.RUNNING, AgentState.SWITCHING)


@dataclass(frozen=True)
class StartupConfig:
    """What a model replica does before it serves: start its engine (``engine_s``), fetch its
    weights (``weights``: ``cached`` on the node, or ``download`` at ``download_gbps``), then
    load them from disk at the profiles' ``load_gbps``. The defaults are the bare disk load."""

    # REFERENCE.md (Autoscaling): a replica with weights cached on the node starts in 60-180 s
    # (AIBrix: 2-3 min), of which loading is the smaller part (a 70B model loads in ~84 s), so
    # most is the engine's start; 0 keeps the disk load alone.
    engine_s: float = 0.0
    weights: Literal["cached", "download"] = "cached"
    # derived: REFERENCE.md's ~20 min per pod to download weights, taken for a 70B fp16 model
    # (140 GB): 140 GB / 1200 s = 0.117 GB/s (assumption: the figure is for such a model).
    download_gbps: float = 0.117

    def __post_init__(self) -> None:
        ok = math.isfinite(self.engine_s) and self.engine_s >= 0
        check(ok, "engine_s", self.engine_s, "a number >= 0")
        check(self.weights in ("cached", "download"), "weights", self.weights, "cached|download")
        ok = math.isfinite(self.download_gbps) and self.download_gbps > 0
        check(ok, "download_gbps", self.download_gbps, "a number > 0")


class Lifecycle:
    """Starts, stops and re-roles agents for the simulation's control plane."""

    def __init__(
        self,
        env: simpy.Environment,
        cluster: Cluster,
        coordinator: Coordinator,
        metrics: Metrics,
        *,
        n_shards: int,
        events: list[dict[str, Any]] | None,
    ) -> None:
        self.env = env
        self.cluster = cluster
        self.scenario = cluster.scenario
        self.coordinator = coordinator
        self.metrics = metrics
        self.n_shards = n_shards
        self.events = events  # replicas that became ready, when recording
        self.unmet = 0  # replicas asked for that found no capacity

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; an unknown name suggests the nearest."""
        if name not in self.cluster.layers:
            raise UnknownNameError("layer", name, self.cluster.layers)
        return self.cluster.layers[name]

    def start_initial(self) -> None:
        """Place the scenario's agents, running at time 0 (a warm cluster)."""
        with _collector_paused():
            self._place_initial()
        for layer in self.cluster.layers.values():
            layer.refresh()

    def _place_initial(self) -> None:
        spread: dict[str, int] = {}
        for node in self.cluster.nodes:
            if not node.up:
                continue
            for j, group in enumerate(node.group.agents):
                layer = self.cluster.layers[group.layer]
                device = node.device(group.device)
                for _ in range(group.count):
                    if not self.cluster.fits(device, layer):
                        raise ConfigError(
                            f"nodes[{self.scenario.nodes.index(node.group)}].agents[{j}]",
                            group.layer,
                            f"room on {node.name}'s {device.profile.name} (memory, cores, "
                            "or the whole GPU for an exclusive layer such as a synthesizer)",
                        )
                    shard = self._initial_shard(layer, group.shard, spread)
                    agent = self.cluster.add_agent(layer, device, shard, 0.0)
                    agent.state = AgentState.RUNNING

    def _initial_shard(self, layer: Layer, fixed: int | None, spread: dict[str, int]) -> int:
        if layer.role != "retriever":
            return -1
        if fixed is not None:
            return fixed
        i = spread.get(layer.name, 0)
        spread[layer.name] = i + 1
        return i % self.n_shards

    # --- scaling ----------------------------------------------------------------------------

    def scale(self, name: str, target: int) -> None:
        """Bring the number of live replicas of layer ``name`` to ``target`` (clamped)."""
        layer = self.layer(name)
        target = max(layer.cfg.min_replicas, min(layer.cfg.max_replicas, int(target)))
        live = [a for a in layer.agents if a.state in LIVE]
        for _ in range(target - len(live)):
            if not self._add_replica(layer):
                self.unmet += 1
                break
        surplus = len(live) - target
        if surplus > 0:
            order = sorted(live, key=lambda a: (a.state != AgentState.STARTING, a.outstanding))
            for agent in order[:surplus]:
                self._retire(agent)
        layer.refresh()

    def _add_replica(self, layer: Layer) -> bool:
        device = self._place(layer)
        if device is None:
            return False
        now = self.env.now
        delay = self._bring_up(device.node)
        shard = self._least_replicated_shard() if layer.role == "retriever" else -1
        agent = self.cluster.add_agent(layer, device, shard, now)
        Call(self.env, delay + self.load_seconds(agent), self.ready, (agent, agent.epoch))
        return True

    def _place(self, layer: Layer) -> Device | None:
        """The device with room and the fewest users, preferring nodes already up."""
        want_gpu = layer.cfg.device == "gpu"
        best: tuple[tuple[bool, int, int, int], Device] | None = None
        for node in self.cluster.nodes:
            if node.failed:
                continue
            devices = node.devices if want_gpu else [node.cpu]
            for dev in devices:
                if dev.is_gpu == want_gpu and self.cluster.fits(dev, layer):
                    key = (not node.up, dev.users, node.id, dev.index)
                    if best is None or key < best[0]:
                        best = (key, dev)
        return None if best is None else best[1]

    def _bring_up(self, node: Node) -> float:
        """Seconds until ``node`` can host work; provisions a released cloud node."""
        now = self.env.now
        if not node.up:
            node.power(now, True)
            node.ready_at = now + self.scenario.cloud.provision_delay_s
        return max(0.0, float(node.ready_at - now))

    def _least_replicated_shard(self) -> int:
        counts = [0] * self.n_shards
        for layer in self.cluster.layers.values():
            for a in layer.agents:
                if a.shard >= 0 and a.state in LIVE:
                    counts[a.shard] += 1
        return counts.index(min(counts))

    def load_seconds(self, agent: Agent) -> float:
        """Time to make the agent's model or shard ready (``layer_load_s`` of its layer)."""
        return self.layer_load_s(agent.layer)

    def layer_load_s(self, layer: Layer) -> float:
        """Time to make a replica of ``layer`` ready (its ``load_s`` if set, as ``swarmsim
        calibrate`` fits it): a shard's bytes from disk; a model's engine start, download when
        not cached, and load from disk (:class:`StartupConfig`)."""
        prof = self.cluster.profiles
        if layer.cfg.load_s is not None:
            return layer.cfg.load_s
        if layer.role == "retriever":
            ret = self.scenario.retrieval
            shard_bytes = ret.vectors_total / max(self.n_shards, 1) * ret.dim * 4
            return shard_bytes / (prof.load_gbps * 1e9)
        model = prof.models.get(layer.cfg.model or "")
        if model is None:
            return 0.0
        up = self.scenario.startup
        fetch = model.vram_gb / up.download_gbps if up.weights == "download" else 0.0
        return up.engine_s + fetch + model.vram_gb / prof.load_gbps

    def ready(self, started: tuple[Agent, int]) -> None:
        agent, epoch = started
        if agent.epoch != epoch or agent.state not in (AgentState.STARTING, AgentState.SWITCHING):
            return
        if self.events is not None:
            kind = "startup" if agent.state == AgentState.STARTING else "role_change"
            began = max(agent.loading_since, agent.device.node.ready_at)  # after provisioning
            row = lifecycle_record(
                kind, agent.id, agent.layer.name, agent.device.profile.name, began, self.env.now
            )
            self.events.append(row)
        agent.state = AgentState.RUNNING
        self.metrics.load_s += self.env.now - agent.loading_since
        agent.layer.refresh()
        self.coordinator.on_capacity(agent.layer)

    def _retire(self, agent: Agent) -> None:
        if agent.state == AgentState.STARTING or agent.outstanding == 0:
            agent.epoch += 1
            self._stop(agent)
            return
        agent.state = AgentState.DRAINING
        agent.retiring = True

    def retire_crashed(self, agent: Agent) -> None:
        """A draining agent died: once its lost work is handed back, it is not restarted."""
        self._stop(agent)

    def drained(self, agent: Agent) -> None:
        """A draining or switching agent answered its last job."""
        if agent.state == AgentState.DRAINING:
            self._stop(agent)
        elif agent.state == AgentState.SWITCHING:
            self._load_new_role(agent)

    def _stop(self, agent: Agent) -> None:
        now = self.env.now
        self.cluster.remove_agent(agent, now)
        node = agent.node
        if node.cloud and not node.in_use:
            node.power(now, False)

    # --- role changes -----------------------------------------------------------------------

    def assign(self, aid: int, name: str, shard: int | None = None) -> None:
        """Move agent ``aid`` into layer ``name``; it reloads before serving again."""
        if not 0 <= aid < len(self.cluster.agents):
            raise ValueError(f"agent must be in 0..{len(self.cluster.agents) - 1}, got {aid}")
        agent, layer = self.cluster.agents[aid], self.layer(name)
        if agent.state != AgentState.RUNNING:
            raise ValueError(f"agent {aid} is {agent.state.name.lower()}, not running")
        shard = self._check_shard(layer, shard)
        if layer is agent.layer and shard == agent.shard:
            return
        if (layer.cfg.device == "gpu") != agent.device.is_gpu:
            raise ValueError(
                f"agent {aid} runs on a {'GPU' if agent.device.is_gpu else 'CPU'}; layer "
                f"{name!r} places its replicas on a {layer.cfg.device.upper()}"
            )
        if not self.cluster.fits(agent.device, layer, replacing=agent):
            raise ValueError(
                f"layer {name!r} does not fit on agent {aid}'s {agent.device.profile.name}"
            )
        agent.state = AgentState.SWITCHING  # before the move, so the new layer skips it
        self.cluster.move_agent(agent, layer, shard, self.env.now)
        self.metrics.role_changes += 1
        if agent.outstanding == 0:
            self._load_new_role(agent)

    def _check_shard(self, layer: Layer, shard: int | None) -> int:
        if layer.role != "retriever":
            return -1
        if shard is None:
            return self._least_replicated_shard()
        if not 0 <= shard < self.n_shards:
            raise ValueError(f"shard must be in 0..{self.n_shards - 1}, got {shard}")
        return shard

    def _load_new_role(self, agent: Agent) -> None:
        agent.loading_since = self.env.now
        Call(self.env, self.load_seconds(agent), self.ready, (agent, agent.epoch))


def lifecycle_record(
    kind: str, agent: int, layer: str, device: str, start: float, end: float
) -> dict[str, Any]:
    """A timeline row for a replica that became ready: ``startup`` (a new or restarted one)
    or ``role_change``, from when it began loading (after any cloud provisioning; live, from
    the process's launch) to ready.
    Live recordings write the same rows; per-query readers skip rows with an ``event``."""
    return {"event": kind, "agent": agent, "layer": layer, "device": device, "start": start,
            "end": end}  # fmt: skip


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for a bulk build: each agent allocates several
    containers, and collecting over the growing heap meanwhile took half the time of
    placing 50,000 (agi-1000 at nodes_per_pod=125: 0.5 s, paused 0.3 s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()

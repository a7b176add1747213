"""Node configuration: groups of identical nodes, the agents started on them, and the cloud
API that provisions them (read by :class:`~swarmsim.cluster.Cluster` and the lifecycle)."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import check


@dataclass(frozen=True)
class AgentGroup:
    """Agents started on each node of a group at time 0."""

    layer: str
    count: int = 1
    device: int | None = None  # index into the node's devices; None = the CPU
    shard: int | None = None  # retrievers: the shard held; None spreads shards round-robin

    def __post_init__(self) -> None:
        check(self.count >= 1, "count", self.count, ">= 1")


@dataclass(frozen=True)
class NodeGroup:
    """``count`` identical nodes (named ``name`` or ``name-i``) and the agents on each."""

    name: str
    count: int = 1
    devices: tuple[str, ...] = ()  # GPU / accelerator profiles, by name
    cpu: str = "cpu-server"
    cpu_cores: int = 8
    switch: str | None = None  # the switch the node is cabled to; None = the first switch
    link_gbps: float = 10.0  # ARCHITECTURE.md: 10 Gbps switches
    link_latency_s: float = 0.00025  # per hop; host-switch-host ~0.5 ms one way (LAN ~1 ms RTT)
    region: str = "default"
    cloud: bool = False  # provisioned through the cloud API: billed only while provisioned
    initial: int | None = None  # cloud groups: nodes up (with their agents) at time 0

    agents: tuple[AgentGroup, ...] = ()

    def __post_init__(self) -> None:
        check(self.count >= 1, "count", self.count, ">= 1")
        check(self.cpu_cores >= 1, "cpu_cores", self.cpu_cores, ">= 1")
        check(self.link_gbps > 0, "link_gbps", self.link_gbps, "> 0")
        check(self.link_latency_s >= 0, "link_latency_s", self.link_latency_s, ">= 0")
        if self.initial is not None:
            check(0 <= self.initial <= self.count, "initial", self.initial, f"0..{self.count}")


def expand_names(group: NodeGroup) -> list[str]:
    """The node names of a group: ``name`` alone, or ``name-0`` ... ``name-(count-1)``."""
    if group.count == 1:
        return [group.name]
    return [f"{group.name}-{i}" for i in range(group.count)]


@dataclass(frozen=True)
class CloudConfig:
    """The cloud provisioning API: a node asked for now is up after ``provision_delay_s``."""

    provision_delay_s: float = 90.0  # typical GPU VM boot-to-ready; assumption, tune per cloud

    def __post_init__(self) -> None:
        check(self.provision_delay_s >= 0, "provision_delay_s", self.provision_delay_s, ">= 0")

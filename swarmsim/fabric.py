"""The message fabric: links that serialize and propagate, over a networkx topology.

A message crosses each link of its path store-and-forward: it waits for the link to be
free (FIFO), occupies it for ``size / bandwidth`` seconds, then propagates for the link's
latency. Each hop is one simulation event, so every link serves messages in the order they
reach it: contention is exact per link.

A message between two agents on the same node is one IPC hop. Loss and partitions drop
messages, counted by reason. Socket queues (high-water marks) are kept per receiving agent
by the coordinator, because their policy depends on the socket kind.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappush
from typing import Any, Literal

import networkx as nx
import simpy
from simpy.events import NORMAL

from .errors import check
from .messages import Message
from .rng import Stream


@dataclass(frozen=True)
class SwitchConfig:
    name: str
    region: str = "default"


@dataclass(frozen=True)
class LinkConfig:
    """A full-duplex link between two switches."""

    a: str
    b: str
    gbps: float = 100.0
    latency_s: float = 0.0005

    def __post_init__(self) -> None:
        check(self.gbps > 0, "gbps", self.gbps, "> 0")
        check(self.latency_s >= 0, "latency_s", self.latency_s, ">= 0")


@dataclass(frozen=True)
class PartitionConfig:
    """From ``start_s`` for ``duration_s`` the listed nodes cannot reach the others."""

    start_s: float
    duration_s: float
    nodes: tuple[str, ...]

    def __post_init__(self) -> None:
        check(self.start_s >= 0, "start_s", self.start_s, ">= 0")
        check(self.duration_s > 0, "duration_s", self.duration_s, "> 0")


@dataclass(frozen=True)
class MessageSizes:
    """Payload bytes per message kind (ARCHITECTURE.md: embedding ~2 KB, answers 20-50 KB)."""

    header: int = 64
    query: int = 1024
    per_token: int = 4  # bytes per prompt / answer token carried
    embedding: int = 2048
    document: int = 2048  # per retrieved document
    control: int = 128

    def __post_init__(self) -> None:
        for name in ("header", "query", "per_token", "embedding", "document", "control"):
            check(getattr(self, name) >= 0, name, getattr(self, name), ">= 0")


@dataclass(frozen=True)
class FabricConfig:
    """The message fabric: links with serialization + propagation delay, bounded socket queues."""

    enabled: bool = True  # false: hand-offs are instantaneous (queueing validation)
    switches: tuple[SwitchConfig, ...] = (SwitchConfig("switch"),)
    links: tuple[LinkConfig, ...] = ()
    ipc_latency_s: float = 0.0001  # same-node hand-off (ARCHITECTURE.md: local IPC < 1 ms)
    hwm: int = 1000  # per-socket high-water mark, messages (ZeroMQ default SNDHWM/RCVHWM)
    socket: Literal["dealer", "router", "push", "pub"] = "dealer"  # router/pub drop, others block
    loss_prob: float = 0.0
    sizes: MessageSizes = field(default_factory=MessageSizes)
    partitions: tuple[PartitionConfig, ...] = ()

    def __post_init__(self) -> None:
        check(len(self.switches) >= 1, "switches", self.switches, "at least one switch")
        check(self.hwm >= 1, "hwm", self.hwm, ">= 1")
        check(0 <= self.loss_prob < 1, "loss_prob", self.loss_prob, "in [0, 1)")
        check(self.ipc_latency_s >= 0, "ipc_latency_s", self.ipc_latency_s, ">= 0")


class Link:
    """One direction of a cable: a FIFO server of ``bits_per_s`` plus propagation latency."""

    __slots__ = ("bytes_carried", "free_at", "latency_s", "messages", "name", "s_per_byte")

    def __init__(self, name: str, gbps: float, latency_s: float) -> None:
        self.name = name
        self.s_per_byte = 8.0 / (gbps * 1e9)
        self.latency_s = latency_s
        self.free_at = 0.0
        self.messages = 0
        self.bytes_carried = 0

    def utilisation(self, now: float) -> float:
        """Fraction of ``now`` seconds the link spent serializing."""
        return self.bytes_carried * self.s_per_byte / now if now > 0 else 0.0


Deliver = Callable[[Message, Any], None]


class Fabric:
    """Routes messages between hosts over the topology graph, one event per hop."""

    def __init__(
        self,
        env: simpy.Environment,
        graph: nx.Graph,
        stream: Stream,
        ipc_latency_s: float,
        loss_prob: float = 0.0,
    ) -> None:
        self.env = env
        self.graph = graph
        self.stream = stream
        self.ipc_latency_s = ipc_latency_s
        self.loss_prob = loss_prob
        self.links: dict[tuple[str, str], Link] = {}
        for a, b, data in graph.edges(data=True):
            for u, v in ((a, b), (b, a)):
                self.links[u, v] = Link(f"{u}->{v}", data["gbps"], data["latency_s"])
        self._paths: dict[tuple[str, str], tuple[Link, ...]] = {}
        self._tree = _Tree(graph) if nx.is_forest(graph) else None
        self.cut: set[str] = set()  # hosts currently partitioned from the rest
        self.sent = 0
        self.delivered = 0
        self.dropped: dict[str, int] = {}
        self.on_drop: Callable[[Message | None, Any, str], None] = lambda m, c, r: None

    def path(self, src: str, dst: str) -> tuple[Link, ...]:
        """The links from host ``src`` to host ``dst`` (shortest by latency), cached. On a tree
        (hosts on switches joined without loops) the only path, walked up and down the tree."""
        key = (src, dst)
        links = self._paths.get(key)
        if links is None:
            if self._tree is not None:
                hops = self._tree.path(src, dst)
            else:
                hops = nx.shortest_path(self.graph, src, dst, weight="latency_s")
            links = tuple(self.links[u, v] for u, v in itertools.pairwise(hops))
            self._paths[key] = links
        return links

    def send(self, msg: Message, src: str, dst: str, deliver: Deliver, ctx: Any) -> None:
        """Send ``msg`` from host ``src`` to host ``dst``; ``deliver(msg, ctx)`` on arrival."""
        self.sent += 1
        if self.loss_prob and self.stream.uniform() < self.loss_prob:
            self.drop(msg, ctx, "loss")
            return
        if src == dst:
            env = self.env  # env.schedule(transit, NORMAL, ipc_latency_s), inlined (see Transit)
            transit = Transit(msg, (), deliver, ctx, self)
            heappush(env._queue, (env._now + self.ipc_latency_s, NORMAL, next(env._eid), transit))  # type: ignore[misc]
            return
        if self.cut and ((src in self.cut) != (dst in self.cut)):
            self.drop(msg, ctx, "partition")
            return
        links = self._paths.get((src, dst)) or self.path(src, dst)  # ``path``'s cache, read here
        _hop(Transit(msg, links, deliver, ctx, self))

    def drop(self, msg: Message | None, ctx: Any, reason: str) -> None:
        """Count a dropped message and tell the owner of ``ctx``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.on_drop(msg, ctx, reason)


class _Tree:
    """A forest's vertices rooted per component: the path between two is their walks up to
    the nearest common ancestor, O(path) where a shortest-path search is O(graph) per pair."""

    def __init__(self, graph: nx.Graph) -> None:
        self.parent: dict[Any, Any] = {}
        self.depth: dict[Any, int] = {}
        for root in graph:
            if root in self.depth:
                continue
            self.parent[root], self.depth[root] = None, 0
            for u, v in nx.bfs_edges(graph, root):
                self.parent[v], self.depth[v] = u, self.depth[u] + 1

    def path(self, src: Any, dst: Any) -> list[Any]:
        """The vertices from ``src`` to ``dst``, both included (NetworkXNoPath if none)."""
        up, down = [src], [dst]
        a, b = src, dst
        while self.depth[a] > self.depth[b]:
            a = self.parent[a]
            up.append(a)
        while self.depth[b] > self.depth[a]:
            b = self.parent[b]
            down.append(b)
        while a != b:
            a, b = self.parent[a], self.parent[b]
            if a is None:
                raise nx.NetworkXNoPath(f"No path between {src} and {dst}.")
            up.append(a)
            down.append(b)
        return up + down[-2::-1]


class Transit:
    """A message on its way: the one event object re-scheduled at every hop of its path.

    Not a ``simpy.Event`` subclass (slots keep the hot path cheap), but it carries exactly
    what ``Environment.step`` reads of an event: ``callbacks``, ``_ok`` and ``_value``."""

    __slots__ = ("_ok", "_value", "callbacks", "ctx", "deliver", "fabric", "i", "links", "msg")

    def __init__(
        self, msg: Message, links: tuple[Link, ...], deliver: Deliver, ctx: Any, fabric: Fabric
    ) -> None:
        self.msg = msg
        self.links = links
        self.i = 0
        self.deliver = deliver
        self.ctx = ctx
        self.fabric = fabric
        self._ok = True
        self._value = None
        self.callbacks = _ON_EVENT


def _hop(tr: Transit) -> None:
    """Serialize ``tr`` onto its next link (FIFO) and schedule its arrival at the far end."""
    links, i = tr.links, tr.i
    if i == len(links):
        tr.fabric.delivered += 1
        tr.deliver(tr.msg, tr.ctx)
        return
    link = links[i]
    tr.i = i + 1
    env = tr.fabric.env
    now = env._now
    size = tr.msg.size
    free = link.free_at
    done = (free if free > now else now) + size * link.s_per_byte
    link.free_at = done
    link.messages += 1
    link.bytes_carried += size
    tr.callbacks = _ON_EVENT
    # env.schedule(tr, NORMAL, done + link.latency_s - now), inlined (see Transit)
    heappush(env._queue, (now + (done + link.latency_s - now), NORMAL, next(env._eid), tr))  # type: ignore[misc]


_ON_EVENT = (_hop,)


class Handoff(Fabric):
    """Instantaneous delivery, for scenarios without a fabric (queueing validation)."""

    def send(self, msg: Message, src: str, dst: str, deliver: Deliver, ctx: Any) -> None:
        self.sent += 1
        self.delivered += 1
        deliver(msg, ctx)

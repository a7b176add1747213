"""The message fabric: links that serialize and propagate, over a networkx topology.

A message crosses each link of its path store-and-forward: it waits for the link to be
free (FIFO), occupies it for ``size / bandwidth`` seconds, then propagates for the link's
latency. Each hop is one simulation event, so contention is exact per link. A message
between two agents on the same node is one IPC hop. Loss and partitions drop messages;
drops are counted by reason. Socket queues (high-water marks) live with the receiver, in
``cluster.py``, because their policy depends on the socket kind.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import networkx as nx
import simpy

from .clock import Call
from .messages import Message
from .rng import Stream


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
        self.cut: set[str] = set()  # hosts currently partitioned from the rest
        self.sent = 0
        self.delivered = 0
        self.dropped: dict[str, int] = {}
        self.on_drop: Callable[[Message, Any, str], None] = lambda m, c, r: None

    def path(self, src: str, dst: str) -> tuple[Link, ...]:
        """The links from host ``src`` to host ``dst`` (shortest by latency), cached."""
        key = (src, dst)
        links = self._paths.get(key)
        if links is None:
            hops = nx.shortest_path(self.graph, src, dst, weight="latency_s")
            links = tuple(self.links[u, v] for u, v in zip(hops, hops[1:], strict=False))
            self._paths[key] = links
        return links

    def send(self, msg: Message, src: str, dst: str, deliver: Deliver, ctx: Any) -> None:
        """Send ``msg`` from host ``src`` to host ``dst``; ``deliver(msg, ctx)`` on arrival."""
        self.sent += 1
        if self.loss_prob and self.stream.uniform() < self.loss_prob:
            self.drop(msg, ctx, "loss")
            return
        if src == dst:
            Call(self.env, self.ipc_latency_s, self._arrive, (msg, (), 0, deliver, ctx))
            return
        if self.cut and ((src in self.cut) != (dst in self.cut)):
            self.drop(msg, ctx, "partition")
            return
        self._hop((msg, self.path(src, dst), 0, deliver, ctx))

    def drop(self, msg: Message, ctx: Any, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        self.on_drop(msg, ctx, reason)

    def _hop(self, state: tuple) -> None:
        msg, links, i, _, _ = state
        link = links[i]
        now = self.env._now
        start = link.free_at if link.free_at > now else now
        done = start + msg.size * link.s_per_byte
        link.free_at = done
        link.messages += 1
        link.bytes_carried += msg.size
        nxt = self._hop if i + 1 < len(links) else self._arrive
        Call(self.env, done + link.latency_s - now, nxt, (msg, links, i + 1, state[3], state[4]))

    def _arrive(self, state: tuple) -> None:
        self.delivered += 1
        state[3](state[0], state[4])

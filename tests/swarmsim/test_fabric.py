"""The message fabric on its own: bandwidth arithmetic, store-and-forward timing, IPC, loss
and partitions, on hand-built networkx graphs."""

from __future__ import annotations

from collections.abc import Generator

import networkx as nx
import pytest
import simpy

from swarmsim.fabric import Fabric
from swarmsim.messages import Message, MessageType
from swarmsim.rng import RandomStreams

IPC_S = 0.0001


def make_fabric(
    graph: nx.Graph, loss_prob: float = 0.0, **kwargs
) -> tuple[simpy.Environment, Fabric]:
    env = simpy.Environment()
    return env, Fabric(env, graph, RandomStreams(0)["fabric"], IPC_S, loss_prob, **kwargs)


def two_hosts(gbps: float = 10.0, latency_s: float = 0.0005) -> nx.Graph:
    """Hosts ``a`` and ``b`` cabled directly to each other."""
    graph = nx.Graph()
    graph.add_edge("a", "b", gbps=gbps, latency_s=latency_s)
    return graph


def message(size: int, task: int = 0) -> Message:
    return Message(MessageType.DATA, "EMBEDDING", task, 0, 0.0, size)


class Log:
    """Deliver callback that records ``(name, env.now)`` of each delivered message."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.events: list[tuple[str, float]] = []

    def __call__(self, _msg: Message, name: str) -> None:
        self.events.append((name, self.env.now))


def send_at(env, fabric, log, t, name, src, dst, size) -> Generator[simpy.Event, None, None]:
    yield env.timeout(t)
    fabric.send(message(size), src, dst, log, name)


@pytest.mark.parametrize(
    ("size", "per_second", "n"),
    [
        (2048, 10e9 / (2048 * 8), 100_000),  # a 2 KiB embedding: 610,351.6 messages/s
        (2000, 625_000, 20_000),  # ARCHITECTURE.md: "2 KB ... about 625,000 embeddings/s"
        (25_000, 50_000, 20_000),  # a 25 KB query-response payload: 50,000 queries/s
    ],
)
def test_saturated_link_carries_bandwidth_over_size(size: int, per_second: float, n: int) -> None:
    """A 10 Gbps link with a backlog delivers gbps / (8 * size) messages per second.

    The deliveries of a FIFO backlog are exactly one serialization time apart, so the count
    over a steady window is exact to one message; 1 % is a generous bound.
    """
    env, fabric = make_fabric(two_hosts(gbps=10.0, latency_s=0.0005))
    times: list[float] = []
    for i in range(n):
        fabric.send(message(size, i), "a", "b", lambda _m, _c: times.append(env.now), None)
    env.run()
    assert len(times) == n == fabric.delivered
    first, last = times[0], times[-1]
    lo, hi = first + 0.1 * (last - first), first + 0.9 * (last - first)
    in_window = sum(1 for t in times if lo <= t < hi)
    assert in_window / (hi - lo) == pytest.approx(per_second, rel=0.01)
    assert fabric.links["a", "b"].bytes_carried == n * size


def test_two_hop_store_and_forward_narrative() -> None:
    """Each hop costs serialization (size / bandwidth) plus propagation; a message waits for
    an earlier one on the same link (FIFO, on every hop); the reverse direction is a separate
    link. a-s: 1 Gbps (8 ns/byte), 1 ms; s-b: 0.5 Gbps (16 ns/byte), 2 ms.

    m1 (125 kB, t=0): a-s busy [0, 1 ms], at s 2 ms; s-b busy [2, 4 ms]; delivered 6 ms.
    m2 (12.5 kB, t=0): waits on a-s behind m1 [1, 1.1 ms], at s 2.1 ms; waits on s-b behind
        m1 [4, 4.2 ms]; delivered 6.2 ms.
    m3 (125 kB, b->a, t=5 ms): b-s [5, 7 ms], at s 9 ms; s-a [9, 10 ms]; delivered 11 ms.
    m4 (12.5 kB, t=20 ms, links idle): 20 + 0.1 + 1 + 0.2 + 2 = 23.3 ms.
    """
    graph = nx.Graph()
    graph.add_edge("a", "s", gbps=1.0, latency_s=0.001)
    graph.add_edge("s", "b", gbps=0.5, latency_s=0.002)
    env, fabric = make_fabric(graph)
    log = Log(env)
    for t, name, src, dst, size in [
        (0.0, "m1", "a", "b", 125_000),
        (0.0, "m2", "a", "b", 12_500),
        (0.005, "m3", "b", "a", 125_000),
        (0.020, "m4", "a", "b", 12_500),
    ]:
        env.process(send_at(env, fabric, log, t, name, src, dst, size))
    env.run()
    assert [name for name, _ in log.events] == ["m1", "m2", "m3", "m4"]
    assert [t for _, t in log.events] == pytest.approx([0.006, 0.0062, 0.011, 0.0233], abs=1e-12)


def test_converging_messages_are_served_in_arrival_order() -> None:
    """Two hosts send to ``b`` through switch ``s``. m1 leaves ``a`` first but has 10 ms of
    propagation to ``s``; m2 leaves ``c`` 1 ms later and reaches ``s`` at 1.11 ms, long before
    m1. On the shared s-b link m2 goes first: FIFO by arrival at the link, not by send time.
    """
    graph = nx.Graph()
    graph.add_edge("a", "s", gbps=1.0, latency_s=0.010)
    graph.add_edge("c", "s", gbps=1.0, latency_s=0.0001)
    graph.add_edge("s", "b", gbps=1.0, latency_s=0.0001)
    env, fabric = make_fabric(graph)
    log = Log(env)
    env.process(send_at(env, fabric, log, 0.0, "m1", "a", "b", 1250))
    env.process(send_at(env, fabric, log, 0.001, "m2", "c", "b", 1250))
    env.run()
    done = dict(log.events)
    serialize = 1250 * 8 / 1e9  # 10 us on each 1 Gbps link
    exact_m2 = 0.001 + serialize + 0.0001 + serialize + 0.0001  # 1.22 ms, no waiting
    exact_m1 = 0.0 + serialize + 0.010 + serialize + 0.0001  # 10.12 ms, link free by then
    assert done["m1"] == pytest.approx(exact_m1, abs=1e-12)
    assert done["m2"] == pytest.approx(exact_m2, abs=1e-12)


def test_same_host_delivery_takes_ipc_latency() -> None:
    """A message between two agents on one node is one IPC hop, whatever its size, and uses
    no link."""
    env, fabric = make_fabric(two_hosts())
    log = Log(env)
    fabric.send(message(10_000_000), "a", "a", log, "local")
    env.run()
    assert log.events == [("local", IPC_S)]
    assert fabric.links["a", "b"].messages == 0


def test_loss_drops_about_loss_prob() -> None:
    """With loss_prob = 0.1, about 10 % of 20,000 messages are dropped, counted as "loss" and
    reported to ``on_drop``; the rest are delivered. Binomial SD = sqrt(20000 * 0.1 * 0.9) =
    42 messages, so +-200 is about 5 SDs."""
    env, fabric = make_fabric(two_hosts(), loss_prob=0.1)
    dropped: list[str] = []
    fabric.on_drop = lambda _msg, _ctx, reason: dropped.append(reason)
    n = 20_000
    for i in range(n):
        fabric.send(message(100, i), "a", "b", lambda _m, _c: None, None)
    env.run()
    assert abs(fabric.dropped["loss"] - n * 0.1) < 200
    assert dropped == ["loss"] * fabric.dropped["loss"]
    assert fabric.delivered + fabric.dropped["loss"] == fabric.sent == n


def test_partition_drops_cross_cut_messages() -> None:
    """With ``cut = {"a"}``, messages between ``a`` and the rest are dropped as "partition",
    in both directions; traffic within either side is delivered; healing restores delivery."""
    graph = nx.Graph()
    for host in ("a", "b", "c"):
        graph.add_edge(host, "s", gbps=10.0, latency_s=0.0005)
    env, fabric = make_fabric(graph)
    log = Log(env)
    dropped: list[tuple[str, str]] = []
    fabric.on_drop = lambda _msg, name, reason: dropped.append((name, reason))
    fabric.cut = {"a"}
    for name, src, dst in [
        ("a->b", "a", "b"),
        ("b->a", "b", "a"),
        ("b->c", "b", "c"),
        ("a->a", "a", "a"),
    ]:
        fabric.send(message(100), src, dst, log, name)
    env.run()
    assert dropped == [("a->b", "partition"), ("b->a", "partition")]
    assert fabric.dropped == {"partition": 2}
    assert sorted(name for name, _ in log.events) == ["a->a", "b->c"]
    fabric.cut = set()
    fabric.send(message(100), "a", "b", log, "healed")
    env.run()
    assert log.events[-1][0] == "healed"

"""agi-1000 scaled by its ``nodes_per_pod`` parameter: the agent count it builds, the scenario
as written unchanged at the default, bad values named; fabric paths on a tree and off one."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import simpy

from swarmsim import Simulation, load_scenario
from swarmsim.errors import ConfigError
from swarmsim.fabric import Fabric
from swarmsim.rng import RandomStreams
from swarmsim.topology import build_topology


def placed(overrides: list[str]) -> Simulation:
    """agi-1000 with ``overrides``, built and its agents placed (no events run)."""
    sim = Simulation(load_scenario("agi-1000", overrides), seed=0)
    sim.start()
    return sim


@pytest.mark.parametrize(("nodes_per_pod", "agents"), [(3, 1_200), (25, 10_000)])
def test_nodes_per_pod_builds_five_pods_of_eighty_agents_a_node(
    nodes_per_pod: int, agents: int
) -> None:
    sim = placed([f"nodes_per_pod={nodes_per_pod}"])
    cluster = sim.cluster
    assert len(cluster.agents) == agents
    assert len(cluster.nodes) == 5 * nodes_per_pod
    assert sum(1 for n in cluster.nodes if n.name.startswith("pod-4-")) == nodes_per_pod
    assert len(cluster.layers["retriever"].ready) == 70 * 5 * nodes_per_pod
    assert sum(len(d.devices) for d in cluster.nodes) == 8 * 5 * nodes_per_pod


def test_the_default_is_the_scenario_as_written() -> None:
    default = load_scenario("agi-1000")
    assert default == load_scenario("agi-1000", ["nodes_per_pod=25"])
    assert [g.count for g in default.nodes] == [25] * 5
    assert default.workload.rate == 120.0
    assert len(placed([]).cluster.agents) == 10_000


@pytest.mark.parametrize(
    ("value", "field"),
    [("2.5", "parameters.nodes_per_pod"), ("0", "nodes[0].count"), ("1", "coordinator")],
)
def test_a_bad_nodes_per_pod_names_the_field(value: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_scenario("agi-1000", [f"nodes_per_pod={value}"])
    assert field in str(err.value)


def test_tree_paths_are_networkx_shortest_paths() -> None:
    graph = build_topology(load_scenario("agi-1000", ["nodes_per_pod=2"]))
    fabric = Fabric(simpy.Environment(), graph, RandomStreams(0)["fabric"], 0.0001)
    assert fabric._tree is not None
    hosts = [n for n, kind in graph.nodes(data="kind") if kind == "host"]
    for src, dst in itertools.permutations(hosts, 2):
        want = nx.shortest_path(graph, src, dst, weight="latency_s")
        assert fabric.path(src, dst) == tuple(
            fabric.links[u, v] for u, v in itertools.pairwise(want)
        )


def test_a_topology_with_a_loop_takes_the_shortest_of_its_paths() -> None:
    graph = nx.Graph()
    for a, b, latency in [("s1", "s2", 0.001), ("s2", "s3", 0.001), ("s1", "s3", 0.005)]:
        graph.add_edge(a, b, gbps=10.0, latency_s=latency)
    graph.add_edge("h1", "s1", gbps=10.0, latency_s=0.0)
    graph.add_edge("h3", "s3", gbps=10.0, latency_s=0.0)
    fabric = Fabric(simpy.Environment(), graph, RandomStreams(0)["fabric"], 0.0001)
    assert fabric._tree is None
    assert [link.name for link in fabric.path("h1", "h3")] == [
        "h1->s1", "s1->s2", "s2->s3", "s3->h3"
    ]  # fmt: skip

"""The fabric's topology as a networkx graph: hosts, switches and the links between them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from .nodes import expand_names

if TYPE_CHECKING:
    from .scenario import Scenario

SWITCH = "sw:"  # prefix of switch vertices, so a switch and a host may share a name


def build_topology(scenario: Scenario) -> nx.Graph:
    """Hosts cabled to their switch; switches joined by the scenario's links."""
    fabric = scenario.fabric
    graph = nx.Graph()
    for sw in fabric.switches:
        graph.add_node(SWITCH + sw.name, kind="switch", region=sw.region)
    default = fabric.switches[0].name
    for group in scenario.nodes:
        switch = SWITCH + (group.switch or default)
        for name in expand_names(group):
            graph.add_node(name, kind="host", region=group.region)
            graph.add_edge(name, switch, gbps=group.link_gbps, latency_s=group.link_latency_s)
    for link in fabric.links:
        graph.add_edge(SWITCH + link.a, SWITCH + link.b, gbps=link.gbps, latency_s=link.latency_s)
    return graph

"""The scenario: the frozen description of one simulated swarm, and its cross-references.

A scenario names the workload, the corpus, the layers (what each role runs and how work is
dispatched to it), the pipeline of stages a query passes through, the nodes and their
agents, the fabric, failures and scaling. Each part's config lives beside the component that
reads it; this module joins them and checks that names refer to things that exist (stages to
layers, agents to layers and devices, nodes to switches). Files are read by
:mod:`swarmsim.scenario_files`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .corpus import CorpusConfig
from .errors import check
from .fabric import FabricConfig
from .failures import FailureConfig
from .faults import Fault, check_targets, parse_faults
from .layers import LayerConfig, StageConfig
from .lifecycle import StartupConfig
from .nodes import CloudConfig, NodeGroup, expand_names
from .popularity import PopularityConfig
from .service import RetrievalConfig
from .training import TrainingConfig
from .workload import WorkloadConfig


@dataclass(frozen=True)
class Scenario:
    """One simulated swarm. See the built-in YAML files for annotated examples."""

    name: str
    description: str = ""
    duration_s: float = 3600.0
    warmup_s: float = 0.0  # queries arriving earlier are served but left out of latency stats
    parameters: dict[str, Any] = field(default_factory=dict)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    popularity: PopularityConfig = field(default_factory=PopularityConfig)  # which queries arrive
    fabric: FabricConfig = field(default_factory=FabricConfig)
    layers: dict[str, LayerConfig] = field(default_factory=dict)
    stages: tuple[StageConfig, ...] = ()
    nodes: tuple[NodeGroup, ...] = ()
    coordinator: str | None = None  # node hosting the planner/coordinator; None = the first
    failures: FailureConfig = field(default_factory=FailureConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)  # background fine-tuning
    startup: StartupConfig = field(default_factory=StartupConfig)  # model replicas' start-up
    control_interval_s: float = 15.0  # scaling / role decisions (Kubernetes HPA sync: 15 s)
    slo_latency_s: float = 5.0
    deadline_s: float | None = None  # a query slower than this is failed, not completed
    faults: tuple[str, ...] = ()  # a fault schedule (swarmsim.faults), read by sim and live alike

    def __post_init__(self) -> None:
        check(self.duration_s > 0, "duration_s", self.duration_s, "> 0")
        check(
            0 <= self.warmup_s < self.duration_s,
            "warmup_s",
            self.warmup_s,
            f"in [0, duration_s={self.duration_s})",
        )
        check(self.control_interval_s > 0, "control_interval_s", self.control_interval_s, "> 0")
        check(self.slo_latency_s > 0, "slo_latency_s", self.slo_latency_s, "> 0")
        check(len(self.stages) >= 1, "stages", self.stages, "at least one stage")
        check(len(self.nodes) >= 1, "nodes", self.nodes, "at least one node group")
        _check_references(self)
        check_targets(self.fault_schedule, self.agent_counts, self.node_names)

    @property
    def fault_schedule(self) -> tuple[Fault, ...]:
        """``faults`` parsed, in time order (errors name ``faults[i]``)."""
        return parse_faults(self.faults)

    @property
    def agent_counts(self) -> dict[str, int]:
        """Agents started at time 0 per layer name and per role name."""
        counts: dict[str, int] = {}
        for group in self.nodes:
            for agents in group.agents:
                role = str(self.layers[agents.layer].role)
                for name in {agents.layer, role}:
                    counts[name] = counts.get(name, 0) + agents.count * group.count
        return counts

    @property
    def node_names(self) -> list[str]:
        """Every node's name, groups expanded in order."""
        return [name for group in self.nodes for name in expand_names(group)]

    @property
    def has_retrieval(self) -> bool:
        return any(layer.role == "retriever" for layer in self.layers.values())


def _check_references(s: Scenario) -> None:
    retrievers = [name for name, layer in s.layers.items() if layer.role == "retriever"]
    check(len(retrievers) <= 1, "layers", retrievers, "at most one retriever layer")
    weights = s.retrieval.shard_weights
    check(
        not weights or len(weights) == s.corpus.n_shards,
        "retrieval.shard_weights",
        weights,
        f"one weight per corpus shard ({s.corpus.n_shards}) or none",
    )
    for i, stage in enumerate(s.stages):
        by_model = stage.layer_by_model
        names = [stage.layer] if by_model is None else list(by_model.values())
        for name in names:
            check(name in s.layers, f"stages[{i}].layer", name, f"a layer ({sorted(s.layers)})")
    switches = {sw.name for sw in s.fabric.switches}
    for i, link in enumerate(s.fabric.links):
        for end in ("a", "b"):
            check(
                getattr(link, end) in switches,
                f"fabric.links[{i}].{end}",
                getattr(link, end),
                f"a switch ({sorted(switches)})",
            )
    for i, group in enumerate(s.nodes):
        where = f"nodes[{i}]"
        check(
            group.switch is None or group.switch in switches,
            f"{where}.switch",
            group.switch,
            f"a switch ({sorted(switches)})",
        )
        for j, agents in enumerate(group.agents):
            check(
                agents.layer in s.layers,
                f"{where}.agents[{j}].layer",
                agents.layer,
                f"a layer ({sorted(s.layers)})",
            )
            check(
                agents.device is None or 0 <= agents.device < len(group.devices),
                f"{where}.agents[{j}].device",
                agents.device,
                f"an index into devices (0..{len(group.devices) - 1}) or null for the CPU",
            )
    groups = [g.name for g in s.nodes]
    for i, group_name in enumerate(s.training.groups):
        check(group_name in groups, f"training.groups[{i}]", group_name, f"a node group {groups}")
    names = s.node_names
    check(len(set(names)) == len(names), "nodes", names, "unique node names")
    check(
        s.coordinator is None or s.coordinator in names, "coordinator", s.coordinator, "a node name"
    )
    for i, part in enumerate(s.fabric.partitions):
        for node in part.nodes:
            check(node in names, f"fabric.partitions[{i}].nodes", node, "a node name")

"""Scenario files: the frozen description of one simulated swarm, loaded from YAML.

A scenario names the workload, the corpus, the layers (what each role runs and how work is
dispatched to it), the pipeline of stages a query passes through, the nodes and their
agents, the fabric, failures and scaling. It is validated once, at load, and every error
names the file, the dotted field and the offending value.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from .config import build, parse_value, set_dotted, substitute
from .corpus import CorpusConfig
from .errors import ConfigError, UnknownNameError, check
from .workload import WorkloadConfig

Role = Literal["embedder", "retriever", "synthesizer", "evaluator", "planner"]
Dispatch = Literal["central", "random", "round-robin", "least-loaded"]


@dataclass(frozen=True)
class ServiceConfig:
    """How long one unit of work takes. ``profile`` uses the device and model profiles, as
    ``base_s + scale * profile time`` (``swarmsim calibrate`` fits both to a recording);
    ``fitted`` is a linear model for roles without a profile: ``base_s + sum over the batch's
    jobs of (per_item_s + per_input_token_s * input tokens + per_output_token_s * output
    tokens)``. Both are multiplied by a log-normal residual of mean 1 and log-sd
    ``residual_sigma``."""

    kind: Literal["profile", "exponential", "deterministic", "fitted"] = "profile"
    rate: float | None = None  # jobs/s for exponential (mean 1/rate) and deterministic
    scale: float = 1.0  # profile: multiplies the profile's time
    base_s: float = 0.0  # profile and fitted: per service (batch)
    per_item_s: float = 0.0  # fitted: per job in the batch
    per_input_token_s: float = 0.0
    per_output_token_s: float = 0.0
    residual_sigma: float = 0.0  # fitted: log-sd of the multiplicative residual

    def __post_init__(self) -> None:
        if self.kind in ("exponential", "deterministic"):
            check(self.rate is not None and self.rate > 0, "rate", self.rate, "a rate > 0")
        for name in ("scale", "base_s", "per_item_s", "per_input_token_s", "per_output_token_s",
                     "residual_sigma"):  # fmt: skip
            value = getattr(self, name)
            check(math.isfinite(value) and value >= 0, name, value, "a number >= 0")


@dataclass(frozen=True)
class OverheadConfig:
    """A stage's coordination time, as tables of its distribution by load: row ``k`` applies
    when ``k + 1`` queries are in the swarm (the last row: that many or more; one row: any
    load) and ``row[i]`` is the ``probabilities[i]`` quantile. ``quantiles_s``: the hops and
    handling from its jobs being sent to their being served, less any queueing; drawn once per
    stage (a fan-out's jobs share it) and spent on the way to the agents, it delays service
    without occupying the agent. ``dispatch_quantiles_s`` (optional): the coordinator's
    handling from the stage becoming ready (the previous stage's last answer, or the query's
    arrival) to its first job being sent, a routing controller's decision included.
    ``swarmsim calibrate`` fits both to a live recording, whose CPU contention makes them
    grow with load."""

    quantiles_s: tuple[tuple[float, ...], ...]
    probabilities: tuple[float, ...] = ()  # default: evenly spaced from 0 to 1
    dispatch_quantiles_s: tuple[tuple[float, ...], ...] = ()

    def __post_init__(self) -> None:
        check(len(self.quantiles_s) >= 1, "quantiles_s", self.quantiles_s, "at least one row")
        for name in ("quantiles_s", "dispatch_quantiles_s"):
            for k, q in enumerate(getattr(self, name)):
                where = f"{name}[{k}]"
                check(len(q) >= 2, where, q, "at least two quantiles")
                ok = all(math.isfinite(x) and x >= 0 for x in q)
                check(ok, where, q, "numbers >= 0 (seconds)")
                check(all(a <= b for a, b in itertools.pairwise(q)), where, q, "non-decreasing")
                n = len(self.levels)
                check(len(q) == n, where, q, f"{n} quantiles, one a level")
        p = self.levels
        check(p[0] == 0 and p[-1] == 1, "probabilities", p, "levels from 0 to 1")
        check(all(a < b for a, b in itertools.pairwise(p)), "probabilities", p, "increasing")

    @property
    def levels(self) -> tuple[float, ...]:
        """The probability of each quantile: as given, or evenly spaced from 0 to 1."""
        n = len(self.quantiles_s[0]) if self.quantiles_s else 0
        return self.probabilities or tuple(i / max(n - 1, 1) for i in range(n))


@dataclass(frozen=True)
class LayerConfig:
    """A layer: the replicas of one role (and model), the unit that is scaled and dispatched to."""

    role: Role
    model: str | None = None  # model profile (llm-small, llm-large, embedder, evaluator)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    dispatch: Dispatch = "least-loaded"  # central = one FIFO queue at the coordinator (M/M/c)
    batch_max: int = 1  # jobs taken into one service when the role batches
    min_replicas: int = 1  # 0 allows scaling to zero: the layer then fails its work
    max_replicas: int = 100_000
    device: Literal["gpu", "cpu"] = "gpu"  # where new replicas are placed when scaling out
    exclusive: bool | None = None  # one such replica per GPU; default: synthesizers only
    load_s: float | None = None  # seconds to load model or shard (default: from the profiles)
    overhead: OverheadConfig | None = None  # per-stage coordination delays; None: none

    def __post_init__(self) -> None:
        check(self.batch_max >= 1, "batch_max", self.batch_max, ">= 1")
        ok = self.load_s is None or (math.isfinite(self.load_s) and self.load_s >= 0)
        check(ok, "load_s", self.load_s, "a number >= 0 or null")
        check(self.min_replicas >= 0, "min_replicas", self.min_replicas, ">= 0")
        check(
            self.max_replicas >= self.min_replicas,
            "max_replicas",
            self.max_replicas,
            f">= min_replicas ({self.min_replicas})",
        )
        if self.service.kind == "profile" and self.role in ("synthesizer", "embedder"):
            check(self.model is not None, "model", self.model, f"a model profile for {self.role}")


@dataclass(frozen=True)
class StageConfig:
    """One step of the pipeline: served by ``layer``, or by the layer matching the query's model."""

    layer: str | None = None
    layer_by_model: dict[str, str] | None = None  # query-class model tier -> layer

    def __post_init__(self) -> None:
        check(
            (self.layer is None) != (self.layer_by_model is None),
            "layer",
            self.layer,
            "exactly one of layer or layer_by_model",
        )


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


@dataclass(frozen=True)
class RetrievalConfig:
    """The modelled index: its size sets search cost; recall comes from the simulated corpus."""

    index: Literal["flat", "ivf", "hnsw"] = "flat"
    vectors_total: int = 1_000_000  # modelled corpus size, split evenly over the shards
    dim: int = 384
    nlist: int = 1024
    nprobe: int = 8
    hnsw_m: int = 32
    ef_search: int = 64

    def __post_init__(self) -> None:
        for name in ("vectors_total", "dim", "nlist", "nprobe", "hnsw_m", "ef_search"):
            check(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")


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


@dataclass(frozen=True)
class CloudConfig:
    """The cloud provisioning API: a node asked for now is up after ``provision_delay_s``."""

    provision_delay_s: float = 90.0  # typical GPU VM boot-to-ready; assumption, tune per cloud

    def __post_init__(self) -> None:
        check(self.provision_delay_s >= 0, "provision_delay_s", self.provision_delay_s, ">= 0")


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
    fabric: FabricConfig = field(default_factory=FabricConfig)
    layers: dict[str, LayerConfig] = field(default_factory=dict)
    stages: tuple[StageConfig, ...] = ()
    nodes: tuple[NodeGroup, ...] = ()
    coordinator: str | None = None  # node hosting the planner/coordinator; None = the first
    failures: FailureConfig = field(default_factory=FailureConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    control_interval_s: float = 15.0  # scaling / role decisions (Kubernetes HPA sync: 15 s)
    slo_latency_s: float = 5.0
    deadline_s: float | None = None  # a query slower than this is failed, not completed

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

    @property
    def node_names(self) -> list[str]:
        """Every node's name, groups expanded in order."""
        return [name for group in self.nodes for name in expand_names(group)]

    @property
    def has_retrieval(self) -> bool:
        return any(layer.role == "retriever" for layer in self.layers.values())


def expand_names(group: NodeGroup) -> list[str]:
    """The node names of a group: ``name`` alone, or ``name-0`` ... ``name-(count-1)``."""
    if group.count == 1:
        return [group.name]
    return [f"{group.name}-{i}" for i in range(group.count)]


def _check_references(s: Scenario) -> None:
    retrievers = [name for name, layer in s.layers.items() if layer.role == "retriever"]
    check(len(retrievers) <= 1, "layers", retrievers, "at most one retriever layer")
    for i, stage in enumerate(s.stages):
        names = [stage.layer] if stage.layer else list(stage.layer_by_model.values())
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
    names = s.node_names
    check(len(set(names)) == len(names), "nodes", names, "unique node names")
    check(
        s.coordinator is None or s.coordinator in names, "coordinator", s.coordinator, "a node name"
    )
    for i, part in enumerate(s.fabric.partitions):
        for node in part.nodes:
            check(node in names, f"fabric.partitions[{i}].nodes", node, "a node name")


# --- loading -------------------------------------------------------------------------------

BUILTIN = resources.files("swarmsim") / "scenarios"


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names and their one-line descriptions."""
    out = {}
    for entry in sorted(BUILTIN.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".yaml"):
            data = yaml.safe_load(entry.read_text())
            out[entry.name[: -len(".yaml")]] = str(data.get("description", "")).split("\n")[0]
    return out


def load_scenario(ref: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Load a built-in scenario by name or a YAML file by path, applying ``KEY=VALUE`` overrides.

    ``KEY`` is a declared parameter (``arrival_rate=0.9``) or any dotted field
    (``workload.rate=20``). Errors name the file, the field and the value.
    """
    path, raw = raw_scenario(ref)
    return resolve_scenario(raw, overrides, path)


def resolve_scenario(raw: dict[str, Any], overrides: Sequence[str], source: str) -> Scenario:
    """A scenario from its YAML mapping as written (see ``raw_scenario``) and overrides;
    errors name ``source``."""
    try:
        return _resolve(raw, overrides)
    except ConfigError as err:
        raise err.in_file(source) from None


def raw_scenario(ref: str | Path) -> tuple[str, dict[str, Any]]:
    """A scenario's source (file or built-in) and its YAML mapping as written, unresolved."""
    path, text = _read(ref)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError("(yaml)", str(err).splitlines()[0], "valid YAML", source=path) from None
    if not isinstance(raw, dict):
        raise ConfigError("(top)", raw, "a mapping of scenario fields", source=path)
    raw.setdefault("name", Path(ref).stem if path.endswith((".yaml", ".yml")) else str(ref))
    return path, raw


def _read(ref: str | Path) -> tuple[str, str]:
    ref_s = str(ref)
    candidate = Path(ref_s)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ConfigError("(file)", ref_s, "an existing scenario file", source=ref_s)
        return ref_s, candidate.read_text()
    known = builtin_scenarios()
    if ref_s not in known:
        raise UnknownNameError("scenario", ref_s, known)
    return f"{ref_s} (built-in)", (BUILTIN / f"{ref_s}.yaml").read_text()


def _resolve(raw: dict, overrides: Sequence[str]) -> Scenario:
    data = copy.deepcopy(raw)
    params = dict(data.get("parameters") or {})
    for item in overrides:
        key, value = _split_override(item)
        if "." not in key and key not in _SCENARIO_FIELDS:
            if key not in params:
                near = difflib.get_close_matches(key, params, n=1)
                hint = f"did you mean {near[0]!r}?" if near else f"one of {sorted(params)}"
                raise ConfigError(key, value, f"a declared parameter or a dotted field ({hint})")
            params[key] = _check_param(key, params[key], value)
        else:
            set_dotted(data, key, value)
    data["parameters"] = params
    data = {k: (v if k == "parameters" else substitute(v, params, k)) for k, v in data.items()}
    return build(Scenario, data)


def _check_param(name: str, default: Any, value: Any) -> Any:
    """A parameter override must have the type of the parameter's default."""
    kind = type(default)
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok, value = True, float(value)
    if not ok and default is not None:
        raise ConfigError(
            f"parameters.{name}", value, f"{kind.__name__} like the default {default!r}"
        )
    return value


def _split_override(item: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError("--set", item, "KEY=VALUE")
    return key.strip(), parse_value(value.strip())


_SCENARIO_FIELDS = frozenset(Scenario.__dataclass_fields__)

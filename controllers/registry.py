"""Controllers by Task and name, registered as data (as Gymnasium registers environments).

Each :class:`ControllerSpec` names its factory by an ``entry_point`` string
(``"controllers.routing:RoundRobin"``) that is imported on first use, so listing the
controllers imports none of them and no module has to be imported for its side effects.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from envs.registry import TASKS
from swarmsim.errors import UnknownNameError

from .base import Controller
from .tunable import Tunable

Factory = Callable[..., Controller]


@dataclass(frozen=True)
class ControllerSpec:
    """One controller of one Task: the factory's ``module:attr`` entry point, the keyword
    arguments it is always given (before the caller's) and a one-line summary. ``bare``
    False: a bare NAME does not name it, only TASK=NAME (a name another Task had first).
    ``reference``: an upper bound told what only the simulator knows (the run's future), run
    in the simulator and refused by the live runtime."""

    task: str
    name: str
    entry_point: str
    summary: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    bare: bool = True
    params: tuple[Tunable, ...] = ()
    reference: bool = False

    def make(self, **kwargs: Any) -> Controller:
        """A new controller: the entry point called with the spec's ``kwargs`` and the caller's
        (which may not override the spec's)."""
        fixed = sorted(set(self.kwargs) & set(kwargs))
        if fixed:
            raise TypeError(f"{self.name}: {', '.join(fixed)} is set by the registry, got {kwargs}")
        return load_factory(self.entry_point)(**self.kwargs, **kwargs)


_FAULTY = "fault injection: the default heuristic, failing after N decisions (mode=...)"
_ROUTING, _SCALING, _ROLES, _STRATEGY, _LLM = (
    "shard-routing",
    "autoscaling",
    "role-assignment",
    "inference-strategy",
    "llm-routing",
)

BUILTINS = (
    ControllerSpec(
        _ROUTING,
        "random",
        "controllers.routing:RandomRouting",
        "every shard, each on a uniformly random accepting replica",
    ),
    ControllerSpec(
        _ROUTING,
        "round-robin",
        "controllers.routing:RoundRobin",
        "every shard, rotating through its accepting replicas",
    ),
    ControllerSpec(
        _ROUTING,
        "least-outstanding",
        "controllers.routing:LeastOutstanding",
        "every shard on its replica with fewest in flight (JSQ)",
    ),
    ControllerSpec(
        _ROUTING,
        "power-of-two",
        "controllers.routing:PowerOfTwo",
        "every shard on the lighter of two random accepting replicas",
    ),
    ControllerSpec(
        _ROUTING,
        "search-all-shards",
        "controllers.routing:SearchAllShards",
        "every shard on its first accepting replica (load-blind)",
    ),
    ControllerSpec(
        _ROUTING,
        "relevance-threshold",
        "controllers.routing:RelevanceThreshold",
        "top shards covering fraction p of positive relevance, each on its JSQ replica",
        params=(Tunable("p", 0.05, 1.0),),
    ),
    ControllerSpec(
        _SCALING, "static", "controllers.scaling:Static", "fixed replicas: never scales"
    ),
    ControllerSpec(
        _SCALING,
        "hpa",
        "controllers.scaling:HPA",
        "Kubernetes HPA on utilisation: ceil(n*util/target), 300 s down-window",
        params=(
            Tunable("target_utilization", 0.3, 0.95),
            Tunable("tolerance", 0.0, 0.3),
            Tunable("stabilization_s", 0.0, 900.0),
        ),
    ),
    ControllerSpec(
        _SCALING,
        "kpa",
        "controllers.scaling:KPA",
        "Knative KPA on concurrency: 60 s stable / 6 s panic windows",
        params=(
            Tunable("target_concurrency", 0.5, 100.0, log=True),
            Tunable("stable_window_s", 15.0, 300.0),
            Tunable("panic_threshold", 1.1, 4.0),
            Tunable("max_scale_down_rate", 1.1, 4.0),
        ),
    ),
    ControllerSpec(
        _SCALING,
        "ray-serve",
        "controllers.scaling:RayServe",
        "Ray Serve default: 2 ongoing per replica, 30 s up / 600 s down",
        params=(
            Tunable("target_ongoing_requests", 0.5, 8.0, log=True),
            Tunable("upscale_delay_s", 0.0, 120.0),
            Tunable("downscale_delay_s", 15.0, 1200.0),
            Tunable("look_back_period_s", 15.0, 120.0),
        ),
    ),
    ControllerSpec(
        _SCALING,
        "predictive",
        "controllers.scaling:Predictive",
        "rate forecast one start-up ahead (linear trend) / measured capacity (Dynamo planner)",
        params=(
            Tunable("lead_s", 0.0, 600.0),
            Tunable("target_utilization", 0.3, 0.95),
            Tunable("alpha", 0.05, 1.0),
            Tunable("beta", 0.0, 1.0),
            Tunable("stabilization_s", 0.0, 900.0),
        ),
    ),
    ControllerSpec(
        _SCALING,
        "oracle",
        "controllers.oracle:Oracle",
        "reference: knows the future arrivals; sizes for their peak one start-up ahead",
        params=(
            Tunable("target_utilization", 0.3, 0.95),
            Tunable("horizon_s", 0.0, 600.0),
            Tunable("window_s", 15.0, 600.0),
        ),
        reference=True,
    ),
    ControllerSpec(
        _ROLES,
        "static",
        "controllers.roles:StaticRoles",
        "never moves an agent: the scenario's split stays fixed",
    ),
    ControllerSpec(
        _ROLES,
        "proportional",
        "controllers.roles:ProportionalRoles",
        "per node class, move one agent toward backlog-share parity",
        params=(Tunable("deadband", 0.0, 0.5),),
    ),
    ControllerSpec(
        _STRATEGY,
        "static",
        "controllers.strategy:static",
        "the simulator's default for every query: layer batch size, int4",
    ),
    ControllerSpec(
        _STRATEGY,
        "int8",
        "controllers.strategy:int8",
        "int8 weights for every query (the layer's batch size)",
    ),
    ControllerSpec(
        _STRATEGY,
        "fixed",
        "controllers.strategy:fixed",
        "one strategy for every query: arm=INDEX into STRATEGIES",
        params=(Tunable("arm", 0, 3, integer=True),),
    ),
    ControllerSpec(
        _STRATEGY,
        "by-class",
        "controllers.strategy:ByClass",
        "a fixed strategy per query class: c0=ARM:c1=ARM ...",
    ),
    ControllerSpec(
        _STRATEGY,
        "ucb1",
        "controllers.strategy:ucb1",
        "UCB1 per query class over the strategies (c=0.1 by default)",
        params=(Tunable("c", 0.01, 1.0, log=True),),
    ),
    ControllerSpec(
        _STRATEGY,
        "thompson",
        "controllers.strategy:thompson",
        "Gaussian Thompson sampling per query class (seeded)",
        params=(Tunable("prior_mean", 0.5, 1.0),),
    ),
    ControllerSpec(
        _LLM,
        "round-robin",
        "controllers.llm_routing:RoundRobin",
        "each query on the next accepting synthesizer replica in turn",
        bare=False,  # shard-routing's bare name
    ),
    ControllerSpec(
        _LLM,
        "least-outstanding",
        "controllers.llm_routing:LeastOutstanding",
        "each query on the replica with fewest outstanding jobs (JSQ)",
        bare=False,  # shard-routing's bare name
    ),
    ControllerSpec(
        _LLM,
        "power-of-two",
        "controllers.llm_routing:PowerOfTwo",
        "the lighter of two random accepting replicas (seed=...)",
        bare=False,  # shard-routing's bare name
    ),
    ControllerSpec(
        _LLM,
        "kv-overlap",
        "controllers.llm_routing:KvOverlap",
        "NVIDIA Dynamo: least overlap_weight x blocks to prefill + blocks in decode",
        params=(
            Tunable("overlap_weight", 0.1, 10.0, log=True),
            Tunable("pending_weight", 0.0, 1.0),
        ),
    ),
    ControllerSpec(
        _LLM,
        "llm-d",
        "controllers.llm_routing:LlmD",
        "llm-d: highest 3 x prefix overlap + 2 x (1 - queue) + 2 x (1 - KV use)",
        params=(
            Tunable("w_prefix", 0.0, 5.0),
            Tunable("w_queue", 0.0, 5.0),
            Tunable("w_kv", 0.0, 5.0),
            Tunable("pending_weight", 0.0, 1.0),
        ),
    ),
    # one per Task with a fallback heuristic (controllers.guardrails.DEFAULT_FALLBACK)
    *(
        ControllerSpec(
            task, "faulty", "controllers.faulty:FaultyController", _FAULTY, {"task": task}
        )
        for task in (_ROUTING, _SCALING, _ROLES, _LLM)
    ),
)

_REGISTRY: dict[str, dict[str, ControllerSpec]] = {name: {} for name in TASKS}


def register(spec: ControllerSpec) -> None:
    """Make ``spec`` a controller of its Task (for users and plugins; names are unique)."""
    if spec.task not in _REGISTRY:
        raise UnknownNameError("task", spec.task, _REGISTRY)
    if spec.name in _REGISTRY[spec.task]:
        raise ValueError(f"controller {spec.name!r} is already registered for {spec.task}")
    module, sep, attr = spec.entry_point.partition(":")
    if not (module and sep and attr):
        raise ValueError(f"entry_point must be 'module:attr', got {spec.entry_point!r}")
    _REGISTRY[spec.task][spec.name] = spec


def controller_spec(task: str, name: str) -> ControllerSpec:
    """The registered spec of controller ``name`` of ``task``; unknown names suggest the nearest."""
    if task not in _REGISTRY:
        raise UnknownNameError("task", task, _REGISTRY)
    if name not in _REGISTRY[task]:
        raise UnknownNameError(f"{task} controller", name, _REGISTRY[task])
    return _REGISTRY[task][name]


def make_controller(task: str, name: str, **kwargs: Any) -> Controller:
    """A new controller of ``task`` by registry name, built with ``kwargs``."""
    return controller_spec(task, name).make(**kwargs)


def controller_names() -> dict[str, dict[str, str]]:
    """Registered controllers grouped by Task: ``{task: {name: one-line summary}}``; imports no
    controller module."""
    return {
        task: {n: s.summary for n, s in sorted(entries.items())}
        for task, entries in _REGISTRY.items()
    }


def controller_params() -> dict[str, dict[str, tuple[Tunable, ...]]]:
    """Declared tunable parameters grouped by Task: ``{task: {name: params}}``, for the
    controllers that have any; imports no controller module."""
    return {
        task: {n: s.params for n, s in sorted(entries.items()) if s.params}
        for task, entries in _REGISTRY.items()
    }


@cache
def load_factory(entry_point: str) -> Factory:
    """The callable an entry point ``module:attr`` names, imported once."""
    module, _, attr = entry_point.partition(":")
    factory: Factory = getattr(importlib.import_module(module), attr)
    return factory


for _spec in BUILTINS:
    register(_spec)

"""The decision-spread experiment as data (issue 15): which scenario trains which Task, and per
Task the heuristic arms compared, the "do nothing" arm, the headline metrics and the metrics
reported beside them. ``experiments.spread_run`` runs it; ``swarmsim spread`` is its command."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TaskPlan:
    """The arms of one Task and how they are judged.

    ``arms`` are controller specs ``NAME[:key=value...]`` (the Task is prefixed when run);
    every heuristic of the Task at its defaults and at a few stated settings (a seed is not a
    setting). ``baseline`` is the "do nothing" arm the best must differ from; ``unsensible``
    arms (each with the reason) are run and shown but left out of the spread. ``headline``
    metrics are lower-is-better dotted summary keys, each with its own spread; the first is
    the primary one. ``beside`` are reported next to them, where the scenario measures them
    (goodput always: a policy cannot look fast by failing queries).
    """

    task: str
    arms: tuple[str, ...]
    baseline: str
    headline: tuple[str, ...]
    beside: tuple[str, ...]
    unsensible: dict[str, str] = field(default_factory=dict)


_ROUTING_BESIDE = ("recall_at_k", "slo.goodput_qps", "slo.violation_rate", "latency_s.p50")
HIGHER_IS_BETTER = frozenset({"slo.goodput_qps", "recall_at_k", "kv_cache.hit_rate"})
FRACTIONS = frozenset({"slo.violation_rate", "recall_at_k", "kv_cache.hit_rate"})  # in [0, 1]
COLLAPSED_BELOW = 1.2  # a control twin's spread under this has collapsed
MATTERS_AT = 1.5  # a scenario's spread at or above this shows the decision matters

PLANS = {
    "llm-routing": TaskPlan(
        "llm-routing",
        (
            "round-robin",
            "least-outstanding",
            "power-of-two",
            "kv-overlap",
            "kv-overlap:overlap_weight=2",
            "kv-overlap:overlap_weight=4",
            "llm-d",
            "llm-d:w_prefix=1.5",
            "llm-d:w_prefix=6",
        ),
        baseline="round-robin",
        headline=("latency_s.p99",),
        beside=(*_ROUTING_BESIDE, "ttft_s.p50", "kv_cache.hit_rate"),
    ),
    "shard-routing": TaskPlan(
        "shard-routing",
        (
            "random",
            "round-robin",
            "least-outstanding",
            "power-of-two",
            "search-all-shards",
            "relevance-threshold",
            "relevance-threshold:p=0.7",
            "relevance-threshold:p=0.5",
        ),
        baseline="search-all-shards",
        headline=("latency_s.p99",),
        beside=_ROUTING_BESIDE,
        unsensible={"random": "a uniformly random replica: the floor, not a policy"},
    ),
    "autoscaling": TaskPlan(
        "autoscaling",
        (
            "static",
            "hpa",
            "hpa:target_utilization=0.5",
            "hpa:target_utilization=0.9",
            "kpa",
            "kpa:target_concurrency=1",
            "kpa:target_concurrency=4",
            "ray-serve",
            "predictive",
            "predictive:lead_s=60",
            "predictive:lead_s=300",
        ),
        baseline="static",
        headline=("slo.violation_rate", "gpu_hours"),
        beside=("slo.goodput_qps", "latency_s.p50", "latency_s.p99"),
        unsensible={
            "kpa": "Knative's default target of 100 concurrent requests per pod is meant for "
            "web servers; an LLM replica serving one request at a time never reaches it, "
            "so the layer never scales",
        },
    ),
    "role-assignment": TaskPlan(
        "role-assignment",
        ("static", "proportional", "proportional:deadband=0.02", "proportional:deadband=0.2"),
        baseline="static",
        headline=("latency_s.mean", "slo.violation_rate"),
        beside=("slo.goodput_qps", "latency_s.p50", "latency_s.p99"),
    ),
}

SCENARIOS = {  # each scenario and the Task it is built for, a control twin after its scenario
    "prefix-cache": "llm-routing",
    "prefix-cache-control": "llm-routing",
    "hot-shards": "shard-routing",
    "hot-shards-control": "shard-routing",
    "diurnal": "autoscaling",
    "diurnal-control": "autoscaling",
    "shared-gpus": "role-assignment",
    "shared-gpus-control": "role-assignment",
    "mooncake@prefix-cache": "llm-routing",
}


@dataclass(frozen=True)
class Replay:
    """A public trace replayed on a built-in scenario: a spread "scenario" named
    ``TRACE@SCENARIO`` whose arrivals, tokens and prefix blocks come from the trace."""

    path: str  # relative to the checkout; ../shared is beside it
    scenario: str
    columns: tuple[str, ...]  # COLUMN=FIELD, as replay's --map
    time_unit: str
    block_tokens: int | None  # tokens per prefix block (None: the trace has no blocks)
    time_scale: float
    overrides: tuple[str, ...]


REPLAYS = {
    # Mooncake's synthetic trace (hash_ids per 512-token block, ms timestamps) stretched 10x so
    # that four RTX 4080 SUPER replicas can serve it. Its median prompt is 11.6 k tokens: more
    # than half of a replica's 1,263 x 16-token HBM cache, so the cache is sized as a node's
    # CPU-memory KV pool instead (Mooncake's design): 2,000 blocks of 512 tokens per replica.
    "mooncake@prefix-cache": Replay(
        "../shared/traces/mooncake_synthetic/synthetic_trace.jsonl",
        "prefix-cache",
        ("hash_ids=blocks",),
        "ms",
        512,
        10.0,
        ("layers.synth.kv_cache.capacity_blocks=2000",),
    ),
    # Azure's LLM inference trace (conversation, one hour, 5.4 requests/s) stretched 4.5x to
    # diurnal's mean rate of 1.2/s: real bursts in place of the synthetic day (so its cycle and
    # bursts are off), requests sorted into the two classes a trace needs, both served by
    # diurnal's one synthesizer layer (tokens from the trace).
    "azure-conv@diurnal": Replay(
        "../shared/traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv",
        "diurnal",
        (),
        "s",
        None,
        4.5,
        (
            "workload.diurnal=null",
            "workload.bursts=null",
            "workload.classes=[{name: short, weight: 1.0, model: small, input_tokens: {median: "
            "1020, sigma: 1.0}, output_tokens: {median: 129, sigma: 0.86}}, {name: long, "
            "weight: 0.01, model: large, input_tokens: {median: 1020, sigma: 1.0}, "
            "output_tokens: {median: 129, sigma: 0.86}}]",
        ),
    ),
}
CONTROL_SUFFIX = "-control"  # NAME-control is NAME with its mechanism switched off

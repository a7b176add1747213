"""One simulation run: builds the model from a scenario, runs it, returns the metrics summary.

``Simulation`` is also the simulator's ``ControlPlane``. Decisions are taken at decision
points through hooks: ``on_route(query)`` once per query when it reaches the retrieval
layer, ``on_configure(query)`` once per query when it reaches its synthesizer stage,
``on_control()`` hooks once per control interval (before the interval's statistics are
reset). A hook reads ``view()`` and answers through ``route`` / ``configure`` / ``scale`` /
``assign``, at once or later: a query waits at the coordinator until its answer arrives,
which is how a Gymnasium environment pauses the simulation at a decision point. Without
hooks the built-in defaults apply: every shard searched on its least-loaded replica, the
layer's batch size and the profiles' precision, fixed replicas, fixed roles. ``on_outcome``
hears every query's end (``QueryOutcome``), for controllers that learn from outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import simpy

from .cluster import Agent, Cluster, Layer
from .coordinator import ACTIVE, COMPLETED, FAILED, OUTCOMES, Coordinator, Query
from .corpus import Corpus, scenario_corpus
from .errors import UnknownNameError
from .fabric import Fabric
from .failures import Failures
from .inference import InferenceStrategy, load_inference
from .lifecycle import Lifecycle
from .metrics import Metrics, check_conservation
from .overhead import Overhead
from .profiles import Profiles, load_profiles
from .rng import RandomStreams, Stream
from .scenario import Scenario
from .service import ServiceModel
from .snapshot import build_view
from .summary import summarize
from .topology import build_topology
from .view import ClusterView, QueryOutcome, RoutePlan
from .workload import Workload

RouteHook = Callable[[Query], None]  # a query needs a route plan (answer with ``route``)
ConfigureHook = Callable[[Query], None]  # a query needs a strategy (answer with ``configure``)
OutcomeHook = Callable[[QueryOutcome], None]  # a query ended (completed, failed or dropped)
ControlHook = Callable[[], None]  # a control interval ended (scale / assign now)
Progress = Callable[[float], None]


class Simulation:
    """A SimPy model of the swarm for one scenario and seed."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int = 0,
        *,
        profiles: Profiles | None = None,
        on_route: RouteHook | None = None,
        on_control: Sequence[ControlHook] = (),
        on_configure: ConfigureHook | None = None,
        on_outcome: OutcomeHook | None = None,
        record_timeline: bool = False,
        base_dir: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.env = simpy.Environment()
        self.streams = RandomStreams(seed)
        self.record_timeline = record_timeline
        self.on_route = on_route
        self.on_control = list(on_control)
        self.on_configure = on_configure
        self.on_outcome = on_outcome
        self.inference = load_inference()
        self.cluster = Cluster(scenario, profiles or load_profiles())
        self.corpus: Corpus | None = None
        if scenario.has_retrieval:
            self.corpus = scenario_corpus(scenario.corpus)
        self.n_shards = self.corpus.n_shards if self.corpus else 0
        self.k = self.corpus.k if self.corpus else 0
        self.workload = Workload(scenario.workload, self.streams["workload"].gen, base_dir)
        self.qclass_models = [c.model for c in scenario.workload.classes]
        self.metrics = Metrics(scenario.warmup_s, scenario.slo_latency_s)
        self.fabric = Fabric(
            self.env,
            build_topology(scenario),
            self.streams["fabric"],
            scenario.fabric.ipc_latency_s,
            scenario.fabric.loss_prob,
        )
        if not scenario.fabric.enabled:
            self.fabric.send = self._handoff
        self.service = ServiceModel(
            scenario.retrieval, self.n_shards, self.streams["service"], self.inference
        )
        self._overheads()
        self.default_quality = self.inference.precision(self.inference.reference).quality
        self.stage_layers = [self._stage_layer(s) for s in scenario.stages]
        self.retriever = next(
            (ly for ly in self.cluster.layers.values() if ly.role == "retriever"), None
        )
        self.coordinator = Coordinator(self)
        self.fabric.on_drop = lambda _msg, item, reason: self.coordinator.lost(item, reason)
        self.lifecycle = Lifecycle(self)
        self.failures = Failures(self)
        self.awaiting: dict[int, tuple[Query, Layer]] = {}  # waiting for a route
        self.configuring: dict[int, tuple[Query, Layer]] = {}  # waiting for a strategy
        self.active: dict[int, Query] = {}  # queries in flight, in arrival order
        self.timeline: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []  # replicas that became ready (lifecycle)
        self.ended = False

    def _overheads(self) -> None:
        """Give each layer with an overhead table its sampler, on a stream of its own (spawned
        per layer in scenario order from the ``overhead`` stream)."""
        layers = list(self.cluster.layers.values())
        gens = self.streams["overhead"].gen.spawn(len(layers))
        for layer, gen in zip(layers, gens, strict=True):
            if layer.cfg.overhead is not None:
                layer.overhead = Overhead(layer.cfg.overhead, Stream(gen))

    def _stage_layer(self, stage) -> Layer | dict[str, Layer]:
        if stage.layer is not None:
            return self.cluster.layers[stage.layer]
        return {m: self.cluster.layers[name] for m, name in stage.layer_by_model.items()}

    def _handoff(self, msg, _src: str, _dst: str, deliver, ctx) -> None:
        """Instantaneous delivery, for scenarios without a fabric (queueing validation)."""
        self.fabric.sent += 1
        self.fabric.delivered += 1
        deliver(msg, ctx)

    # --- running ----------------------------------------------------------------------------

    def run(self, until: float | None = None, progress: Progress | None = None) -> dict[str, Any]:
        """Run to ``until`` (default: the scenario's duration) and return the metrics summary."""
        end = self.scenario.duration_s if until is None else until
        wall = time.perf_counter()
        self.start()
        step = max(end / 100, 1.0)
        t = self.env.now
        while t < end:
            t = min(t + step, end)
            self.env.run(until=t)
            if progress:
                progress(t / end)
        summary = self.summary(time.perf_counter() - wall)
        check_conservation(summary)
        return summary

    def start(self) -> None:
        """Start the model's processes (idempotent); ``run`` calls it."""
        if getattr(self, "_started", False):
            return
        self._started = True
        self.lifecycle.start_initial()
        self.failures.start()
        self.env.process(self._arrivals())
        self.env.process(self._control_loop())

    def _arrivals(self) -> Generator[simpy.Event, None, None]:
        env, pool = self.env, self.streams["queries"]
        n_pool = self.corpus.queries.shape[0] if self.corpus else 1
        for qid, arr in enumerate(self.workload.arrivals()):
            delay = arr.t - env.now
            if delay > 0:
                yield env.timeout(delay)
            model = self.qclass_models[arr.qclass]
            query = Query(
                qid,
                env.now,
                arr.qclass,
                model,
                arr.input_tokens,
                arr.output_tokens,
                pool.randrange(n_pool),
            )
            self.active[qid] = query
            self.coordinator.accept(query)

    def _control_loop(self) -> Generator[simpy.Event, None, None]:
        interval = self.scenario.control_interval_s
        while True:
            yield self.env.timeout(interval)
            for hook in self.on_control:
                hook()
            for layer in self.cluster.layers.values():
                layer.arrivals = 0
                layer.recent_latency = []
                layer.busy_recent = 0.0
                layer.interval_start = self.env.now

    def overdue(self, since: float = 0.0) -> int:
        """Queries in flight (arrived at or after ``since``) older than the SLO: O(overdue),
        since ``active`` is in arrival order."""
        cutoff = self.env.now - self.scenario.slo_latency_s
        count = 0
        for query in self.active.values():
            if query.arrival >= cutoff:
                break
            count += query.arrival >= since
        return count

    def can_serve(self) -> bool:
        """False when some stage has no agent left at all (none running, starting or dead
        awaiting restart): the cluster can serve nothing more."""
        for layers in self.stage_layers:
            group = [layers] if isinstance(layers, Layer) else list(layers.values())
            if not any(layer.agents for layer in group):
                return False
        return True

    def event_count(self) -> int:
        """SimPy events scheduled so far (SimPy numbers every scheduled event in order)."""
        return next(self.env._eid)

    # --- decisions --------------------------------------------------------------------------

    def start_retrieval(self, query: Query, layer: Layer) -> None:
        """A decision point: the query needs a route plan."""
        if self.on_route is None:
            self.coordinator.fan_out(query, layer, self.default_plan())
            return
        self.awaiting[query.id] = (query, layer)
        self.on_route(query)

    def start_synthesis(self, query: Query, layer: Layer) -> None:
        """A decision point: the query needs an inference strategy for ``layer``."""
        self.configuring[query.id] = (query, layer)
        self.on_configure(query)

    def default_plan(self) -> list[tuple[int, Agent]]:
        """Every shard, each on its replica with the fewest outstanding jobs."""
        plan = []
        for shard in range(self.n_shards):
            agent = self.pick_replica(shard)
            if agent is None:
                return []
            plan.append((shard, agent))
        return plan

    def pick_replica(self, shard: int) -> Agent | None:
        """The least-loaded accepting replica of ``shard``, or None."""
        pool = self.retriever.shard_pools.get(shard)
        return None if pool is None else pool.least()

    def view(
        self,
        query: Query | None = None,
        roles: tuple[str, ...] | None = None,
        layer_stats: bool = True,
    ) -> ClusterView:
        """A snapshot of what a controller may know now (see ``snapshot.build_view``)."""
        return build_view(self, query, roles, layer_stats)

    def on_retrieved(self, query: Query) -> None:
        """A retrieval's answers joined: credit its recall@k to the totals."""
        self.metrics.retrievals += 1
        if self.corpus is not None:
            query.recall = self.corpus.recall_at_k(query.pool, query.searched)
            self.metrics.recall_sum += query.recall

    # --- ControlPlane -----------------------------------------------------------------------

    def route(self, query: int, plan: RoutePlan) -> None:
        """Search ``plan``'s shards for the waiting ``query``, each on the named replica."""
        if query not in self.awaiting:
            raise ValueError(f"query {query} is not waiting for a route")
        agents = self.cluster.agents
        resolved = []
        for shard, aid in plan:
            agent = agents[aid] if 0 <= aid < len(agents) else None
            if agent is None or agent.shard != shard or not agent.accepting:
                raise ValueError(f"agent {aid} is not an accepting replica of shard {shard}")
            resolved.append((shard, agent))
        q, layer = self.awaiting.pop(query)
        self.coordinator.fan_out(q, layer, resolved)

    def configure(self, query: int, strategy: InferenceStrategy) -> None:
        """Serve the waiting ``query``'s synthesizer stage with ``strategy``."""
        if query not in self.configuring:
            raise ValueError(f"query {query} is not waiting for an inference strategy")
        if not isinstance(strategy, InferenceStrategy):
            raise TypeError(f"strategy must be an InferenceStrategy, got {strategy!r}")
        q, layer = self.configuring.pop(query)
        self.coordinator.start_synthesis(q, layer, strategy)

    def scale(self, layer: str, target: int) -> None:
        self.lifecycle.scale(layer, target)

    def assign(self, agent: int, layer: str, shard: int | None = None) -> None:
        self.lifecycle.assign(agent, layer, shard)

    def layer(self, name: str) -> Layer:
        if name not in self.cluster.layers:
            raise UnknownNameError("layer", name, self.cluster.layers)
        return self.cluster.layers[name]

    def on_capacity(self, layer: Layer) -> None:
        """An agent became ready: the layer's backlog may move."""
        if layer.backlog:
            self.coordinator.pump(layer)

    # --- outcomes ---------------------------------------------------------------------------

    def finish(self, query: Query, outcome: int, reason: str = "") -> None:
        """Record a query's end (once); completed queries over the deadline count as failed."""
        if query.status != ACTIVE:
            return
        now = self.env.now
        latency = now - query.arrival
        deadline = self.scenario.deadline_s
        if outcome == COMPLETED and deadline is not None and latency > deadline:
            outcome, reason = FAILED, "deadline"
        query.status, query.end, query.reason = outcome, now, reason
        self.awaiting.pop(query.id, None)
        if self.configuring:
            self.configuring.pop(query.id, None)
        del self.active[query.id]
        m = self.metrics
        quality = 0.0
        if outcome == COMPLETED:
            quality = self.answer_quality(query)
            m.completed += 1
            m.latency_sum += latency
            m.quality_sum += quality
            if latency > m.slo_s:
                m.slo_violations += 1
            if query.arrival >= m.warmup_s:
                m.latencies.append(latency)
                m.qualities.append(quality)
                if self.corpus is not None:
                    m.recalls.append(self.corpus.recall_at_k(query.pool, query.searched))
        else:
            m.count_end(OUTCOMES[outcome], reason, query.arrival)
        if query.timeline is not None:
            self.timeline.append(self._timeline_record(query))
        if self.on_outcome is not None:
            late = outcome != COMPLETED or latency > m.slo_s
            self.on_outcome(
                QueryOutcome(query.id, query.qclass, OUTCOMES[outcome], latency, quality, late)
            )

    def answer_quality(self, query: Query) -> float:
        """A completed answer's quality: its precision's quality factor x its recall@k."""
        strategy = query.strategy
        if strategy is None:
            return self.default_quality * query.recall
        return self.inference.precision(strategy.precision).quality * query.recall

    def recording(self) -> list[dict[str, Any]]:
        """What ``--trace-out`` writes: the per-query timeline, then the lifecycle events."""
        return [*self.timeline, *self.events]

    def _timeline_record(self, query: Query) -> dict[str, Any]:
        return {
            "query": query.id,
            "class": query.qclass,
            "input_tokens": query.in_tok,
            "output_tokens": query.out_tok,
            "arrival": query.arrival,
            "end": query.end,
            "outcome": OUTCOMES[query.status],
            "reason": query.reason,
            "recall": query.recall,
            "stages": [
                {
                    "stage": st,
                    "layer": ly,
                    "agent": ag,
                    "node": nd,
                    "device": dv,
                    "sent": se,
                    "start": sa,
                    "end": en,
                }
                for st, ly, ag, nd, dv, se, sa, en in query.timeline
            ],
        }

    def summary(self, wall_s: float) -> dict[str, Any]:
        """The metrics summary (ARCHITECTURE.md schema plus simulator detail)."""
        return summarize(self, wall_s)

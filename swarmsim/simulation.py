"""One simulation run: builds the model from a scenario, runs it, returns the metrics summary.

``Simulation`` is also the simulator's ``ControlPlane``. Decisions are taken at decision
points through hooks: ``on_route(query)`` once per query when it reaches the retrieval
layer, ``on_configure(query)`` once per query when it reaches its synthesizer stage (or
else ``on_place(query)``, which picks the replica that serves it), ``on_control()`` hooks
once per control interval (before the interval's statistics are reset). A hook reads
``view()`` and answers through ``route`` / ``configure`` / ``place`` / ``scale`` /
``assign``, at once or later: a query waits at the coordinator until its answer arrives,
which is how a Gymnasium environment pauses the simulation at a decision point. Without
hooks the built-in defaults apply: every shard searched on its least-loaded replica, the
layer's batch size and the profiles' precision, the layer's dispatch rule, fixed replicas,
fixed roles. ``on_outcome`` hears every query's end (``QueryOutcome``), for controllers that
learn from outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from itertools import count
from pathlib import Path
from typing import Any

import simpy

from .clock import Call
from .cluster import Cluster, Layer
from .coordinator import Coordinator, OutcomeHook, QueryHook, StageLayers
from .corpus import Corpus, scenario_corpus
from .errors import UnknownNameError
from .fabric import Fabric, Handoff
from .failures import Failures
from .inference import InferenceStrategy, load_inference
from .injection import Injector
from .layers import StageConfig
from .lifecycle import Lifecycle
from .metrics import Metrics, check_conservation
from .overhead import Overhead
from .popularity import Popularity
from .profiles import Profiles, load_profiles
from .query import Outcome, Query
from .rng import RandomStreams, Stream
from .scenario import Scenario
from .service import ServiceModel
from .sessions import ClosedLoop, Turn
from .snapshot import build_view
from .summary import Summary, summarize
from .topology import build_topology
from .training import Training
from .view import ClusterView, RoutePlan
from .workload import Arrival, Workload

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
        on_route: QueryHook | None = None,
        on_control: Sequence[ControlHook] = (),
        on_configure: QueryHook | None = None,
        on_outcome: OutcomeHook | None = None,
        record_timeline: bool = False,
        base_dir: Path | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.base_dir = base_dir  # where a trace's relative path is found
        self.env = simpy.Environment()
        self.streams = RandomStreams(seed)
        self.record_timeline = record_timeline
        self.on_control = list(on_control)
        self.inference = load_inference()
        self.cluster = Cluster(scenario, profiles or load_profiles())
        self.corpus: Corpus | None = None
        if scenario.has_retrieval:
            self.corpus = scenario_corpus(scenario.corpus)
        self.n_shards = self.corpus.n_shards if self.corpus else 0
        self.k = self.corpus.k if self.corpus else 0
        self.workload = Workload(
            scenario.workload,
            self.streams["workload"].gen,
            base_dir,
            self.streams["prefix"].gen,
            self.streams["bursts"].gen,
        )
        self.qclass_models = [c.model for c in scenario.workload.classes]
        sessions = scenario.workload.sessions
        self.closed_loop: ClosedLoop | None = None
        if sessions is not None and sessions.closed_loop:
            self.closed_loop = ClosedLoop(self.workload, self.streams["sessions"])
        self.session_of: dict[int, int] = {}  # closed loop: query id -> its session's slot
        self.metrics = Metrics(scenario.warmup_s, scenario.slo_latency_s)
        fabric = Fabric if scenario.fabric.enabled else Handoff
        self.fabric = fabric(
            self.env,
            build_topology(scenario),
            self.streams["fabric"],
            scenario.fabric.ipc_latency_s,
            scenario.fabric.loss_prob,
        )
        self.service = ServiceModel(
            scenario.retrieval,
            self.n_shards,
            self.streams["service"],
            self.inference,
            scenario.training.slowdown,
        )
        self._overheads()
        self.default_quality = self.inference.precision(self.inference.reference).quality
        self.stage_layers = [self._stage_layer(s) for s in scenario.stages]
        self.timeline: list[dict[str, Any]] = []  # finished queries' records, when recording
        self.events: list[dict[str, Any]] = []  # replicas that became ready (lifecycle)
        self.coordinator = Coordinator(
            self.env,
            scenario,
            self.fabric,
            self.service,
            self.metrics,
            self.stage_layers,
            node=self.cluster.coordinator.name,
            corpus=self.corpus,
            inference=self.inference,
            dispatch_stream=self.streams["dispatch"],
            timeline=self.timeline if record_timeline else None,
        )
        self.coordinator.on_route = on_route
        self.coordinator.on_configure = on_configure
        self.coordinator.on_outcome = on_outcome
        self.fabric.on_drop = lambda _msg, job, reason: self.coordinator.lost(job, reason)
        self.lifecycle = Lifecycle(
            self.env,
            self.cluster,
            self.coordinator,
            self.metrics,
            n_shards=self.n_shards,
            events=self.events if record_timeline else None,
        )
        self.failures = Failures(
            self.env,
            scenario.failures,
            self.streams["failures"],
            self.cluster,
            self.fabric,
            self.coordinator,
            self.lifecycle,
            scenario.fabric.partitions,
        )
        self.training = Training(
            self.env, scenario.training, self.streams["training"], self.cluster
        )
        self.coordinator.on_drained = self.lifecycle.drained
        self.coordinator.on_lost_found = self.failures.recover_lost
        self.injector: Injector | None = None  # the fault schedule's, when it has one
        if scenario.faults:
            self.injector = Injector(
                self.env, scenario, self.streams["faults"], cluster=self.cluster,
                coordinator=self.coordinator, failures=self.failures, lifecycle=self.lifecycle,
                service=self.service, metrics=self.metrics,
            )  # fmt: skip

    def _overheads(self) -> None:
        """Give each layer with an overhead table its sampler, on a stream of its own (spawned
        per layer in scenario order from the ``overhead`` stream)."""
        layers = list(self.cluster.layers.values())
        gens = self.streams["overhead"].gen.spawn(len(layers))
        for layer, gen in zip(layers, gens, strict=True):
            if layer.cfg.overhead is not None:
                layer.overhead = Overhead(layer.cfg.overhead, Stream(gen))

    def _stage_layer(self, stage: StageConfig) -> StageLayers:
        if stage.layer is not None:
            return self.cluster.layers[stage.layer]
        by_model = stage.layer_by_model or {}
        return {m: self.cluster.layers[name] for m, name in by_model.items()}

    # --- running ----------------------------------------------------------------------------

    def run(self, until: float | None = None, progress: Progress | None = None) -> Summary:
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
        if self.injector is not None:
            self.injector.start()
        if self.closed_loop is None:
            self.env.process(self._arrivals())
        else:
            self.env.process(self._first_turns(self.closed_loop))
        self.env.process(self._control_loop())

    def _query_picker(self) -> Callable[[], int]:
        """How an arrival picks its pool query: uniform (``queries`` stream) or by topic
        popularity (``popularity`` stream)."""
        zipf, corpus = self.scenario.popularity.topic_zipf, self.corpus
        if zipf is None or corpus is None:
            pool = self.streams["queries"]
            n_pool = corpus.queries.shape[0] if corpus else 1
            return lambda: pool.randrange(n_pool)
        if corpus.query_topics is None:
            raise ValueError("popularity.topic_zipf needs a corpus that knows its query topics")
        return Popularity(zipf, corpus.query_topics, self.streams["popularity"]).draw

    def _arrivals(self) -> Generator[simpy.Event, None, None]:
        env, pick = self.env, self._query_picker()
        for qid, arr in enumerate(self.workload.arrivals()):
            delay = arr.t - env.now
            if delay > 0:
                yield env.timeout(delay)
            self.coordinator.accept(self._query(qid, arr, pick()))

    def _query(self, qid: int, arr: Arrival, pool: int) -> Query:
        """The query of arrival ``arr``, arriving now, for pool query ``pool``."""
        model = self.qclass_models[arr.qclass]
        return Query(
            qid, self.env.now, arr.qclass, model, arr.input_tokens, arr.output_tokens, pool,
            arr.blocks,
        )  # fmt: skip

    def _first_turns(self, loop: ClosedLoop) -> Generator[simpy.Event, None, None]:
        """Closed-loop sessions: send each session's first turn, then each next turn a think
        time after the previous one ends (``_turn_ended``)."""
        self._pick, self._qids = self._query_picker(), count()
        self.coordinator.on_end = self._turn_ended
        for turn in loop.first_turns():
            delay = turn[1].t - self.env.now
            if delay > 0:
                yield self.env.timeout(delay)
            self._send_turn(turn)

    def _send_turn(self, turn: Turn) -> None:
        slot, arr = turn
        query = self._query(next(self._qids), arr, self._pick())
        self.session_of[query.id] = slot
        self.coordinator.accept(query)

    def _turn_ended(self, query: Query) -> None:
        """A closed-loop turn ended: schedule its session's next turn."""
        assert self.closed_loop is not None
        slot = self.session_of.pop(query.id)
        answer = query.output_tokens if query.outcome is Outcome.COMPLETED else None
        turn = self.closed_loop.next_turn(slot, self.env.now, answer)
        if turn is not None:
            Call(self.env, max(turn[1].t - self.env.now, 0.0), self._send_turn, turn)

    def _control_loop(self) -> Generator[simpy.Event, None, None]:
        interval = self.scenario.control_interval_s
        while True:
            yield self.env.timeout(interval)
            for hook in self.on_control:
                hook()
            for layer in self.cluster.layers.values():
                layer.arrival_history.append(layer.arrivals / interval)
                layer.arrivals = 0
                layer.recent_latency = []
                layer.busy_recent = 0.0
                layer.interval_start = self.env.now

    @property
    def on_route(self) -> QueryHook | None:
        """The routing decision hook (see the module docstring); set it before ``run``."""
        return self.coordinator.on_route

    @on_route.setter
    def on_route(self, hook: QueryHook | None) -> None:
        self.coordinator.on_route = hook

    @property
    def on_configure(self) -> QueryHook | None:
        """The inference-strategy decision hook; set it before ``run``."""
        return self.coordinator.on_configure

    @on_configure.setter
    def on_configure(self, hook: QueryHook | None) -> None:
        self.coordinator.on_configure = hook

    @property
    def on_place(self) -> QueryHook | None:
        """The synthesizer-placement decision hook (ignored while ``on_configure`` is set);
        set it before ``run``."""
        return self.coordinator.on_place

    @on_place.setter
    def on_place(self, hook: QueryHook | None) -> None:
        self.coordinator.on_place = hook

    @property
    def on_outcome(self) -> OutcomeHook | None:
        """Hears every query's end (``QueryOutcome``)."""
        return self.coordinator.on_outcome

    @on_outcome.setter
    def on_outcome(self, hook: OutcomeHook | None) -> None:
        self.coordinator.on_outcome = hook

    def event_count(self) -> int:
        """SimPy events scheduled so far (SimPy numbers every scheduled event in order)."""
        return next(self.env._eid)

    # --- decisions --------------------------------------------------------------------------

    def view(
        self,
        query: Query | None = None,
        roles: tuple[str, ...] | None = None,
        layer_stats: bool = True,
    ) -> ClusterView:
        """A snapshot of what a controller may know now (see ``snapshot.build_view``)."""
        return build_view(self, query, roles, layer_stats)

    # --- ControlPlane -----------------------------------------------------------------------

    def route(self, query: int, plan: RoutePlan) -> None:
        """Search ``plan``'s shards for the waiting ``query``, each on the named replica."""
        self.coordinator.route(query, plan, self.cluster.agents)

    def configure(self, query: int, strategy: InferenceStrategy) -> None:
        """Serve the waiting ``query``'s synthesizer stage with ``strategy``."""
        self.coordinator.configure(query, strategy)

    def place(self, query: int, agent: int) -> None:
        """Send the waiting ``query``'s synthesizer job to the accepting replica ``agent``."""
        self.coordinator.place(query, agent, self.cluster.agents)

    def scale(self, layer: str, target: int) -> None:
        self.lifecycle.scale(layer, target)

    def assign(self, agent: int, layer: str, shard: int | None = None) -> None:
        self.lifecycle.assign(agent, layer, shard)

    def layer(self, name: str) -> Layer:
        if name not in self.cluster.layers:
            raise UnknownNameError("layer", name, self.cluster.layers)
        return self.cluster.layers[name]

    def recording(self) -> list[dict[str, Any]]:
        """What ``--trace-out`` writes: the per-query timeline, then the lifecycle events."""
        return [*self.timeline, *self.events]

    def summary(self, wall_s: float) -> Summary:
        """The metrics summary (ARCHITECTURE.md schema plus simulator detail)."""
        return summarize(self, wall_s)

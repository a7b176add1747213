"""``swarmsim live run``: start a local swarm on loopback, drive the load, attach the
controllers, return the metrics summary, and stop every process it started."""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import math
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controllers.spec import resolve_live
from swarmsim.corpus import scenario_corpus
from swarmsim.errors import SwarmError
from swarmsim.faults import check_targets, parse_faults
from swarmsim.metrics import check_conservation, write_timeline
from swarmsim.query import AgentState
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario
from swarmsim.summary import (
    FailureCounts,
    Messages,
    Summary,
    count_overdue,
    query_figures,
    replica_counts,
    ttft_summary,
)

from .config import LiveConfig
from .coordinator import Coordinator
from .corpusfiles import CorpusFiles, write_corpus
from .errors import LiveError
from .faults import Injector
from .hierarchy import SupervisedLauncher, launcher_for
from .launcher import SINGLE_THREAD_ENV, FaultLauncher
from .load import RETRIES
from .operator import controller_hash
from .replacement import replace_gone
from .shutdown import WORKER_GRACE_S, client_report, wind_down
from .telemetry import Telemetry, billing
from .worker import WorkerSpec

LIVE_ROLES = ("embedder", "retriever", "synthesizer", "evaluator")
REPLACE_CHECK_S = 0.1  # how often a swarm that re-places workers asks its launcher who lives


@dataclass(frozen=True)
class LiveRun:
    """What ``swarmsim live run`` was asked to do."""

    scenario: str  # a built-in name or a scenario YAML file
    overrides: tuple[str, ...] = ()
    controllers: tuple[str, ...] = ()  # [TASK=]NAME[:k=v] or a policy artifact directory
    duration_s: float | None = None  # load duration (default: the scenario's)
    workers: int | None = None  # total workers (default: one per scenario agent)
    seed: int = 0
    corpus: Path | None = None  # a docs.jsonl + questions.jsonl directory: real-text RAG
    synth_backend: str = "emulated"  # or "openai"
    openai_url: str = ""
    openai_model: str = ""
    openai_timeout_s: float = 60.0  # one call's limit (and always its query's deadline)
    metrics_port: int | None = None  # Prometheus endpoint (0: any free port)
    record: Path | None = None  # per-query timeline JSONL
    config: LiveConfig = field(default_factory=LiveConfig)
    control_bind: str = "tcp://127.0.0.1:0"  # where operators reach the coordinator
    query_bind: str = "tcp://127.0.0.1:0"  # where clients send queries
    inject: tuple[str, ...] = ()  # fault specs (--inject), after the scenario's faults:
    worker_bind: str = "tcp://127.0.0.1:0"  # where workers report
    keys: Path | None = None  # a key directory (``live.keys``): CURVE and an authenticator
    insecure: bool = False  # without keys, allow binds other machines can reach
    http: str | None = None  # HOST:PORT of the OpenAI-compatible front door (live up --http)
    http_timeout_s: float = 30.0  # a front-door query's deadline in the swarm
    launcher: str = "local"  # or "ray": workers as Ray actors (``live.ray_launcher``)
    ray_address: str | None = None  # the Ray cluster to join (None: start a local instance)
    replace_dead: bool = False  # re-place a worker whose process is gone (``live.replacement``)


def check_live(scenario: Scenario) -> None:
    """The live runtime runs a pipeline of these roles (a retrieval stage is optional: a
    synthesizer-only scenario such as prefix-cache runs too; its workers still load the
    scenario's corpus files, which its queries' pool indices point into)."""
    roles = [scenario.layers[n].role for n in scenario.layers]
    bad = sorted(set(roles) - set(LIVE_ROLES))
    if bad:
        raise SwarmError(f"scenario {scenario.name}: the live runtime has no role {bad[0]!r}")


def plan_workers(scenario: Scenario, total: int | None) -> list[tuple[str, str, int, int]]:
    """(layer, device, node index, shard) per worker: the scenario's agents, or ``total``
    workers spread over the layers in proportion (at least one per layer, and one per shard
    for retrievers)."""
    agents: list[tuple[str, str, int]] = []
    for node, group in enumerate(scenario.nodes):
        for ag in group.agents:
            device = group.cpu if ag.device is None else group.devices[ag.device]
            agents += [(ag.layer, device, node)] * (ag.count * group.count)
    by_layer: dict[str, list[tuple[str, str, int]]] = {}
    for a in agents:
        by_layer.setdefault(a[0], []).append(a)
    n_shards = scenario.corpus.n_shards
    if total is not None:
        floor = {n: n_shards if scenario.layers[n].role == "retriever" else 1 for n in by_layer}
        if total < sum(floor.values()):
            raise SwarmError(f"--workers: {scenario.name} needs at least {sum(floor.values())}")
        share = {n: len(v) / len(agents) for n, v in by_layer.items()}
        want = {n: max(floor[n], int(total * share[n])) for n in by_layer}
        for n in sorted(by_layer, key=lambda n: -share[n]):
            if sum(want.values()) >= total:
                break
            want[n] += 1
        by_layer = {n: [v[i % len(v)] for i in range(want[n])] for n, v in by_layer.items()}
    plan = []
    for layer, members in by_layer.items():
        retriever = scenario.layers[layer].role == "retriever"
        plan += [
            (layer, dev, node, i % n_shards if retriever else -1)
            for i, (_, dev, node) in enumerate(members)
        ]
    return plan


def prepare_corpus(run: LiveRun, scenario: Scenario, directory: Path) -> CorpusFiles:
    """Write the corpus workers load: the scenario's synthetic one or a real-text one."""
    if run.corpus is None:
        write_corpus(scenario_corpus(scenario.corpus), directory)
    else:
        from .textcorpus import load_text_corpus

        text = load_text_corpus(
            run.corpus, scenario.corpus.n_shards, scenario.corpus.k, seed=scenario.corpus.seed
        )
        docs = [{"title": t, "text": x} for t, x in zip(text.titles, text.texts, strict=True)]
        write_corpus(text.corpus, directory, docs=docs, questions=list(text.questions))
    return CorpusFiles.load(directory)


class Swarm:
    """A coordinator and its worker processes on loopback, as a context manager that stops
    every process on every path."""

    def __init__(self, run: LiveRun, stop: Callable[[], bool] = lambda: False) -> None:
        self.run, self.stop = run, stop  # ``stop()`` true: a signal asked to stop (``Stop``)
        overrides = list(run.overrides)
        if run.duration_s is not None:  # as ``simulate --duration``: warm-up <= a tenth
            warmup = load_scenario(run.scenario, overrides).warmup_s
            overrides.append(f"warmup_s={min(warmup, run.duration_s / 10)}")
        self.scenario = load_scenario(run.scenario, overrides)
        check_live(self.scenario)
        self.plan = plan_workers(self.scenario, run.workers)
        counts, nodes = live_counts(self.scenario, self.plan), [g.name for g in self.scenario.nodes]
        injected = parse_faults(run.inject, "--inject")
        check_targets(self.scenario.fault_schedule, counts, nodes)
        check_targets(injected, counts, nodes, "--inject")
        schedule = (*self.scenario.fault_schedule, *injected)
        self.arms = [resolve_live(spec) for spec in run.controllers]  # before any process
        self.tmp = tempfile.TemporaryDirectory(prefix="swarmsim-live-")
        self.coord: Coordinator | None = None
        self.replaced: set[int] = set()  # workers re-placed (``live.replacement``)
        self.next_replace = 0.0
        try:
            self.launcher = make_launcher(run, self.scenario, self.plan)
        except BaseException:
            self.tmp.cleanup()
            raise
        self.injector = Injector(self, schedule, run.seed)
        self.files: CorpusFiles | None = None

    def __enter__(self) -> Swarm:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        run, scenario = self.run, self.scenario
        files = self.files = prepare_corpus(run, scenario, Path(self.tmp.name))
        self.coord = Coordinator(
            scenario,
            files,
            self.launcher,
            run.config,
            workers_bind=run.worker_bind,
            clients_bind=run.query_bind,
            telemetry=Telemetry(run.metrics_port),
            control_bind=run.control_bind,
            keys=run.keys,
            insecure=run.insecure,
        )
        self.coord.record = run.record is not None
        self.coord.injector = self.injector
        for i, (layer, device, node, shard) in enumerate(self.plan):
            cfg = scenario.layers[layer]
            spec = WorkerSpec(
                id=i,
                address=self.coord.worker_address,
                layer=layer,
                role=cfg.role,
                device=device,
                corpus_dir=self.tmp.name,
                shard=shard,
                model=cfg.model or "",
                synth_backend=run.synth_backend,
                openai_url=run.openai_url,
                openai_model=run.openai_model,
                openai_timeout_s=run.openai_timeout_s,
                real_embedding=run.corpus is not None,
                heartbeat_interval_s=scenario.failures.heartbeat_interval_s,
                heartbeat_liveness=scenario.failures.heartbeat_liveness,
                time_scale=run.config.time_scale,
                kv_blocks=self.coord.kv.capacity(layer, device),
                block_tokens=scenario.workload.block_tokens,
                retrieval=scenario.retrieval,
                keys="" if run.keys is None else str(run.keys.resolve()),
                node=scenario.nodes[node].name,
            )
            self.coord.roster.launch(spec, node)
        if isinstance(self.launcher, SupervisedLauncher):
            self.launcher.launch()  # one supervisor per node, each with its workers
        self.wait_ready()
        for arm in self.arms:
            controller = arm.build()
            sha256 = controller_hash(controller)
            self.coord.controls.attach(arm.task, controller, arm.label, sha256=sha256)

    def wait_ready(self) -> None:
        coord = self.coord
        end = time.monotonic() + self.run.config.startup_timeout_s
        while coord.roster.running() < len(coord.agents):
            if time.monotonic() > end:
                late = [a.id for a in coord.agents.values() if a.state != AgentState.RUNNING]
                raise LiveError(f"workers {late} did not report READY in time")
            dead = [i for i in coord.agents if not self.launcher.alive(i)]
            if dead:
                raise LiveError(f"worker {dead[0]} exited while starting (see its stderr)")
            if self.stop():
                raise KeyboardInterrupt  # a signal while starting: stop at once
            coord.step(0.05)
        # what start-up built (the corpus, the controllers, the imports) lives as long as the
        # swarm: out of the collector's generations, so a full collection skips it
        gc.collect()
        gc.freeze()

    def step(self, timeout_s: float = 0.05) -> None:
        """One pass of the coordinator's loop, then of the fault injector's."""
        self.coord.step(min(timeout_s, self.injector.due()))
        self.injector.tick()
        if self.run.replace_dead and time.monotonic() >= self.next_replace:
            self.next_replace = time.monotonic() + REPLACE_CHECK_S
            coord = self.coord
            replace_gone(coord.roster, coord.dead, coord.kv.capacity, self.replaced)

    def serve_until(self, done: Callable[[], bool], limit_s: float) -> None:
        """Run the loop until ``done()`` or ``limit_s`` seconds pass."""
        end = time.monotonic() + limit_s
        while not done() and time.monotonic() < end:
            self.step()

    def restart_coordinator(self) -> None:
        """Crash the coordinator and start a new one on the same addresses, with the run's
        metrics and the workers that still run (each starting until it re-registers)."""
        old = self.coord
        binds = (old.worker_address, old.client_address, old.control_address)
        old.crash()
        new = _rebind(lambda: Coordinator(
            self.scenario, self.files, self.launcher, self.run.config, workers_bind=binds[0],
            clients_bind=binds[1], telemetry=old.telemetry, control_bind=binds[2],
            metrics=old.metrics, keys=old.keys, insecure=old.insecure))  # fmt: skip
        new.t0, new.cpu0, new.record, new.injector = old.t0, old.cpu0, old.record, old.injector
        new.counts, new.protocol_errors = old.counts, old.protocol_errors
        new.events, new.pipeline.timeline = old.events, old.pipeline.timeline
        new.pipeline.ids = itertools.count(next(old.pipeline.ids))  # no job id is reused
        new.next_control = old.next_control
        for agent in old.agents.values():
            if agent.state != AgentState.STOPPED and self.launcher.alive(agent.id):
                new.roster.adopt(old.roster.specs[agent.id], agent.node)
        for name, slot in old.slots.items():
            if slot.acting is not None and not slot.acting.implicit:
                new.controls.attach(name, slot.acting.guard, slot.acting.label,
                                    sha256=slot.acting.sha256)  # fmt: skip
        self.coord = new

    def close(self) -> None:
        try:
            self.injector.close()
            if self.coord is not None:
                self.coord.close()
            else:
                self.launcher.close()
        finally:
            self.tmp.cleanup()


def make_launcher(
    run: LiveRun, scenario: Scenario, plan: list[tuple[str, str, int, int]]
) -> FaultLauncher:
    """The launcher ``run`` names: local subprocesses (flat, or under node supervisors,
    ``live.hierarchy``), or Ray actors on the cluster at
    ``run.ray_address`` (None: a local Ray instance sized for the plan, three times over so
    that scaling up fits too)."""
    if run.launcher == "local":
        return launcher_for(scenario, plan, run.config, WORKER_GRACE_S)
    if run.launcher != "ray":
        raise SwarmError(f"--launcher: expected local or ray, got {run.launcher!r}")
    if run.config.supervisors or scenario.failures.supervisors:
        raise SwarmError("--supervisors: node supervisors run under --launcher local, not ray")
    from .ray_launcher import RayLauncher, RayResources

    if run.ray_address is not None:
        return RayLauncher(run.ray_address)
    placed = [(device, scenario.nodes[node].name) for _, device, node, _ in plan]
    return RayLauncher(None, **RayResources().local(placed, spare=3))


def live_counts(scenario: Scenario, plan: list[tuple[str, str, int, int]]) -> dict[str, int]:
    """Agents per layer and per role that a live swarm of ``plan`` starts with."""
    counts: dict[str, int] = {}
    for layer, *_ in plan:
        for name in {layer, scenario.layers[layer].role}:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _rebind(make: Callable[[], Coordinator], tries: int = 50) -> Coordinator:
    """``make()`` again while the old coordinator's ports are still being released."""
    for _ in range(tries - 1):
        try:
            return make()
        except LiveError:
            time.sleep(0.02)
    return make()


def run_live(
    run: LiveRun,
    progress: Callable[[float], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """Start the swarm, drive the scenario's load for the duration, return the summary. A
    ``stop()`` request (a signal, ``Stop``) ends it early: the queries in flight are answered
    or failed (``wind_down``) and the summary covers what ran."""
    wall = time.perf_counter()
    with Swarm(run, stop) as swarm:
        scenario, coord = swarm.scenario, swarm.coord
        duration = run.duration_s or scenario.duration_s
        retry = coord.deadline_s + coord.dead_after_s  # unanswered by then: the query was lost
        drain = coord.deadline_s + 2 * coord.dead_after_s
        if swarm.injector.restarts():  # lost queries are resent, and need their answers
            drain = retry * (RETRIES + 1)
        coord.restart_clock()
        load = _start_load(run, coord.client_address, duration, drain, len(coord.files.queries),
                           retry)  # fmt: skip
        try:
            started = time.monotonic()

            def done() -> bool:
                if progress is not None:
                    progress(min((time.monotonic() - started) / duration, 1.0))
                return stop() or (load.poll() is not None and not swarm.coord.active)

            swarm.serve_until(done, duration + drain + 10)
            client = wind_down(swarm, load) if stop() else client_report(load)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        summary = live_summary(swarm, time.perf_counter() - wall, client)
        if run.record is not None:
            write_timeline(swarm.coord.recording(), run.record)
    return summary


def serve(
    run: LiveRun,
    announce: Callable[[dict[str, Any]], None],
    load: bool = True,
    stop: Callable[[], bool] = lambda: False,
) -> dict[str, Any]:
    """``swarmsim live up``: start the swarm (and its load generator, unless ``load`` is
    false: clients then send to the query address), ``announce`` its addresses, serve until
    interrupted or ``stop()``, then wind down (``live.shutdown``: queries in flight get a
    moment, the rest are failed with reason shutdown) and stop every process.
    The recording, if asked for, is streamed to its file once a second. The summary."""
    wall = time.perf_counter()
    with Swarm(run, stop) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        gen = None
        if load:
            duration = run.duration_s or math.inf
            gen = _start_load(run, coord.client_address, duration, 0.0, len(coord.files.queries),
                              coord.deadline_s + coord.dead_after_s)  # fmt: skip
        out = None if run.record is None else run.record.open("w", encoding="utf-8")
        door = None
        try:
            if run.http is not None:
                door = start_front_door(run, coord.client_address, coord.control_address)
            announce(
                {
                    "scenario": swarm.scenario.name,
                    "workers": len(coord.agents),
                    "control": coord.control_address,
                    "queries": coord.client_address,
                    "metrics_port": coord.telemetry.port,
                    "load": load,
                    "record": None if run.record is None else str(run.record),
                    "keys": None if run.keys is None else str(run.keys),
                    "http": None if door is None else door.url,
                }
            )
            flush = 0.0
            with contextlib.suppress(KeyboardInterrupt):  # how a long-running swarm stops
                while not stop():
                    swarm.step()
                    if out is not None and time.monotonic() >= flush:
                        flush = time.monotonic() + 1.0
                        _append(out, swarm.coord.take_recording())
        finally:
            if door is not None:
                door.stop()  # no new requests; those in flight get the answers owed
            client = wind_down(swarm, gen)
            if door is not None:
                door.wait()
            coord = swarm.coord
            if out is not None:
                _append(out, coord.take_recording())
                out.close()
        return live_summary(swarm, time.perf_counter() - wall, client)


class FrontDoorProcess:
    """The ``live.frontdoor`` process of a running swarm: started, its URL read, stopped."""

    def __init__(self, cmd: list[str], timeout_s: float) -> None:
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **SINGLE_THREAD_ENV}
        )
        self.url = self._read_url(timeout_s)

    def _read_url(self, timeout_s: float) -> str:
        """The URL its first line gives; LiveError if it exits or says nothing in time."""
        import selectors

        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if sel.select(timeout_s):
                line = self.proc.stdout.readline()
                with contextlib.suppress(ValueError):
                    return str(json.loads(line)["http"])
        self.stop()
        self.wait()
        raise LiveError(f"the HTTP front door did not start (exit code {self.proc.poll()}; "
                        "is its address free?)")  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, grace_s: float = 1.5) -> None:
        try:
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_front_door(run: LiveRun, queries: str, control: str) -> FrontDoorProcess:
    """Start the OpenAI-compatible front door on ``run.http`` for the swarm at ``queries``."""
    cmd = [sys.executable, "-m", "live.frontdoor", "--queries", queries, "--control", control,
           "--bind", str(run.http), "--scenario", run.scenario,
           "--timeout", str(run.http_timeout_s)]  # fmt: skip
    for item in run.overrides:
        cmd += ["--set", item]
    if run.keys is not None:
        cmd += ["--keys", str(run.keys)]
    return FrontDoorProcess(cmd, run.config.startup_timeout_s)


@contextlib.contextmanager
def serving(run: LiveRun, load: bool = False) -> Iterator[dict[str, Any]]:
    """``serve`` ``run`` from a thread of this process until the block ends (tests,
    benchmarks, notebooks); yields its announced addresses (control, queries, http).
    LiveError if it does not start or does not shut down within a minute."""
    announced: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()

    def target() -> None:
        try:
            serve(run, announced.put, load=load, stop=stop.is_set)
        except BaseException as err:  # surfaced to the caller below
            announced.put(err)

    thread = threading.Thread(target=target, daemon=True, name="swarm")
    thread.start()
    try:
        got = announced.get(timeout=run.config.startup_timeout_s + 120)
    except queue.Empty:
        stop.set()
        raise LiveError("the swarm did not start") from None
    if isinstance(got, BaseException):
        raise got
    try:
        yield got
    finally:
        stop.set()
        thread.join(timeout=60)
        if thread.is_alive():
            raise LiveError("the swarm did not shut down within 60 s")


def _append(out, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        out.write(json.dumps(row) + "\n")
    out.flush()


def _start_load(
    run: LiveRun, address: str, duration: float, drain: float, pool: int, retry: float
) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "live.load",
        "--address",
        address,
        "--scenario",
        run.scenario,
        "--seed",
        str(run.seed),
        "--duration",
        str(duration),
        "--drain",
        str(drain),
        "--pool",
        str(pool),
        "--retry",
        str(retry),
    ]
    for item in run.overrides:
        cmd += ["--set", item]
    if run.keys is not None:
        cmd += ["--keys", str(run.keys)]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **SINGLE_THREAD_ENV}
    )


def live_summary(swarm: Swarm, wall_s: float, client: dict[str, Any]) -> Summary:
    """The simulator's ``Summary`` (the same keys), from the live run."""
    coord, scenario = swarm.coord, swarm.scenario
    m, now = coord.metrics, coord.now()
    gpu_hours, cost = billing(coord, now)
    summary = Summary(
        scenario=scenario.name,
        seed=swarm.run.seed,
        mode="live",
        duration_s=now,
        wall_s=wall_s,
        **query_figures(m, count_overdue(coord.active, now, m.slo_s, since=m.warmup_s), now),
        gpu_hours=gpu_hours,
        cost_usd=cost,
        throughput_qps=m.completed / now if now > 0 else 0.0,
        utilisation=_utilisation(coord, now),
        replicas={
            name: replica_counts(a.state for a in coord.agents.values() if a.layer == name)
            for name in scenario.layers
        },
        messages=Messages(
            sent=coord.counts["sent"],
            received=coord.counts["received"],
            dropped=dict(sorted(coord.protocol_errors.items())),
        ),
        failures=FailureCounts(
            nodes=0,  # a live swarm on one machine has no node failures of its own
            agents=coord.counts["deaths"],
            partitions=swarm.injector.applied_count("partition"),
            retries=m.retries,
            role_changes=m.role_changes,
            unmet_scale_requests=None,
        ),
        controllers=_controller_stats(coord),
        ttft_s=ttft_summary(m.ttfts),
        kv_cache=coord.kv.summary(),
        sessions="timestamp" if scenario.workload.session_mode else None,  # live: by timestamp
        events=None,
        coordinator_cpu_s=time.process_time() - coord.cpu0,  # since the load started
        client=client,
    )
    if swarm.injector.used():
        summary["faults"] = swarm.injector.summary()
    check_conservation(summary)
    return summary


def _utilisation(coord: Coordinator, now: float) -> dict[str, float | None]:
    """Busy fraction of each layer's worker-time, from the workers' own busy clocks."""
    out: dict[str, float | None] = {}
    for name in coord.scenario.layers:
        agents = [a for a in coord.agents.values() if a.layer == name]
        alive = sum((now if a.gone < 0 else a.gone) - max(a.born, 0.0) for a in agents)
        out[name] = sum(a.busy_s for a in agents) / alive if alive > 0 else None
    return out


def _controller_stats(coord: Coordinator) -> dict[str, Any]:
    """Per Task: the controller acting at the end (None once detached), its decisions and
    fallbacks, decision timings, and the attach/detach events of the run."""
    out = {}
    for task, slot in coord.slots.items():
        st = slot.status()
        acting = st["acting"] or {}
        out[task] = {
            "name": acting.get("name"),
            "decisions": slot.decisions,
            "invalid": slot.invalid,
            "fallbacks": acting.get("fallbacks", {}),
            **{k: st[k] for k in st if k.endswith(("_p50", "_p99"))},
            "changes": [
                f"{e['change']} {e['controller']}" for e in coord.changes if e["task"] == task
            ],
        }
    return out

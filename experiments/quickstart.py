"""``swarmsim quickstart``: the whole loop in about five minutes on two cores.

On ``prefix-cache`` (four synthesizer replicas with prefix caches, the scenario with the
largest spread between routing heuristics) it loads the committed llm-routing policy (or,
with ``train``, trains a short run of its config), evaluates it in the simulator against the
routing heuristics at their tuned settings on held-out seeds (``swarmsim versus``'s runs and
statistics), attaches the very same artifact and the best heuristic to a live local swarm
(real processes over ZeroMQ, emulated synthesizers keeping prefix caches) for at least
``live_queries`` measured queries each, and writes ``report.md`` and ``report.json``.

The live swarm runs in compressed time: the emulated stage times are the profile's times x
``time_scale`` and the arrival rate, SLO and warm-up are scaled with them, so the workload is
the scenario's at 1 / ``time_scale`` speed; live latencies and GPU-hours are reported divided
by ``time_scale`` (scenario seconds), beside the simulator's.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controllers.learned import LearnedController
from live.runner import LiveRun, run_live
from swarmsim.errors import SwarmError, check
from swarmsim.scenario import Scenario

from .compressed import compressed_run, measured_latencies
from .learned import COMPARISONS, LEARNED
from .learned_run import heuristic_arms, policy_dir, run_job
from .learned_stats import scenario_result
from .progress import Stages
from .quickstart_defaults import (
    ARTIFACT,
    DEMO_EPOCHS,
    DEMO_STEPS,
    HEURISTICS,
    LIVE_QUERIES,
    SCENARIO,
    TASK,
    TIME_SCALE,
    TRAIN_CONFIG,
    TRAIN_STEPS,
)
from .seeds import EVAL_SEEDS
from .spread_run import Job, run_jobs


@dataclass(frozen=True)
class QuickstartConfig:
    """What ``swarmsim quickstart`` runs (its options)."""

    policy: Path | None = None  # an artifact or run directory; None: the committed one
    train: bool = False  # train a short run instead of loading an artifact
    train_steps: int = TRAIN_STEPS
    seeds: int = len(EVAL_SEEDS)  # held-out seeds in the simulator, from EVAL_SEEDS' first
    live_queries: int = LIVE_QUERIES
    time_scale: float = TIME_SCALE
    workers: int = 2  # simulator processes
    overrides: tuple[str, ...] = ()  # scenario overrides on both sides (tests: small runs)

    def __post_init__(self) -> None:
        check(1 <= self.seeds <= len(EVAL_SEEDS), "seeds", self.seeds,
              f"1 to {len(EVAL_SEEDS)} held-out seeds")  # fmt: skip
        check(self.live_queries >= 1, "live_queries", self.live_queries, ">= 1")
        check(0 < self.time_scale <= 1, "time_scale", self.time_scale, "in (0, 1]")
        check(self.train_steps >= 1, "train_steps", self.train_steps, ">= 1")
        check(not (self.train and self.policy), "policy", self.policy, "not with train")


def quickstart(cfg: QuickstartConfig, out: Path, bar: bool = False) -> dict[str, Any]:
    """Policy, simulator, two live arms, report; the report's data (``report.json``)."""
    from .quickstart_report import write_report

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(5, bar)
    policy = obtain_policy(cfg, out, stages)
    sim = simulate(cfg, policy["path"], stages)
    best = sim["result"]["best"]
    specs = {arm["label"]: arm["spec"] for arm in sim["arms"]}
    live = {label: live_arm(cfg, label, specs[label], out, stages) for label in (LEARNED, best)}
    with stages.stage("report") as stage:
        report = write_report(out, cfg, policy, sim, live, time.perf_counter() - start)
        stage.result = f"{out / 'report.md'}, {out / 'report.json'}"
    return report


def obtain_policy(cfg: QuickstartConfig, out: Path, stages: Stages) -> dict[str, Any]:
    """The policy under test: trained now (a short run) or the committed artifact, checked."""
    if cfg.train:
        title = f"training a short run ({cfg.train_steps} PPO steps; weaker than the committed)"
        with stages.stage(title, bar=False) as stage:
            from .train import train

            train(short_config(cfg.train_steps), out / "train", stages.bar, indent="  ")
            path, source = out / "train" / "policy", "trained now (short run)"
            stage.result = str(path)
    else:
        ref = cfg.policy or ARTIFACT
        with stages.stage(f"loading the trained policy {ref}") as stage:
            found = policy_dir(ref)
            if found is None:
                raise SwarmError(f"no policy artifact in {ref}: run from the checkout, give "
                                 f"--policy DIR, or train one with --train")  # fmt: skip
            path, source = found, "committed" if cfg.policy is None else "given"
            stage.result = str(path)
    controller = LearnedController(path)
    if controller.task != TASK:
        raise SwarmError(f"{path}: a {controller.task} policy; the quickstart needs {TASK}")
    return {"path": path, "source": source, "sha256": controller.artifact_hash,
            "train_steps": cfg.train_steps if cfg.train else None}  # fmt: skip


def short_config(steps: int, path: Path = TRAIN_CONFIG) -> Any:
    """The committed policy's training config (``path``), cut to ``steps`` PPO steps after a short
    imitation, evaluated on two seeds without baselines (the quickstart compares it)."""
    from .train import EvalConfig, load_config

    cfg = load_config(path)
    imitate = cfg.imitate
    if imitate.controller:
        imitate = dataclasses.replace(imitate, steps=min(imitate.steps, DEMO_STEPS),
                                      epochs=min(imitate.epochs, DEMO_EPOCHS))  # fmt: skip
    return dataclasses.replace(
        cfg, name=f"{cfg.name}-quickstart", total_timesteps=steps, imitate=imitate,
        checkpoint_every=steps, eval=EvalConfig(seeds=2, baselines=(), every_steps=0),
    )  # fmt: skip


def simulate(cfg: QuickstartConfig, policy: Path, stages: Stages) -> dict[str, Any]:
    """The policy and each heuristic (tuned where ``swarmsim tune`` has settings) on the same
    held-out seeds; ``learned_stats.scenario_result`` of the runs, and the runs themselves."""
    comparison = dataclasses.replace(COMPARISONS[TASK], heuristics=HEURISTICS)
    arms = [{"label": LEARNED, "spec": str(policy), "note": str(policy)},
            *heuristic_arms(comparison)]  # fmt: skip
    seeds = list(EVAL_SEEDS)[: cfg.seeds]
    todo = [Job(SCENARIO, cfg.overrides, a["label"], a["spec"], s) for a in arms for s in seeds]
    title = f"simulator: {len(arms)} controllers x {len(seeds)} held-out seeds on {SCENARIO}"
    with stages.stage(title) as stage:

        def line(n: int, total: int, job: Job, done: dict[int, dict[str, Any]]) -> str:
            stage.update(n / total)
            p99 = sum(r["objective"] for r in done.values()) / len(done)
            return f"  {job.label}: mean p99 {p99:.3g} s over {len(done)} seeds"

        rows = run_jobs(todo, len(seeds), run_job, line, stage.say, cfg.workers)
        runs = {a["label"]: rows[(SCENARIO, a["label"])] for a in arms}
        result = scenario_result(TASK, runs)
        gain = result["learned_vs_best"]["gain_pct"]["pct"]
        stage.result = f"best heuristic {result['best']}; learned " + (
            "n/a" if gain is None else f"{gain:+.1f}% on p99"
        )
    return {"arms": arms, "seeds": seeds, "runs": runs, "result": result}


def live_run(cfg: QuickstartConfig, spec: str, record: Path) -> tuple[LiveRun, Scenario]:
    """The live run of ``spec`` in compressed time (module docstring), and the scenario as
    the simulator runs it (the reference for the scaling)."""
    task_spec = spec if spec.startswith(f"{TASK}=") else f"{TASK}={spec}"
    return compressed_run(SCENARIO, cfg.overrides, task_spec, cfg.time_scale,
                          cfg.live_queries, record)  # fmt: skip


def live_arm(
    cfg: QuickstartConfig, label: str, spec: str, out: Path, stages: Stages
) -> dict[str, Any]:
    """One live run of ``spec``: its summary, its measured latencies in scenario seconds
    (failed or dropped queries at the deadline, as the simulator's objective counts them)."""
    record = out / f"live-{label}.jsonl"
    run, base = live_run(cfg, spec, record)
    title = (f"live swarm, {label}: {run.duration_s:.0f} s of load at time scale "
             f"{cfg.time_scale:g} (>= {cfg.live_queries} queries)")  # fmt: skip
    with stages.stage(title) as stage:
        summary = run_live(run, stage.update)
        latencies = measured_latencies(record, run, cfg.time_scale)
        stage.result = f"{len(latencies)} queries measured" + (
            "" if len(latencies) >= cfg.live_queries else f", fewer than {cfg.live_queries}"
        )
    return {"spec": spec, "summary": summary, "latencies": latencies,
            "duration_s": run.duration_s, "scenario_duration_s": run.duration_s / cfg.time_scale,
            "rate_qps": base.workload.rate / cfg.time_scale}  # fmt: skip

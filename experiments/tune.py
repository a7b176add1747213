"""``swarmsim tune``: a heuristic's parameters searched with Optuna before it is compared.

A study is one (scenario, Task, controller): a seeded TPE sampler proposes parameters from
the controller's declared ``Tunable`` ranges (or the ``--param`` ones), each trial runs the
scenario on the tuning seeds (``experiments.seeds``) and scores the Task's objective
(``experiments.objectives``). The first trial is the controller's defaults, so the result is
never worse than them on the tuning seeds. Studies live in ``results/tuning/<scenario>.db``
(SQLite): rerunning adds trials up to the requested number. The best settings are written
to ``results/tuned/<scenario>.json``, where ``NAME@tuned`` finds them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from controllers.registry import controller_spec, load_factory, make_controller
from controllers.spec import Arm
from controllers.tunable import Tunable, factory_defaults
from controllers.tuned import tuned_path
from swarmsim.errors import SwarmError
from swarmsim.scenario import Scenario
from swarmsim.simulation import Simulation

from .evaluate import attach_arms
from .objectives import OBJECTIVES, Objective, mean_over, measure
from .seeds import tuning_seeds

TUNING_DIR = Path("results") / "tuning"
SAMPLER_SEED = 0


@dataclass(frozen=True)
class Study:
    """What one tuning study searches and how it scores a trial: fixed at its creation."""

    scenario: Scenario
    task: str
    controller: str
    space: tuple[Tunable, ...]
    seeds: tuple[int, ...]
    level: float | None  # the objective's guard level (None: the objective has no guard)

    @property
    def name(self) -> str:
        return f"{self.scenario.name}/{self.task}/{self.controller}"

    @property
    def objective(self) -> Objective:
        return OBJECTIVES[self.task]

    def setup(self) -> dict[str, Any]:
        """What a resumed study must share with the stored one (JSON-able): the scenario
        (with its overrides) by hash."""
        scenario = json.dumps(asdict(self.scenario), default=str, sort_keys=True)
        return {
            "space": [asdict(t) for t in self.space],
            "seeds": list(self.seeds),
            "level": self.level,
            "scenario_sha256": hashlib.sha256(scenario.encode()).hexdigest(),
        }


def search_space(task: str, name: str, ranges: Sequence[str]) -> tuple[Tunable, ...]:
    """The declared tunables of ``task``'s ``name``, or just those ``ranges`` name
    (``KEY=LO:HI[:log|:int]``; a declared KEY keeps its scale unless one is given)."""
    declared = {t.name: t for t in controller_spec(task, name).params}
    if not ranges:
        if not declared:
            raise SwarmError(f"{task}={name}: no tunable parameters declared; give --param")
        return tuple(declared.values())
    return tuple(_parse_range(text, declared) for text in ranges)


def _parse_range(text: str, declared: dict[str, Tunable]) -> Tunable:
    key, _, rest = text.partition("=")
    low, _, rest = rest.partition(":")
    high, _, scale = rest.partition(":")
    try:
        lo, hi = float(low), float(high)
    except ValueError:
        lo = hi = math.nan
    if not key or math.isnan(lo) or scale not in ("", "log", "int"):
        raise SwarmError(f"--param: expected KEY=LO:HI[:log|:int], got {text!r}")
    known = declared.get(key)
    log = scale == "log" or (not scale and known is not None and known.log)
    integer = scale == "int" or (not scale and known is not None and known.integer)
    try:
        return Tunable(key, lo, hi, log, integer)
    except ValueError as err:
        raise SwarmError(f"--param {text}: {err}") from None


def default_params(study: Study) -> dict[str, Any]:
    """The controller's defaults of the searched parameters (its untuned behaviour)."""
    factory = load_factory(controller_spec(study.task, study.controller).entry_point)
    try:
        return factory_defaults(factory, study.space)
    except ValueError as err:
        raise SwarmError(f"--param: {study.task}={study.controller}: {err}") from None


def run_seed(study: Study, params: dict[str, Any], seed: int) -> dict[str, float]:
    """One simulation of ``study``'s controller with ``params`` on ``seed``; its objective."""
    sim = Simulation(study.scenario, seed=seed)
    build = partial(make_controller, study.task, study.controller, **params)
    attach_arms(sim, [Arm(study.controller, study.task, build)])
    summary = sim.run()
    return measure(study.objective, study.scenario, sim, dict(summary))


def score(study: Study, params: dict[str, Any], pool: Executor | None) -> dict[str, Any]:
    """Mean objective (and guard) over the study's seeds, with the per-seed rows."""
    run = partial(run_seed, study, params)
    rows = list(pool.map(run, study.seeds) if pool else map(run, study.seeds))
    out: dict[str, Any] = {"value": mean_over(rows, "objective"), "per_seed": rows}
    if study.objective.guard is not None and study.level is not None:
        out["guard"] = mean_over(rows, "guard")
        out["excess"] = study.objective.guard.excess(out["guard"], study.level)
    return out


def suggest(trial: Any, t: Tunable) -> float | int:
    """Optuna's suggestion for ``t`` in ``trial``."""
    if t.integer:
        return int(trial.suggest_int(t.name, int(t.low), int(t.high), log=t.log))
    return float(trial.suggest_float(t.name, t.low, t.high, log=t.log))


def open_study(study: Study, storage_dir: Path = TUNING_DIR) -> Any:
    """The Optuna study of ``study`` (created, or loaded to resume); the sampler is seeded
    with the number of trials already run, so a resumed study explores new points."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_dir.mkdir(parents=True, exist_ok=True)
    storage = f"sqlite:///{storage_dir / study.scenario.name}.db"
    stored = optuna.create_study(study_name=study.name, storage=storage, load_if_exists=True)
    setup = json.loads(json.dumps(study.setup()))
    if "setup" not in stored.user_attrs:
        stored.set_user_attr("setup", setup)
    elif stored.user_attrs["setup"] != setup:
        raise SwarmError(
            f"{storage}: study {study.name} was run with other parameters, "
            "seeds, level or scenario; repeat them, or delete it: optuna "
            f"delete-study --storage {storage} --study-name {study.name}"
        )
    states = {t.state for t in stored.trials if t.user_attrs.get("defaults")}
    if not states & {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING}:
        stored.enqueue_trial(
            _in_range(default_params(study), study.space), user_attrs={"defaults": True}
        )
    sampler = optuna.samplers.TPESampler(seed=SAMPLER_SEED + len(stored.trials))
    return optuna.load_study(study_name=study.name, storage=storage, sampler=sampler)


def _in_range(params: dict[str, Any], space: Sequence[Tunable]) -> dict[str, Any]:
    """The defaults that lie inside the searched ranges (others are sampled)."""
    return {t.name: params[t.name] for t in space if t.low <= params[t.name] <= t.high}


def complete(stored: Any) -> list[Any]:
    import optuna

    return [t for t in stored.trials if t.state == optuna.trial.TrialState.COMPLETE]


def best(trials: Sequence[Any]) -> Any:
    """The trial of least objective among those within the guard, else the least outside."""
    within = [t for t in trials if t.constraints.get("excess", 0.0) <= 0]
    if within:
        return min(within, key=lambda t: t.value)
    return min(trials, key=lambda t: (t.constraints["excess"], t.value))


def tune(
    study: Study,
    trials: int,
    jobs: int = 1,
    report: Callable[[str], None] = print,
    update: Callable[[float], None] | None = None,
    storage_dir: Path = TUNING_DIR,
) -> dict[str, Any]:
    """Run ``study`` until it has ``trials`` complete trials, ``report`` a line per trial
    (``update`` the fraction of the trials to run done); the best settings' entry. Studies
    are kept in ``storage_dir`` (a sweep's tune cells keep theirs in the cell's directory)."""
    stored = open_study(study, storage_dir)
    done = len(complete(stored))
    todo = max(trials - done, 0)
    report(
        f"{study.name}: {done} trials stored, {todo} to run "
        f"on seeds {study.seeds[0]}..{study.seeds[-1]}"
    )
    pool = ProcessPoolExecutor(jobs) if jobs > 1 else None
    try:
        for n in range(1, todo + 1):
            _one_trial(study, stored, pool, trials, report)
            if update is not None:
                update(n / todo)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return entry(study, complete(stored))


def _one_trial(
    study: Study, stored: Any, pool: Executor | None, total: int, report: Callable[[str], None]
) -> None:
    start = time.perf_counter()
    trial = stored.ask()
    params = {t.name: suggest(trial, t) for t in study.space}
    scored = score(study, params, pool)
    for key in ("guard", "per_seed"):
        if key in scored:
            trial.set_user_attr(key, scored[key])
    if "excess" in scored:  # TPE models the infeasible trials apart
        trial.set_constraint("excess", scored["excess"])
    stored.tell(trial, scored["value"])
    top = best(complete(stored))
    guard = f"  {study.objective.guard.metric}={scored['guard']:.4g}" if "guard" in scored else ""
    shown = " ".join(f"{k}={v:.4g}" for k, v in params.items())
    report(
        f"trial {trial.number + 1}/{total}  {shown}  {study.objective.metric}="
        f"{scored['value']:.4g}{guard}  best={top.value:.4g} (trial {top.number + 1})  "
        f"{time.perf_counter() - start:.1f} s"
    )


def entry(study: Study, trials: Sequence[Any]) -> dict[str, Any]:
    """What ``results/tuned/<scenario>.json`` keeps of a study: the best settings and how
    they were found (the first trial is the defaults)."""
    top = best(trials)
    first = next(t for t in trials if t.user_attrs.get("defaults"))
    objective = study.objective
    out: dict[str, Any] = {
        "params": top.params,
        "objective": objective.metric,
        "value": top.value,
        "default_value": first.value,
        "trials": len(trials),
        "best_trial": top.number,
        "seeds": list(study.seeds),
        "space": [str(t) for t in study.space],
    }
    if objective.guard is not None:
        out["guard"] = {
            "metric": objective.guard.metric,
            "level": study.level,
            "upper": objective.guard.upper,
            "value": top.user_attrs["guard"],
            "met": top.constraints["excess"] <= 0,
        }
    return out


def write_tuned(scenario: str, task: str, controller: str, result: dict[str, Any]) -> Path:
    """Merge one controller's entry into the scenario's tuned file; its path."""
    path = tuned_path(scenario)
    data = json.loads(path.read_text()) if path.is_file() else {"scenario": scenario}
    data.setdefault("tuned", {}).setdefault(task, {})[controller] = result
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def study_for(
    scenario: Scenario,
    task: str,
    controller: str,
    ranges: Sequence[str],
    seeds: int,
    levels: dict[str, float | None],
) -> Study:
    """A validated study: a Task with an objective, a controller buildable at both ends of
    every range, and the guard's level (``levels`` by option; unset: the stated default)."""
    if task not in OBJECTIVES:
        raise SwarmError(f"--controller: Task {task} has no tuning objective")
    if seeds < 1:
        raise SwarmError(f"--seeds: expected at least 1, got {seeds}")
    guard = OBJECTIVES[task].guard
    for option, level in levels.items():
        if level is not None and (guard is None or guard.option != option):
            raise SwarmError(f"{option}: {task} has no such constraint")
    space = search_space(task, controller, ranges)
    for t in space:
        for value in (t.low, t.high):
            try:
                make_controller(task, controller, **{t.name: suggest_value(t, value)})
            except (TypeError, ValueError) as err:
                raise SwarmError(f"--param {t}: {task}={controller}: {err}") from None
    given = None if guard is None else levels.get(guard.option)
    level = guard.level if guard is not None and given is None else given
    return Study(scenario, task, controller, space, tuple(tuning_seeds(seeds)), level)


def suggest_value(t: Tunable, value: float) -> float | int:
    """``value`` as the type a trial suggests for ``t``."""
    return int(value) if t.integer else float(value)

"""The runs a sweep's cells are: ``simulate``, ``eval``, ``tune`` and ``train``, each a function
of plain arguments (the cell's) returning the flat metrics its row keeps.

Arguments by run (``set.FIELD`` overrides a scenario field or parameter, as ``--set``):

- simulate: ``scenario``, ``seed``, ``duration``, ``controller`` (one spec or a list),
  ``param.NAME`` (a parameter of the one controller: ``:NAME=VALUE``), ``set.FIELD``
- eval: ``scenario``, ``controllers`` (a list or ``a,b``), ``seeds`` (count), ``seed`` (the
  first), ``duration``, ``set.FIELD``; metrics ``controllers.LABEL.METRIC.mean`` and
  ``paired.LABEL.METRIC.mean``
- tune: ``scenario``, ``controller`` (``TASK=NAME``), ``trials``, ``seeds`` (tuning seeds),
  ``params`` (``KEY=LO:HI`` list), ``duration``, ``max_violation``, ``min_recall``,
  ``set.FIELD``; its Optuna study is kept in the cell's directory (an interrupted one resumes)
- train: ``config`` (a training YAML), ``seed`` and any dotted field of it
  (``learning_rate``, ``eval.seeds``); the run's directory is the cell's

Timings (``wall_s``, ``train_s``) are left out: a row holds what the seed determines, so two
backends give the same rows.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmsim.errors import ConfigError

Metrics = dict[str, float]
UNTIMED = ("wall_s", "train_s", "wall_s_per_run")  # last name segments left out of a row


@dataclass(frozen=True)
class Kind:
    """The arguments a run takes: ``names`` as they are, any under ``prefixes``; ``open``:
    any other (dotted config fields, checked when the config is built)."""

    names: tuple[str, ...]
    required: tuple[str, ...]
    prefixes: tuple[str, ...] = ("set.",)
    open: bool = False

    def takes(self, key: str) -> bool:
        return self.open or key in self.names or key.startswith(self.prefixes)


TUNE_ARGS = ("scenario", "controller", "trials", "seeds", "params", "duration",
             "max_violation", "min_recall")  # fmt: skip
KINDS = {
    "simulate": Kind(
        ("scenario", "seed", "duration", "controller"), ("scenario",), ("set.", "param.")
    ),
    "eval": Kind(
        ("scenario", "controllers", "seeds", "seed", "duration"), ("scenario", "controllers")
    ),
    "tune": Kind(TUNE_ARGS, ("scenario", "controller")),
    "train": Kind(("config", "seed"), ("config",), (), open=True),
}


def check_arg_names(
    run: str, keys: Iterable[str], where: str, seeded: bool, required: bool = False
) -> None:
    """Raise a ConfigError naming ``where.KEY`` for an argument ``run`` does not take (or,
    with ``required``, for a required one that is absent from ``keys``)."""
    kind, keys = KINDS[run], set(keys)
    if seeded and "seed" not in kind.names:
        raise ConfigError("seeds", "(given)", f"no seeds: {run} runs take no seed argument")
    if required:
        for name in kind.required:
            if name not in keys:
                raise ConfigError(f"fixed.{name}", None, f"a value (a {run} run needs it)")
        return
    for key in sorted(keys):
        if not kind.takes(key):
            known = ", ".join(kind.names) + "".join(f", {p}NAME" for p in kind.prefixes)
            raise ConfigError(f"{where}.{key}", key, f"an argument of {run} runs ({known})")


def run_cell(
    run: str, args: dict[str, Any], base: str, out: str, keep: Sequence[str] = ()
) -> Metrics:
    """One cell: ``run`` with ``args`` (files relative to ``base``; its outputs and log in
    ``out``); the metrics matching ``keep`` (all if empty), timings left out."""
    if run == "simulate":
        metrics = _simulate(args, Path(base))
    else:
        Path(out).mkdir(parents=True, exist_ok=True)
        with open(Path(out) / "log.txt", "a") as log, contextlib.redirect_stdout(log), \
                contextlib.redirect_stderr(log):  # fmt: skip
            metrics = RUNNERS[run](args, Path(base), Path(out))
    return {k: v for k, v in sorted(metrics.items()) if _kept(k, keep)}


def _kept(key: str, keep: Sequence[str]) -> bool:
    if key.rpartition(".")[2] in UNTIMED:
        return False
    return not keep or any(fnmatch.fnmatchcase(key, p) for p in keep)


def check_cell(run: str, args: dict[str, Any], base: Path) -> None:
    """Fail now, not in a worker, on what can be checked without running: the scenario and
    its overrides, the controller specs, the training config."""
    from controllers.spec import resolve

    if run == "train":
        train_config(args, base)
        return
    scenario = scenario_of(args, base)
    specs = {"simulate": _simulate_specs, "eval": _eval_specs, "tune": _tune_specs}[run](args)
    for spec in specs:
        resolve(spec, scenario.name)


def scenario_of(args: dict[str, Any], base: Path) -> Any:
    """The cell's scenario: ``scenario`` (a built-in name or a file under ``base``) with its
    ``set.FIELD`` overrides and ``duration``."""
    from swarmsim.scenario_files import load_scenario

    from .cli.options import duration_overrides

    ref = str(args["scenario"])
    if (base / ref).is_file():
        ref = str(base / ref)
    overrides = [f"{k[4:]}={_text(v)}" for k, v in sorted(args.items()) if k.startswith("set.")]
    if args.get("duration") is not None:
        overrides += duration_overrides(ref, float(args["duration"]))
    return load_scenario(ref, overrides)


def _text(value: Any) -> str:
    """A value as ``--set`` reads it back (YAML): strings as they are, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    return [str(v) for v in value]


def _simulate_specs(args: dict[str, Any]) -> list[str]:
    specs = _listed(args.get("controller"))
    params = [f"{k[6:]}={_text(v)}" for k, v in sorted(args.items()) if k.startswith("param.")]
    if params and len(specs) != 1:
        raise ConfigError("param." + params[0].partition("=")[0], specs,
                          "exactly one controller to set the parameter of")  # fmt: skip
    return [":".join([specs[0], *params])] if params else specs


def _eval_specs(args: dict[str, Any]) -> list[str]:
    return _listed(args["controllers"])


def _tune_specs(args: dict[str, Any]) -> list[str]:
    return [str(args["controller"])]


def _simulate(args: dict[str, Any], base: Path) -> Metrics:
    from controllers.spec import resolve
    from swarmsim.simulation import Simulation

    from .evaluate import attach_arms, controller_stats
    from .stats import flatten

    scenario = scenario_of(args, base)
    sim = Simulation(scenario, seed=int(args.get("seed", 0)))
    attached = attach_arms(sim, [resolve(s, scenario.name) for s in _simulate_specs(args)])
    summary = sim.run()
    summary["controllers"] = controller_stats(attached)
    return flatten(summary)


def _eval(args: dict[str, Any], base: Path, out: Path) -> Metrics:
    from .evaluate import evaluate
    from .seeds import EVAL_SEEDS

    start, count = int(args.get("seed", EVAL_SEEDS.start)), int(args.get("seeds", 5))
    result = evaluate(scenario_of(args, base), _eval_specs(args), range(start, start + count))
    return _comparison(result)


def _comparison(result: dict[str, Any], renamed: dict[str, str] | None = None) -> Metrics:
    """An evaluation's per-arm and paired statistics, flat (arm labels as ``renamed``)."""
    from .stats import flatten

    names = renamed or {}
    blocks = {b: {names.get(k, k): v for k, v in result[b].items()} for b in ("controllers",
                                                                           "paired")}  # fmt: skip
    return flatten(blocks)


def _tune(args: dict[str, Any], base: Path, out: Path) -> Metrics:
    from controllers.spec import resolve

    from .stats import flatten
    from .tune import study_for, tune

    spec = str(args["controller"])
    task, name = resolve(spec).task, spec.rpartition("=")[2]
    levels = {"--max-violation": args.get("max_violation"), "--min-recall": args.get("min_recall")}
    study = study_for(scenario_of(args, base), task, name, _listed(args.get("params")),
                      int(args.get("seeds", 3)), levels)  # fmt: skip
    result = tune(study, int(args.get("trials", 10)), report=lambda _line: None, storage_dir=out)
    return flatten(result)


def train_config(args: dict[str, Any], base: Path) -> Any:
    """The training config of ``args["config"]`` (under ``base``) with the cell's other
    arguments set as its dotted fields; errors name the file and the field."""
    from swarmsim.config import build, read_document, set_dotted

    from .train import TrainConfig

    path = base / str(args["config"])
    data = read_document(path, what="training config")
    for key, value in sorted(args.items()):
        if key != "config":
            set_dotted(data, key, value)
    try:
        return build(TrainConfig, data)
    except ConfigError as err:
        raise err.in_file(str(path)) from None


def _train(args: dict[str, Any], base: Path, out: Path) -> Metrics:
    from .train import train

    result = train(train_config(args, base), out, command=f"swarmsim sweep (cell {out.name})")
    return _comparison(result, {str(out / "policy"): "policy"})


RUNNERS: dict[str, Callable[[dict[str, Any], Path, Path], Metrics]] = {
    "eval": _eval,
    "tune": _tune,
    "train": _train,
}

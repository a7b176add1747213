"""A sweep's configuration (``swarmsim sweep CONFIG``): which runs, over which arguments, kept
how; a frozen dataclass validated once at load, each error naming the file and the field.

A sweep is one run kind (``simulate``, ``eval``, ``tune`` or ``train``, see
``experiments.sweep_runs``) with ``fixed`` arguments, and either a ``grid`` (every combination
of its lists) or a ``search`` (a space of Optuna-style distributions sampled ``trials`` times
for the best ``metric``); each point runs once per seed of ``seeds``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from swarmsim.config import read_config
from swarmsim.errors import ConfigError, check

from .sweep_runs import check_arg_names

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Dimension:
    """One searched argument: a float or int range (``log``: sampled on a log scale) or a
    list of ``choices``; the same file drives Optuna locally and Ray Tune on Ray."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type == "categorical":
            check(len(self.choices) >= 1, "choices", list(self.choices), "at least one choice")
            check(self.low is None and self.high is None, "low", self.low,
                  "no low/high for a categorical dimension")  # fmt: skip
            return
        check(not self.choices, "choices", list(self.choices), f"no choices for type {self.type}")
        check(self.low is not None, "low", self.low, "a number")
        check(self.high is not None and self.high >= (self.low or 0), "high", self.high,
              f"a number >= low ({self.low})")  # fmt: skip
        if self.type == "int":
            whole = float(self.low or 0).is_integer() and float(self.high or 0).is_integer()
            check(whole, "low", [self.low, self.high], "whole numbers for type int")
        check(not self.log or (self.low or 0) > 0, "log", self.log, "low > 0 on a log scale")

    @property
    def first(self) -> Any:
        """A value of the dimension (its low end, or first choice) to check a run with."""
        if self.type == "categorical":
            return self.choices[0]
        return int(self.low or 0) if self.type == "int" else self.low


@dataclass(frozen=True)
class Search:
    """A search: ``trials`` points of ``space``, each scored by ``metric`` (its mean over the
    sweep's seeds) in ``direction``; ``seed`` seeds the sampler (TPE)."""

    space: dict[str, Dimension]
    trials: int
    metric: str
    direction: Literal["minimize", "maximize"] = "minimize"
    seed: int = 0

    def __post_init__(self) -> None:
        check(len(self.space) >= 1, "space", self.space, "at least one dimension")
        check(self.trials >= 1, "trials", self.trials, ">= 1")


@dataclass(frozen=True)
class SweepConfig:
    """One sweep (see experiments/configs/sweeps/); its table is results/sweeps/<name>.jsonl."""

    name: str
    run: Literal["simulate", "eval", "tune", "train"]
    fixed: dict[str, Any] = field(default_factory=dict)  # arguments every cell shares
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # every combination
    search: Search | None = None  # instead of a grid
    seeds: tuple[int, ...] = ()  # each point once per seed (the run's ``seed`` argument)
    metrics: tuple[str, ...] = ()  # fnmatch patterns of the metrics a row keeps (none: all)
    jobs: int = 2  # cells at once: local processes, or concurrent Ray tasks or trials

    def __post_init__(self) -> None:
        check(NAME.fullmatch(self.name) is not None, "name", self.name,
              "letters, digits, '.', '_' or '-' (it names the table's file)")  # fmt: skip
        check(self.jobs >= 1, "jobs", self.jobs, ">= 1")
        check(not (self.grid and self.search), "search", "(with a grid)",
              "a grid or a search, not both")  # fmt: skip
        check(len(set(self.seeds)) == len(self.seeds), "seeds", list(self.seeds), "unique seeds")
        for key, values in self.grid.items():
            check(len(values) >= 1, f"grid.{key}", list(values), "a non-empty list")
        space = set(self.search.space) if self.search else set()
        varied = {"grid": set(self.grid), "search.space": space,
                  "seeds": {"seed"} if self.seeds else set()}  # fmt: skip
        for where, keys in varied.items():
            for key in sorted(keys & set(self.fixed)):
                raise ConfigError(f"fixed.{key}", self.fixed[key], f"no fixed value ({where} "
                                  "varies it)")  # fmt: skip
        for where, keys in (("fixed", set(self.fixed)), *varied.items()):
            check_arg_names(self.run, keys, where, bool(self.seeds))
        present = set(self.fixed) | set(self.grid) | space
        check_arg_names(self.run, present, "fixed", bool(self.seeds), required=True)

    @property
    def varied(self) -> tuple[str, ...]:
        """The argument names that differ between cells, in a fixed order (for the lines)."""
        space = tuple(self.search.space) if self.search else ()
        return (*self.grid, *space, *(("seed",) if self.seeds else ()))


def load_sweep(path: str | Path) -> SweepConfig:
    """The sweep config in the YAML file ``path``; errors name the file, field and value."""
    return read_config(SweepConfig, path, what="sweep config")

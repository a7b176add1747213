"""Declared tunable parameters: every heuristic with a numeric setting declares its ranges,
and each builds at both ends of every range and at its default, which lies inside it."""

from __future__ import annotations

import inspect

import pytest

from controllers.base import Controller
from controllers.registry import BUILTINS, ControllerSpec, controller_params, load_factory
from controllers.tunable import Tunable, factory_defaults

UNTUNED = {"seed", "interval_s"}  # randomness and the scenario's control interval
HEURISTICS = [s for s in BUILTINS if s.name != "faulty"]


def numeric_settings(spec: ControllerSpec) -> set[str]:
    """The factory's keyword arguments with a numeric default, seeds and interval aside."""
    params = inspect.signature(load_factory(spec.entry_point)).parameters.values()
    return {
        p.name
        for p in params
        if isinstance(p.default, int | float)
        and not isinstance(p.default, bool)
        and p.name not in UNTUNED
    }


@pytest.mark.parametrize("spec", HEURISTICS, ids=lambda s: f"{s.task}/{s.name}")
def test_a_heuristic_declares_tunables_exactly_when_it_has_numeric_settings(spec):
    declared = {t.name for t in spec.params}
    assert declared <= numeric_settings(spec)
    assert bool(declared) == bool(numeric_settings(spec)), numeric_settings(spec)


@pytest.mark.parametrize(
    "spec", [s for s in HEURISTICS if s.params], ids=lambda s: f"{s.task}/{s.name}"
)
def test_every_declared_range_builds_at_low_high_and_the_default_inside_it(spec):
    defaults = factory_defaults(load_factory(spec.entry_point), spec.params)
    assert isinstance(spec.make(**defaults), Controller)
    for t in spec.params:
        assert t.low <= defaults[t.name] <= t.high, t
        for value in (t.low, t.high):
            value = int(value) if t.integer else float(value)
            assert spec.make(**{t.name: value}).task == spec.task


def test_faulty_and_seeds_are_never_tunable():
    params = controller_params()
    assert all("faulty" not in entries for entries in params.values())
    assert all(
        t.name != "seed" for entries in params.values() for ts in entries.values() for t in ts
    )
    assert [str(t) for t in params["llm-routing"]["kv-overlap"]] == [
        "overlap_weight=0.1:10 log",
        "pending_weight=0:1",
    ]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"low": 1.0, "high": 1.0}, "low must be < high"),
        ({"low": 0.0, "high": 1.0, "log": True}, "needs low > 0"),
        ({"low": 0.5, "high": 3.0, "integer": True}, "integer bounds"),
    ],
)
def test_bad_ranges_are_refused_naming_the_parameter(kwargs, needle):
    with pytest.raises(ValueError, match=needle) as err:
        Tunable("x", **kwargs)
    assert str(err.value).startswith("x: ")

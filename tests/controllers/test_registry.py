"""The controller registry as data: every entry point builds, typos suggest the nearest name,
listing imports no controller module, and plugins register without touching the table."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

from controllers.base import Controller
from controllers.guardrails import DEFAULT_FALLBACK
from controllers.registry import (
    BUILTINS,
    ControllerSpec,
    controller_names,
    controller_spec,
    load_factory,
    make_controller,
    register,
)
from envs.registry import TASKS
from swarmsim.errors import UnknownNameError

CONTROLLER_MODULES = sorted({s.entry_point.partition(":")[0] for s in BUILTINS})


def needs_arguments(spec: ControllerSpec) -> bool:
    """Whether the entry point has a parameter without a default that the spec does not set."""
    params = inspect.signature(load_factory(spec.entry_point)).parameters.values()
    return any(
        p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in spec.kwargs
        for p in params
    )  # fmt: skip


@pytest.mark.parametrize("spec", BUILTINS, ids=lambda s: f"{s.task}/{s.name}")
def test_every_entry_point_imports_and_builds_with_defaults(spec):
    assert callable(load_factory(spec.entry_point))
    if needs_arguments(spec):
        pytest.skip(f"{spec.entry_point} has required arguments")
    ctl = make_controller(spec.task, spec.name)
    assert isinstance(ctl, Controller)
    assert ctl.task == spec.task


def test_every_task_has_controllers_and_faulty_covers_the_fallbacks():
    names = controller_names()
    assert set(names) == set(TASKS) and all(names.values())
    assert {t for t, entries in names.items() if "faulty" in entries} == set(DEFAULT_FALLBACK)


def test_typos_suggest_the_nearest_name():
    with pytest.raises(UnknownNameError, match="did you mean round-robin"):
        make_controller("shard-routing", "round-robbin")
    with pytest.raises(UnknownNameError, match="did you mean autoscaling"):
        make_controller("autoscalng", "hpa")


def test_registry_kwargs_are_not_overridden_by_callers():
    with pytest.raises(TypeError, match="task is set by the registry"):
        controller_spec("autoscaling", "faulty").make(task="shard-routing")


def test_register_adds_a_plugin_and_refuses_duplicates_and_bad_entry_points(monkeypatch):
    from controllers import registry

    monkeypatch.setitem(registry._REGISTRY, "autoscaling", dict(registry._REGISTRY["autoscaling"]))
    register(ControllerSpec("autoscaling", "hold", "controllers.scaling:Static", "a plugin"))
    assert type(make_controller("autoscaling", "hold")).__name__ == "Static"
    with pytest.raises(ValueError, match="already registered"):
        register(ControllerSpec("autoscaling", "hold", "controllers.scaling:Static", "again"))
    with pytest.raises(ValueError, match="module:attr"):
        register(ControllerSpec("autoscaling", "bad", "controllers.scaling.Static", "no colon"))
    with pytest.raises(UnknownNameError, match="unknown task"):
        register(ControllerSpec("autoscale", "x", "controllers.scaling:Static", "no such task"))


def test_listing_names_imports_no_controller_module():
    code = (
        "import json, sys; from controllers.registry import controller_names; "
        "names = controller_names(); "
        f"print(json.dumps([m for m in {CONTROLLER_MODULES!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
    assert CONTROLLER_MODULES  # the check is not vacuous

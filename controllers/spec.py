"""Controller specs as users write them: ``[TASK=]NAME[:key=value...]`` or a policy artifact
directory, resolved to a factory of fresh controllers (learned ones behind their guardrail).
``NAME@tuned`` takes the settings ``swarmsim tune`` wrote for the scenario being run. Shared by
``swarmsim eval`` and the live runtime's ``--controller`` (``resolve_live``: no reference)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.registry import make_task
from swarmsim.config import parse_value
from swarmsim.errors import SwarmError, UnknownNameError

from .base import Controller
from .guardrails import Guardrail
from .registry import controller_names, controller_spec, make_controller
from .tuned import SUFFIX, tuned_params


@dataclass(frozen=True)
class Arm:
    """One compared controller: its label, its Task and a factory of fresh instances;
    ``reference``: it runs only in the simulator (``ControllerSpec.reference``)."""

    label: str
    task: str
    build: Callable[[], Controller]
    reference: bool = False


def resolve(spec: str, scenario: str | None = None) -> Arm:
    """An arm from ``[TASK=]NAME[:key=value...]`` or ``[TASK=]PATH`` (a policy artifact);
    ``hpa:target_utilization=0.5`` sets a heuristic's parameter, ``hpa@tuned`` takes those
    ``swarmsim tune`` found best on ``scenario`` (given parameters override them)."""
    head, *params = spec.split(":")
    task, _, ref = head.partition("=") if "=" in head else ("", "", head)
    if Path(ref).is_dir():
        return _artifact_arm(spec, ref, task or None)
    kwargs = dict(_param(p, spec) for p in params)
    ref, tuned = ref.removesuffix(SUFFIX), ref.endswith(SUFFIX)
    names = controller_names()
    if task and task not in names:
        raise UnknownNameError("task", task, names)
    owners = [task] if task else _bare_owners(names, ref)
    if not owners:
        raise UnknownNameError("controller", ref, {n for e in names.values() for n in e})
    if len(owners) > 1:
        raise SwarmError(f"controller {ref!r} exists for {', '.join(owners)}: write TASK={ref}")
    if tuned:
        kwargs = tuned_params(scenario, owners[0], ref) | kwargs
    try:
        make_controller(owners[0], ref, **kwargs)  # validates name and parameters now
    except (TypeError, ValueError) as err:
        raise SwarmError(f"{spec}: {err}") from None
    reference = controller_spec(owners[0], ref).reference
    return Arm(spec, owners[0], lambda: make_controller(owners[0], ref, **kwargs), reference)


def resolve_live(spec: str) -> Arm:
    """An arm for the live runtime (as ``resolve``); a reference controller is refused, since
    what it is told (the run's future arrivals) exists only in the simulator."""
    arm = resolve(spec)
    if arm.reference:
        raise SwarmError(
            f"{spec}: a reference, not a deployable controller: it knows the run's future "
            "arrivals, which only the simulator has (use it with simulate, eval or tune)"
        )
    return arm


def _bare_owners(names: dict[str, dict[str, str]], ref: str) -> list[str]:
    """The Tasks a bare controller name ``ref`` may mean (see ``ControllerSpec.bare``)."""
    return [t for t, entries in names.items() if ref in entries and controller_spec(t, ref).bare]


def _param(text: str, spec: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SwarmError(f"{spec}: controller parameters are key=value, got {text!r}")
    return key, parse_value(value)


def _artifact_arm(label: str, path: str, task: str | None) -> Arm:
    from .learned import LearnedController

    probe = LearnedController(path)
    if task is not None and task != probe.task:
        raise SwarmError(f"{path}: the artifact is a {probe.task} policy, not {task}")
    return Arm(label, probe.task, lambda: guarded(LearnedController(path)))


def guarded(policy: Controller) -> Guardrail:
    """A learned controller behind the guardrail of its Task (ranges from its manifest)."""
    from .learned import OBS_MASKS

    task = make_task(policy.task)
    low, high = policy.obs_range() if hasattr(policy, "obs_range") else (None, None)
    return Guardrail(
        policy, task.action_space, obs_low=low, obs_high=high, mask=OBS_MASKS.get(task.name)
    )

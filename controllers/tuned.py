"""Tuned heuristic settings, as ``swarmsim tune`` writes them: ``results/tuned/<scenario>.json``
holds, per Task and controller, the best parameters found on that scenario's tuning seeds.
A controller spec ``NAME@tuned`` reads them back for the scenario being run, and refuses them
when the scenario no longer is what was tuned (its digest differs from the entry's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from swarmsim.errors import SwarmError

TUNED_DIR = Path("results") / "tuned"  # relative to the working directory, as results/ is
SUFFIX = "@tuned"


def tuned_path(scenario: str) -> Path:
    """Where the tuned settings of ``scenario`` are kept."""
    return TUNED_DIR / f"{Path(scenario).stem}.json"


def read_tuned(scenario: str) -> dict[str, Any]:
    """Every tuned entry of ``scenario`` (``{task: {controller: entry}}``); {} without a file."""
    path = tuned_path(scenario)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SwarmError(f"{path}: not valid JSON ({err})") from None
    tuned: dict[str, Any] = data.get("tuned", {})
    return tuned


def tuned_params(scenario: str | None, task: str, name: str) -> dict[str, Any]:
    """The tuned parameters of ``task``'s controller ``name`` on ``scenario``; a one-line
    error naming the file and the command that writes it when there are none."""
    if scenario is None:
        raise SwarmError(f"{name}{SUFFIX}: tuned settings belong to a scenario; none given here")
    entry = read_tuned(scenario).get(task, {}).get(name)
    if entry is None:
        raise SwarmError(
            f"{name}{SUFFIX}: no tuned {task}={name} in {tuned_path(scenario)}; "
            f"run `swarmsim tune {scenario} --controller {task}={name}`"
        )
    _check_unchanged(scenario, task, name, entry)
    params: dict[str, Any] = entry["params"]
    return params


def _check_unchanged(scenario: str, task: str, name: str, entry: dict[str, Any]) -> None:
    """A one-line error when ``scenario`` (with the entry's overrides) is not the scenario the
    entry was tuned on: its settings would be another scenario's best."""
    from swarmsim.scenario_files import load_scenario, scenario_digest

    expected = entry.get("scenario_sha256")
    if expected is None:
        return
    try:
        current = scenario_digest(load_scenario(scenario, entry.get("overrides", [])))
    except SwarmError:  # not a built-in or a file here (a trace alias, say): nothing to check
        return
    if current != expected:
        raise SwarmError(
            f"{name}{SUFFIX}: {scenario} changed since {task}={name} was tuned "
            f"({tuned_path(scenario)} has sha256 {expected[:12]}, the scenario is now "
            f"{current[:12]}); re-run `{entry.get('command', f'swarmsim tune {scenario}')}`"
        )

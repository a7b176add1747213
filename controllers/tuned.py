"""Tuned heuristic settings, as ``swarmsim tune`` writes them: ``results/tuned/<scenario>.json``
holds, per Task and controller, the best parameters found on that scenario's tuning seeds.
A controller spec ``NAME@tuned`` reads them back for the scenario being run."""

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
    params: dict[str, Any] = entry["params"]
    return params

"""What a reference controller is told and no deployed one can know: a run's future.

An oracle autoscaler is the upper bound beside the heuristics and the learned policy; to size
for the load it must be given the run's arrivals up front. They are generated again here from
the scenario and seed with streams of their own (``RandomStreams(seed)``, as the run spawns
them), so the arrivals are exactly the run's and the run's own streams lose no draw: every
other controller's result on the same seed is unchanged. Closed-loop sessions have no such
future (a turn is sent when the previous one is answered), so they are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import SwarmError
from .rng import RandomStreams
from .workload import Workload

if TYPE_CHECKING:
    from .scenario import Scenario
    from .simulation import Simulation


@dataclass(frozen=True)
class Foresight:
    """A run's future as a reference controller sees it.

    ``arrivals`` are every query's arrival time before the run's end (seconds, ascending);
    ``layers`` the layer names in the order of the view's (and the observation's) layers, with
    ``startup_s`` the longest a replica of each asked for now takes to serve (a cloud node's
    provisioning, then the engine start and load); ``clock`` reads the simulated time now."""

    arrivals: np.ndarray
    layers: tuple[str, ...]
    startup_s: tuple[float, ...]
    interval_s: float
    clock: Callable[[], float]

    def count(self, start: np.ndarray | float, end: np.ndarray | float) -> np.ndarray:
        """Arrivals in ``[start, end)`` (vectorised over ``start`` and ``end``)."""
        times = self.arrivals
        return np.searchsorted(times, end, "left") - np.searchsorted(times, start, "left")


def future_arrivals(scenario: Scenario, seed: int, base_dir: Path | None = None) -> np.ndarray:
    """The arrival times the run of ``scenario`` with ``seed`` will get, before its end."""
    if scenario.workload.sessions is not None and scenario.workload.sessions.closed_loop:
        raise SwarmError(
            f"scenario {scenario.name}: closed-loop sessions send a turn when the previous one "
            "is answered, so their arrivals cannot be known before the run"
        )
    streams = RandomStreams(seed)  # the run's streams, spawned again: its own lose no draw
    workload = Workload(
        scenario.workload,
        streams["workload"].gen,
        base_dir,
        streams["prefix"].gen,
        streams["bursts"].gen,
    )
    before_end = takewhile(lambda arr: arr.t < scenario.duration_s, workload.arrivals())
    return np.fromiter((arr.t for arr in before_end), dtype=np.float64)


def foresight(sim: Simulation) -> Foresight:
    """The future of ``sim``'s run (built before it starts; it reads the clock as it runs)."""
    scenario = sim.scenario
    provision = scenario.cloud.provision_delay_s if any(g.cloud for g in scenario.nodes) else 0.0
    layers = tuple(sim.cluster.layers)
    startup = tuple(provision + sim.lifecycle.layer_load_s(sim.cluster.layers[n]) for n in layers)
    return Foresight(
        arrivals=future_arrivals(scenario, sim.seed, sim.base_dir),
        layers=layers,
        startup_s=startup,
        interval_s=scenario.control_interval_s,
        clock=lambda: float(sim.env.now),
    )

"""A live run in compressed time, as ``quickstart`` and ``live_versus`` run the swarm: the
emulated stage times are the profile's times x ``time_scale`` and the arrival rate, SLO,
warm-up and deadline are scaled with them, so the workload is the scenario's at
1 / ``time_scale`` speed; latencies are read back divided by ``time_scale`` (scenario seconds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from live.config import LiveConfig
from live.runner import LiveRun
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario

MARGIN = 1.2  # load for 20% more queries than asked (arrivals are random)


def compressed_run(
    scenario: str,
    overrides: tuple[str, ...],
    spec: str,
    time_scale: float,
    queries: int,
    record: Path,
    seed: int = 0,
) -> tuple[LiveRun, Scenario]:
    """The live run of controller ``spec`` (``TASK=...``) long enough for ``queries`` measured
    queries, and the scenario as the simulator runs it (the reference for the scaling)."""
    base = load_scenario(scenario, list(overrides))
    s = time_scale
    measured = MARGIN * queries / base.workload.rate  # scenario seconds after warm-up
    duration = measured / 0.9  # warm-up: a tenth of the run, as --duration makes it
    scaled = [*overrides, f"workload.rate={base.workload.rate / s}",
              f"slo_latency_s={base.slo_latency_s * s}",
              f"warmup_s={min(base.warmup_s, duration / 10) * s}"]  # fmt: skip
    if base.deadline_s is not None:
        scaled.append(f"deadline_s={base.deadline_s * s}")
    run = LiveRun(scenario, overrides=tuple(scaled), controllers=(spec,),
                  duration_s=math.ceil(duration) * s, record=record, seed=seed,
                  config=LiveConfig(time_scale=s))  # fmt: skip
    return run, base


def measured_latencies(record: Path, run: LiveRun, time_scale: float) -> list[float]:
    """Latencies of the queries arriving after warm-up, in scenario seconds; a failed or
    dropped one counts as the deadline (or the slowest completed, if slower)."""
    live = load_scenario(run.scenario, list(run.overrides))
    deadline = run.config.deadline_s or live.deadline_s or 4 * live.slo_latency_s
    done, unfinished = [], 0
    for line in record.read_text().splitlines():
        row = json.loads(line)
        if "outcome" not in row or row["arrival"] < live.warmup_s:  # lifecycle rows: none
            continue
        if row["outcome"] == "completed":
            done.append(row["end"] - row["arrival"])
        else:
            unfinished += 1
    penalty = max([deadline, *done])
    return [x / time_scale for x in [*done, *[penalty] * unfinished]]

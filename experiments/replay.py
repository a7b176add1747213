"""``swarmsim replay TRACE``: drive the simulator with a recorded or public request trace.

The trace becomes the scenario's workload (``workload.kind=trace``) through ordinary
overrides, so ``swarmsim live run --trace`` hands the very same overrides to the live load
generator and both replay one request sequence. Requests are classed small or large by their
input tokens, as the workload does for every trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from controllers.spec import resolve
from swarmsim.errors import SwarmError
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario
from swarmsim.simulation import Simulation
from swarmsim.traces import (
    FIELDS,
    FORMATS,
    TIME_UNITS,
    TraceTable,
    describe,
    guess_time_unit,
    read_trace,
)

from .evaluate import Attached, attach_arms


@dataclass(frozen=True)
class TraceReplay:
    """A trace and how to replay it: column mapping, window, time and rate scaling."""

    path: Path
    format: str = "auto"
    columns: tuple[str, ...] = ()  # COLUMN=FIELD: the file's COLUMN holds our FIELD
    time_scale: float = 1.0  # arrival times x this (0.5 replays twice as fast)
    rate_scale: float = 1.0  # requests thinned or repeated to this many times as many
    window: str | None = None  # START:END in the trace's own seconds (either may be empty)
    time_unit: str = "auto"  # of the trace's numeric timestamps: s, ms, us or auto (guessed)
    block_tokens: int | None = None  # tokens per prefix block of its hashes (None: default)

    def __post_init__(self) -> None:
        if not self.path.is_file():
            raise SwarmError(f"{self.path}: no such trace file")
        if self.format not in FORMATS:
            raise SwarmError(f"--format: expected one of {', '.join(FORMATS)}, got {self.format!r}")
        for name, x in (("--time-scale", self.time_scale), ("--rate-scale", self.rate_scale)):
            if not x > 0:
                raise SwarmError(f"{name}: expected a number > 0, got {x}")
        if self.time_unit not in (*TIME_UNITS, "auto"):
            raise SwarmError(f"--time-unit: expected one of {', '.join(TIME_UNITS)} or auto, "
                             f"got {self.time_unit!r}")  # fmt: skip
        if self.block_tokens is not None and self.block_tokens < 1:
            raise SwarmError(f"--block-tokens: expected an integer >= 1, got {self.block_tokens}")
        self.mapping()
        self.bounds()

    def mapping(self) -> dict[str, str]:
        """Our field -> the file's column, from ``COLUMN=FIELD`` items."""
        out = {}
        for item in self.columns:
            column, sep, name = item.partition("=")
            if not sep or not column or name not in FIELDS:
                raise SwarmError(f"--map: expected COLUMN=FIELD with FIELD one of "
                                 f"{', '.join(FIELDS)}, got {item!r}")  # fmt: skip
            out[name] = column
        return out

    def bounds(self) -> tuple[float, float | None]:
        """The window's (start, end) seconds; (0, None) for the whole trace."""
        if self.window is None:
            return 0.0, None
        start, sep, end = self.window.partition(":")
        try:
            lo, hi = float(start or 0.0), (float(end) if end else None)
        except ValueError:
            lo, hi = -1.0, None
        if not sep or lo < 0 or (hi is not None and hi <= lo):
            raise SwarmError(f"--window: expected START:END seconds, START < END, "
                             f"got {self.window!r}")  # fmt: skip
        return lo, hi

    def overrides(self) -> list[str]:
        """Scenario overrides that make this trace the workload (every request counted)."""
        start, end = self.bounds()
        out = [
            "warmup_s=0",
            "workload.kind=trace",
            f"workload.trace.path={self.path.resolve()}",
            f"workload.trace.format={self.format}",
            f"workload.trace.time_scale={self.time_scale}",
            f"workload.trace.rate_scale={self.rate_scale}",
            f"workload.trace.start_s={start}",
            f"workload.trace.time_unit={self.unit}",
        ]
        if self.block_tokens is not None:
            out.append(f"workload.trace.block_tokens={self.block_tokens}")
        if end is not None:
            out.append(f"workload.trace.end_s={end}")
        out += [f"workload.trace.columns.{k}={v}" for k, v in self.mapping().items()]
        return out

    def load_duration_s(self) -> float:
        """Seconds of load that send every replayed request (arrivals at t >= the duration
        are cut, so one second past the last)."""
        return self.span_s() + 1.0

    @cached_property
    def table(self) -> TraceTable:
        """The file as read, timestamps as written (before the unit is applied)."""
        return read_trace(self.path, self.format, self.mapping() or None)

    @cached_property
    def unit(self) -> str:
        """The timestamps' unit: as given, or guessed from the file (``auto``)."""
        return guess_time_unit(self.table) if self.time_unit == "auto" else self.time_unit

    def replayed(self) -> TraceTable:
        """The requests replayed: the unit applied, the window cut, rate and time scaled."""
        start, end = self.bounds()
        table = self.table.scaled(TIME_UNITS[self.unit]).window(start, end)
        return table.rate_scaled(self.rate_scale).scaled(self.time_scale)

    def span_s(self) -> float:
        """Seconds from the first replayed request to the last, after scaling."""
        return self.replayed().duration_s

    def summary(self) -> str:
        """One line saying what was read and what is replayed, so that a wrong unit or window
        is obvious at once: ``trace x.jsonl: 23,608 requests over 60.0 min, 6.56 req/s
        (timestamps in ms, detected); replaying 1,979 ...``."""
        how = "detected; --time-unit to choose" if self.time_unit == "auto" else "as given"
        whole = self.table.scaled(TIME_UNITS[self.unit])
        line = f"trace {self.path.name}: {describe(whole)} (timestamps in {self.unit}, {how})"
        replayed = self.replayed()
        if self.window is not None or self.rate_scale != 1 or self.time_scale != 1:
            line += f"; replaying {describe(replayed)}"
        if len(replayed) == 0:
            line += "; the window holds no request"
        return line


def replay_scenario(
    replay: TraceReplay, scenario: str, overrides: Sequence[str], duration_s: float | None
) -> Scenario:
    """``scenario`` with the trace as its workload; unless ``duration_s`` is given it runs to
    the last request plus its deadline, so that the replayed queries can finish."""
    base = load_scenario(scenario, [*replay.overrides(), *overrides])
    if duration_s is None:
        drain = base.deadline_s or 4 * base.slo_latency_s
        duration_s = replay.span_s() + drain
    return load_scenario(scenario, [*replay.overrides(), *overrides, f"duration_s={duration_s}"])


def prepare(
    scenario: Scenario,
    seed: int,
    controllers: Sequence[str] = (),
    record_timeline: bool = False,
    base_dir: Path | None = None,
) -> tuple[Simulation, Attached]:
    """A simulation with ``controllers`` (``[TASK=]NAME`` or artifact paths) attached to their
    Tasks, the simulator's defaults deciding the rest; run it, then ``controller_stats``."""
    sim = Simulation(scenario, seed=seed, record_timeline=record_timeline, base_dir=base_dir)
    return sim, attach_arms(sim, [resolve(spec, scenario.name) for spec in controllers])

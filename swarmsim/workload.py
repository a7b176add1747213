"""Query arrivals: synthetic processes (Poisson, MMPP, diurnal, with optional bursts on top)
and trace replay.

Pure numpy, no SimPy, so that the simulator and the live load generator share it. Every draw
comes from the ``numpy.random.Generator`` passed in, in blocks of ``BLOCK``: a numpy call per
arrival would cost more than the simulator spends on the arrival itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count, repeat
from numbers import Real
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from .errors import TraceError, check
from .prefix import PrefixConfig, Prefixes
from .traces import FIELDS, FORMATS, TIME_UNITS, TraceTable, guess_time_unit, read_trace

BLOCK = 4096


def _finite(x: float) -> bool:
    """Whether ``x`` is a real, finite number (rejects NaN, infinities and non-numbers)."""
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class TokenDist:
    """Lognormal token counts, rounded and clipped to ``[min, max]``."""

    median: float
    sigma: float = 0.8  # standard deviation of log(tokens)
    min: int = 1
    max: int = 8192

    def __post_init__(self) -> None:
        check(_finite(self.median) and self.median > 0, "median", self.median, "a number > 0")
        check(_finite(self.sigma) and self.sigma >= 0, "sigma", self.sigma, "a number >= 0")
        check(self.min >= 0, "min", self.min, "an integer >= 0")
        check(self.max >= self.min, "max", self.max, f"an integer >= min ({self.min})")


@dataclass(frozen=True)
class QueryClass:
    """A kind of query: its share of synthetic arrivals, the synthesizer tier and token sizes."""

    name: str
    weight: float  # share of synthetic arrivals (normalised over all classes)
    model: Literal["small", "large"]  # routine queries go to small models, complex to large
    input_tokens: TokenDist
    output_tokens: TokenDist

    def __post_init__(self) -> None:
        check(bool(self.name), "name", self.name, "a non-empty name")
        check(_finite(self.weight) and self.weight > 0, "weight", self.weight, "a number > 0")
        check(self.model in ("small", "large"), "model", self.model, "'small' or 'large'")


DEFAULT_CLASSES = (
    # Medians and log-sds of the Azure LLM conv trace 2023: input p50 1020 (log-sd 0.99),
    # output p50 129 (log-sd 0.86); see ../shared/traces/README.md.
    QueryClass("routine", 0.8, "small", TokenDist(1020, 1.0), TokenDist(129, 0.86)),
    # A design choice, not a measurement: multi-hop queries retrieve more context (about the
    # conv trace's input p99, 4142) and answer at length (its output p99 is 601).
    QueryClass("complex", 0.2, "large", TokenDist(4096, 0.5, max=32768), TokenDist(512, 0.8)),
)


@dataclass(frozen=True)
class MMPPConfig:
    """Markov-modulated Poisson process: Poisson at ``rates[i]`` while in state i.

    States switch cyclically (0, 1, ..., k-1, 0, ...) after exponential dwells with means
    ``mean_dwell_s``; the first state is drawn in proportion to its mean dwell, so the process
    is stationary from time 0 and its long-run rate is the dwell-weighted mean of the rates.
    """

    rates: tuple[float, ...] = (5.0, 35.0)  # queries/s per state; 0 makes an OFF state
    mean_dwell_s: tuple[float, ...] = (300.0, 60.0)

    def __post_init__(self) -> None:
        ok = len(self.rates) >= 1 and all(_finite(r) and r >= 0 for r in self.rates)
        check(ok and max(self.rates) > 0, "rates", self.rates, "rates >= 0, at least one > 0")
        ok = len(self.mean_dwell_s) == len(self.rates)
        check(ok, "mean_dwell_s", self.mean_dwell_s, f"{len(self.rates)} dwells, one per rate")
        ok = all(_finite(d) and d > 0 for d in self.mean_dwell_s)
        check(ok, "mean_dwell_s", self.mean_dwell_s, "dwells > 0 seconds")


@dataclass(frozen=True)
class DiurnalConfig:
    """A sinusoidal day: ``rate(t) = rate * (1 + amplitude * sin(2π (t + phase_s) / period_s))``."""

    period_s: float = 86400.0
    amplitude: float = 0.5  # in [0, 1): the rate never reaches zero
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        ok = _finite(self.period_s) and self.period_s > 0
        check(ok, "period_s", self.period_s, "a number > 0")
        ok = _finite(self.amplitude) and 0 <= self.amplitude < 1
        check(ok, "amplitude", self.amplitude, "a number in [0, 1)")
        check(_finite(self.phase_s), "phase_s", self.phase_s, "a finite number")


@dataclass(frozen=True)
class BurstConfig:
    """Bursts on top of a Poisson or diurnal rate: spells of mean ``mean_duration_s`` during
    which the rate is ``multiplier`` times higher, ``mean_gap_s`` apart on average (both
    exponential, so the burst process is stationary from time 0 and the long-run share of
    time in bursts is ``mean_duration_s / (mean_duration_s + mean_gap_s)``)."""

    multiplier: float = 3.0
    mean_duration_s: float = 120.0
    mean_gap_s: float = 1800.0

    def __post_init__(self) -> None:
        ok = _finite(self.multiplier) and self.multiplier >= 1
        check(ok, "multiplier", self.multiplier, "a number >= 1")
        ok = _finite(self.mean_duration_s) and self.mean_duration_s > 0
        check(ok, "mean_duration_s", self.mean_duration_s, "a number > 0")
        ok = _finite(self.mean_gap_s) and self.mean_gap_s > 0
        check(ok, "mean_gap_s", self.mean_gap_s, "a number > 0")

    @property
    def share(self) -> float:
        """The long-run fraction of time spent in bursts."""
        return self.mean_duration_s / (self.mean_duration_s + self.mean_gap_s)


@dataclass(frozen=True)
class TraceConfig:
    """Replay of a trace file; ``start_s``/``end_s`` select a window in the trace's own seconds,
    then times are multiplied by ``time_scale`` (0.5 replays twice as fast) and the requests
    thinned or repeated to ``rate_scale`` times as many at the same times. A trace with
    prefix-block hashes names blocks of ``block_tokens`` tokens (Mooncake's: 512)."""

    path: str
    format: str = "auto"  # one of traces.FORMATS
    columns: dict[str, str] | None = None  # our field -> the file's column name
    time_unit: Literal["s", "ms", "us", "auto"] = "s"  # of numeric timestamps (Mooncake: ms)
    block_tokens: int = 16  # tokens per prefix block (vLLM's default block size)
    time_scale: float = 1.0
    rate_scale: float = 1.0
    start_s: float = 0.0
    end_s: float | None = None
    loop: bool = False  # repeat the window end to end, forever

    def __post_init__(self) -> None:
        check(bool(self.path), "path", self.path, "a trace file path")
        check(self.format in FORMATS, "format", self.format, f"one of {list(FORMATS)}")
        ok = self.columns is None or set(self.columns) <= set(FIELDS)
        check(ok, "columns", self.columns, f"a mapping with keys among {list(FIELDS)}")
        ok = self.time_unit in (*TIME_UNITS, "auto")
        check(ok, "time_unit", self.time_unit, f"one of {[*TIME_UNITS, 'auto']}")
        check(self.block_tokens >= 1, "block_tokens", self.block_tokens, "an integer >= 1")
        ok = _finite(self.time_scale) and self.time_scale > 0
        check(ok, "time_scale", self.time_scale, "a number > 0")
        ok = _finite(self.rate_scale) and self.rate_scale > 0
        check(ok, "rate_scale", self.rate_scale, "a number > 0")
        check(_finite(self.start_s) and self.start_s >= 0, "start_s", self.start_s, "a number >= 0")
        ok = self.end_s is None or (_finite(self.end_s) and self.end_s > self.start_s)
        check(ok, "end_s", self.end_s, f"a number > start_s ({self.start_s}) or null")


@dataclass(frozen=True)
class MixPhase:
    """One phase of a shifting query mix: the class weights for ``duration_s`` seconds."""

    duration_s: float
    weights: tuple[float, ...]  # one per query class, in the order of ``classes``

    def __post_init__(self) -> None:
        ok = _finite(self.duration_s) and self.duration_s > 0
        check(ok, "duration_s", self.duration_s, "a number > 0")
        ok = all(_finite(w) and w >= 0 for w in self.weights) and sum(self.weights) > 0
        check(ok, "weights", self.weights, "non-negative weights, not all zero")


@dataclass(frozen=True)
class SessionConfig:
    """How a multi-turn session sends its turns (``sessions.ClosedLoop`` runs closed-loop).

    ``timestamp``: each arrival of the arrival process (or each trace row at its timestamp) is
    a session's next turn. ``closed-loop``: a session's next turn is sent a think time after
    the answer to its previous turn arrives (or after it failed); synthetic sessions are the
    prefix's ``sessions`` conversations, always that many open, and a trace's are its session
    ids, each starting at its first request's timestamp. Think times are exponential,
    lognormal (``think_sigma``) or fixed with mean ``think_s``, or, for a trace, the gap
    between the session's two requests in the trace (``trace``)."""

    mode: Literal["timestamp", "closed-loop"] = "timestamp"
    think: Literal["exponential", "lognormal", "fixed", "trace"] = "exponential"
    # Mean think time; null: prefix.sessions / rate, so that the sessions offer ``rate`` queries/s
    # if answers were instant (Little's law for a closed system: N / (think + response)).
    think_s: float | None = None
    think_sigma: float = 1.0  # lognormal: standard deviation of log(think time) (assumption)

    def __post_init__(self) -> None:
        modes = ("timestamp", "closed-loop")
        check(self.mode in modes, "mode", self.mode, f"one of {list(modes)}")
        thinks = ("exponential", "lognormal", "fixed", "trace")
        check(self.think in thinks, "think", self.think, f"one of {list(thinks)}")
        ok = self.think_s is None or (_finite(self.think_s) and self.think_s >= 0)
        check(ok, "think_s", self.think_s, "a number >= 0 or null")
        ok = _finite(self.think_sigma) and self.think_sigma >= 0
        check(ok, "think_sigma", self.think_sigma, "a number >= 0")

    @property
    def closed_loop(self) -> bool:
        """Whether turns are sent closed-loop."""
        return self.mode == "closed-loop"


@dataclass(frozen=True)
class WorkloadConfig:
    """Where queries come from: the arrival process, the query classes and their token sizes."""

    kind: Literal["poisson", "mmpp", "diurnal", "trace"] = "poisson"
    rate: float = 10.0  # mean queries/s for poisson and diurnal
    mmpp: MMPPConfig | None = None
    diurnal: DiurnalConfig | None = None
    trace: TraceConfig | None = None
    bursts: BurstConfig | None = None  # poisson and diurnal only; drawn from the bursts stream
    classes: tuple[QueryClass, ...] = field(default=DEFAULT_CLASSES)
    complex_input_tokens: int = 4096  # trace rows with this many input tokens are "large"
    mix: tuple[MixPhase, ...] = ()  # a shifting mix: class weights by phase, cycled
    prefix: PrefixConfig | None = None  # synthesized prompt prefixes; a trace brings its own
    sessions: SessionConfig | None = None  # how sessions send turns (null: timestamp)

    def __post_init__(self) -> None:
        kinds = ("poisson", "mmpp", "diurnal", "trace")
        check(self.kind in kinds, "kind", self.kind, f"one of {list(kinds)}")
        check(_finite(self.rate) and self.rate > 0, "rate", self.rate, "a number > 0")
        if self.kind in ("mmpp", "diurnal", "trace"):
            section = getattr(self, self.kind)
            check(section is not None, self.kind, section, f"a section when kind is {self.kind!r}")
        ok = self.bursts is None or self.kind in ("poisson", "diurnal")
        check(ok, "bursts", "...", "bursts only with kind poisson or diurnal")
        names = [c.name for c in self.classes]
        ok = len(names) >= 1 and len(set(names)) == len(names)
        check(ok, "classes", names, "at least one class, with unique names")
        ok = self.kind != "trace" or {c.model for c in self.classes} == {"small", "large"}
        check(ok, "classes", names, "a 'small' and a 'large' class to sort trace rows into")
        ok = self.complex_input_tokens >= 1
        check(ok, "complex_input_tokens", self.complex_input_tokens, "an integer >= 1")
        for i, phase in enumerate(self.mix):
            ok = len(phase.weights) == len(self.classes)
            check(ok, f"mix[{i}].weights", phase.weights, f"{len(self.classes)} weights")
        check(not self.mix or self.kind != "trace", "mix", "...", "no mix with trace replay")
        if self.sessions is not None:
            self._check_sessions(self.sessions)

    def _check_sessions(self, s: SessionConfig) -> None:
        """Closed-loop sessions need sessions to loop: a prefix's, or a trace's session ids."""
        trace = self.kind == "trace"
        if s.closed_loop and not trace:
            ok = self.kind == "poisson" and self.prefix is not None and self.bursts is None
            expected = "closed-loop sessions with kind poisson, no bursts, and a prefix section"
            check(ok, "sessions.mode", s.mode, f"{expected} (its sessions and turns), or a trace")
        ok = trace or s.think != "trace"
        check(ok, "sessions.think", s.think, "'trace' only when replaying a trace")
        ok = not (trace and s.closed_loop and s.think != "trace" and s.think_s is None)
        check(ok, "sessions.think_s", s.think_s, "a mean think time (a trace has no rate)")
        if trace and s.closed_loop and self.trace is not None:
            ok = self.trace.rate_scale == 1.0 and not self.trace.loop
            check(ok, "sessions.mode", s.mode, "closed-loop replay without rate_scale or loop")

    @property
    def session_mode(self) -> Literal["timestamp", "closed-loop"] | None:
        """How this workload's sessions send turns: None without sessions (no prefix and no
        sessions section)."""
        if self.sessions is not None:
            return self.sessions.mode
        return "timestamp" if self.prefix is not None else None

    @property
    def block_tokens(self) -> int:
        """Tokens per prefix block of the queries' ``blocks``."""
        if self.kind == "trace" and self.trace is not None:
            return self.trace.block_tokens
        return self.prefix.block_tokens if self.prefix is not None else 16


class Arrival(NamedTuple):
    """One query: arrival time (seconds from 0), class index, token counts and the hashes of
    its prompt's prefix blocks (empty when the workload has none)."""

    t: float
    qclass: int
    input_tokens: int
    output_tokens: int
    blocks: tuple[int, ...] = ()


class Workload:
    """Generates the arrivals ``cfg`` describes; all randomness comes from ``rng``, except the
    burst spells, drawn from ``burst_rng`` (required when ``cfg`` has bursts)."""

    def __init__(
        self,
        cfg: WorkloadConfig,
        rng: np.random.Generator,
        base_dir: Path | None = None,
        prefix_rng: np.random.Generator | None = None,
        burst_rng: np.random.Generator | None = None,
    ) -> None:
        """``prefix_rng`` draws the prefixes' sessions and documents (default: ``rng``);
        ``burst_rng`` the burst spells (required with bursts)."""
        if cfg.bursts is not None and burst_rng is None:
            raise ValueError("a workload with bursts needs burst_rng (the bursts stream)")
        self.cfg = cfg
        self.rng = rng
        self.prefix_rng = rng if prefix_rng is None else prefix_rng
        self.burst_rng = burst_rng
        self.table: TraceTable | None = None
        self.period_s = math.inf
        if cfg.kind == "trace":
            assert cfg.trace is not None  # WorkloadConfig requires the section for its kind
            self.table, self.period_s = _load_trace(cfg.trace, base_dir)
            closed = cfg.sessions is not None and cfg.sessions.closed_loop
            if closed and self.table.sessions is None:
                msg = "closed-loop sessions need a session column (map one with --map COL=session)"
                raise TraceError(cfg.trace.path, msg)
        self._marks: _Marks | None = None  # one closed-loop turn's marks at a time

    def arrivals(self) -> Iterator[Arrival]:
        """Arrivals in time order from t=0: endless except for a non-looping trace.

        Each call starts a new sequence, continuing to draw from the shared ``rng``.
        """
        if self.cfg.kind == "trace":
            return self._replay()
        return self._synthetic()

    def draw_turn(self, t: float) -> tuple[int, int, int]:
        """One synthetic arrival's class and input and output tokens, at time ``t``."""
        if self._marks is None:
            self._marks = _Marks(self.cfg.classes, self.cfg.mix)
        (qclass,), (inputs,), (outputs,) = self._marks.draw(self.rng, np.array([t]))
        return qclass, inputs, outputs

    def trace_class(self, input_tokens: int) -> int:
        """The class of a trace row: the large class from ``complex_input_tokens`` up."""
        model = "large" if input_tokens >= self.cfg.complex_input_tokens else "small"
        return next(i for i, c in enumerate(self.cfg.classes) if c.model == model)

    def mean_rate(self) -> float:
        """The long-run arrival rate in queries/s."""
        cfg = self.cfg
        if cfg.mmpp is not None and cfg.kind == "mmpp":
            rates, dwell = np.array(cfg.mmpp.rates), np.array(cfg.mmpp.mean_dwell_s)
            return float(rates @ dwell / dwell.sum())
        if self.table is not None:  # kind "trace"
            return len(self.table) / self.period_s if self.period_s > 0 else 0.0
        if cfg.bursts is not None:  # a diurnal cycle averages to 1 over its period
            return cfg.rate * (1.0 + (cfg.bursts.multiplier - 1.0) * cfg.bursts.share)
        return cfg.rate

    def _synthetic(self) -> Iterator[Arrival]:
        """Synthetic times with classes and tokens drawn per block."""
        cfg = self.cfg
        if cfg.mmpp is not None and cfg.kind == "mmpp":
            blocks = _mmpp_times(cfg.mmpp, self.rng)
        elif cfg.bursts is not None and self.burst_rng is not None:
            path = _BurstPath(cfg.bursts, self.burst_rng)
            blocks = _bursty_times(cfg.rate, cfg.diurnal, path, self.rng)
        elif cfg.diurnal is not None and cfg.kind == "diurnal":
            blocks = _diurnal_times(cfg.rate, cfg.diurnal, self.rng)
        else:
            blocks = _poisson_times(cfg.rate, self.rng)
        marks = _Marks(cfg.classes, cfg.mix)
        prefixes = None if cfg.prefix is None else Prefixes(cfg.prefix, self.prefix_rng)
        for times in blocks:
            qclass, inputs, outputs = marks.draw(self.rng, times)
            if prefixes is None:
                rows = zip(times.tolist(), qclass, inputs, outputs, repeat(()))
                yield from map(Arrival._make, rows)
                continue
            # Each prompt is built as its arrival is taken (prefix_rng draws in the same
            # order as building the block's at once), not a block of thousands per reset.
            for t, c, new_tokens, out in zip(times.tolist(), qclass, inputs, outputs, strict=True):
                n, hashes = prefixes.prompt(new_tokens, out)
                yield Arrival(t, c, n, out, hashes)

    def _replay(self) -> Iterator[Arrival]:
        """The trace's rows, classed by input size; repeated every ``period_s`` when looping."""
        table, cfg = self.table, self.cfg
        assert table is not None and cfg.trace is not None  # set in __init__ for kind "trace"
        large = next(i for i, c in enumerate(cfg.classes) if c.model == "large")
        small = next(i for i, c in enumerate(cfg.classes) if c.model == "small")
        qclass = np.where(table.input_tokens >= cfg.complex_input_tokens, large, small).tolist()
        inputs, outputs = table.input_tokens.tolist(), table.output_tokens.tolist()
        blocks = table.blocks or [()] * len(table)
        for cycle in count() if cfg.trace.loop else range(1):
            times = (table.t + cycle * self.period_s).tolist()
            rows = zip(times, qclass, inputs, outputs, blocks, strict=True)
            yield from map(Arrival._make, rows)


def _natural_span(table: TraceTable) -> float:
    """The last arrival plus one mean gap, so that a looping replay's next cycle starts a gap
    after the last arrival rather than on top of it."""
    gaps = len(table) - 1
    return table.duration_s + ((table.duration_s - float(table.t[0])) / gaps if gaps else 0.0)


def _load_trace(cfg: TraceConfig, base_dir: Path | None) -> tuple[TraceTable, float]:
    """The trace window, scaled, and the period after which a looping replay repeats it."""
    path = Path(cfg.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    table = read_trace(path, cfg.format, cfg.columns)
    unit = guess_time_unit(table) if cfg.time_unit == "auto" else cfg.time_unit
    if unit != "s":
        table = table.scaled(TIME_UNITS[unit])
    table = table.window(cfg.start_s, cfg.end_s)
    if len(table) == 0:
        raise TraceError(str(path), f"no arrivals in the window [{cfg.start_s}, {cfg.end_s}) s")
    span = cfg.end_s - cfg.start_s if cfg.end_s is not None else _natural_span(table)
    check(not cfg.loop or span > 0, "trace.loop", cfg.loop, "a window spanning some time")
    table = table.rate_scaled(cfg.rate_scale)
    if len(table) == 0:
        raise TraceError(str(path), f"rate_scale {cfg.rate_scale} leaves no arrivals")
    return table.scaled(cfg.time_scale), span * cfg.time_scale


class _Marks:
    """Per-class arrays so that classes and token counts are drawn for a whole block at once."""

    def __init__(self, classes: tuple[QueryClass, ...], mix: tuple[MixPhase, ...] = ()) -> None:
        weights = np.array([c.weight for c in classes])
        self.p = weights / weights.sum()
        self.mix_ends = np.cumsum([ph.duration_s for ph in mix])
        mix_weights = np.array([ph.weights for ph in mix] or [(1.0,)], dtype=float)
        self.mix_cum = np.cumsum(mix_weights, axis=1) / mix_weights.sum(axis=1, keepdims=True)
        self.dists = [
            np.array([(math.log(d.median), d.sigma, d.min, d.max) for d in dists]).T
            for dists in ([c.input_tokens for c in classes], [c.output_tokens for c in classes])
        ]

    def draw(
        self, rng: np.random.Generator, times: np.ndarray
    ) -> tuple[list[int], list[int], list[int]]:
        """Class indices and input and output token counts of arrivals at ``times``."""
        n = len(times)
        qclass = (
            self._classes(rng, times)
            if self.mix_ends.size
            else rng.choice(len(self.p), size=n, p=self.p)
        )
        z = rng.standard_normal((2, n))
        tokens = []
        for (mu, sigma, lo, hi), zi in zip(self.dists, z, strict=True):
            x = np.rint(np.exp(mu[qclass] + sigma[qclass] * zi))
            tokens.append(np.clip(x, lo[qclass], hi[qclass]).astype(np.int64).tolist())
        return qclass.tolist(), tokens[0], tokens[1]

    def _classes(self, rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
        """Classes drawn with the weights of the mix phase each arrival falls in (cycled)."""
        phase = np.searchsorted(self.mix_ends, np.mod(times, self.mix_ends[-1]), side="right")
        u = rng.random(len(times))
        drawn = (u[:, None] >= self.mix_cum[phase]).sum(axis=1)
        classes: np.ndarray = drawn.clip(max=self.mix_cum.shape[1] - 1)
        return classes


def _poisson_times(rate: float, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of Poisson arrival times: cumulative sums of exponential gaps."""
    t0 = 0.0
    while True:
        times = t0 + np.cumsum(rng.exponential(1.0 / rate, BLOCK))
        t0 = float(times[-1])
        yield times


def _diurnal_times(
    rate: float, cfg: DiurnalConfig, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Blocks of sinusoidal-rate arrival times, exact by thinning a Poisson process at the peak."""
    peak = 1.0 + cfg.amplitude
    omega = 2.0 * math.pi / cfg.period_s
    for times in _poisson_times(rate * peak, rng):
        relative = 1.0 + cfg.amplitude * np.sin(omega * (times + cfg.phase_s))
        yield times[rng.random(len(times)) * peak < relative]


def _bursty_times(
    rate: float, diurnal: DiurnalConfig | None, path: _BurstPath, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Blocks of arrival times at ``rate`` x the diurnal factor (if any) x the burst factor,
    exact by thinning a Poisson process at the highest rate."""
    amplitude = diurnal.amplitude if diurnal is not None else 0.0
    peak = (1.0 + amplitude) * path.multiplier
    for times in _poisson_times(rate * peak, rng):
        relative = path.factor(times)
        if diurnal is not None:
            omega = 2.0 * math.pi / diurnal.period_s
            relative = relative * (1.0 + amplitude * np.sin(omega * (times + diurnal.phase_s)))
        yield times[rng.random(len(times)) * peak < relative]


class _BurstPath:
    """Alternating calm and burst spells with exponential lengths, extended as time advances.

    ``ends`` holds the end times of the spells still ahead of the last block asked about;
    spell ``i`` is a burst when ``burst`` XOR (i odd).
    """

    def __init__(self, cfg: BurstConfig, rng: np.random.Generator) -> None:
        self.rng = rng
        self.multiplier = cfg.multiplier
        self.means = np.array([cfg.mean_gap_s, cfg.mean_duration_s])  # by state: calm, burst
        self.burst = bool(rng.random() < cfg.share)  # stationary: in a burst with its share
        self.ends = np.zeros(0)
        self.end = 0.0

    def factor(self, times: np.ndarray) -> np.ndarray:
        """The burst factor (``multiplier`` or 1) at ``times`` (ascending, not before the
        previous call's last time)."""
        while self.end <= times[-1]:
            self._extend(64)
        spell = np.searchsorted(self.ends, times, side="right")
        in_burst = (spell % 2 == 1) != self.burst
        drop = int(spell[-1])  # later times fall in this spell or after it
        self.ends = self.ends[drop:]
        self.burst ^= drop % 2 == 1
        return np.where(in_burst, self.multiplier, 1.0)

    def _extend(self, n: int) -> None:
        first = len(self.ends)
        states = (np.arange(first, first + n) % 2 == 1) != self.burst
        edges = self.end + np.cumsum(self.rng.exponential(self.means[states.astype(int)]))
        self.ends = np.concatenate([self.ends, edges])
        self.end = float(edges[-1])


def _mmpp_times(cfg: MMPPConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Blocks of MMPP arrival times, exact by time change: unit-rate Poisson points mapped
    through the inverse of the state path's piecewise-linear cumulative intensity."""
    path = _StatePath(cfg, rng)
    level = 0.0
    while True:
        levels = level + np.cumsum(rng.standard_exponential(BLOCK))
        level = float(levels[-1])
        yield path.invert(levels)


class _StatePath:
    """The MMPP's state path as segments: start time, cumulative intensity at start, rate."""

    def __init__(self, cfg: MMPPConfig, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rates = np.array(cfg.rates, dtype=float)
        self.dwell = np.array(cfg.mean_dwell_s, dtype=float)
        self.state = int(rng.choice(len(self.rates), p=self.dwell / self.dwell.sum()))
        self.mean_level = float(self.rates @ self.dwell) / len(self.rates)  # per segment
        self.start_t = self.start_level = self.rate = np.zeros(0)
        self.end_t = self.end_level = 0.0

    def invert(self, levels: np.ndarray) -> np.ndarray:
        """Times at which the cumulative intensity reaches ``levels`` (ascending)."""
        while self.end_level <= levels[-1]:  # extend by about as many segments as needed
            self._extend(64 + int(1.2 * (levels[-1] - self.end_level) / self.mean_level))
        seg = np.searchsorted(self.start_level, levels, side="right") - 1
        times = self.start_t[seg] + (levels - self.start_level[seg]) / self.rate[seg]
        keep = seg[-1]  # later blocks start beyond the last level: drop earlier segments
        self.start_t, self.start_level = self.start_t[keep:], self.start_level[keep:]
        self.rate = self.rate[keep:]
        return times

    def _extend(self, n: int) -> None:
        """Append ``n`` segments of the cyclic state sequence with exponential dwells."""
        states = (self.state + np.arange(n)) % len(self.rates)
        self.state = int(states[-1] + 1) % len(self.rates)
        lengths = self.rng.exponential(self.dwell[states])
        rates = self.rates[states]
        # Cumulative sums from the current end, so that a segment starts exactly where the
        # previous one ends (a zero-rate segment then adds no intensity at all).
        edges_t = self.end_t + np.concatenate([[0.0], np.cumsum(lengths)])
        edges_level = self.end_level + np.concatenate([[0.0], np.cumsum(lengths * rates)])
        self.start_t = np.concatenate([self.start_t, edges_t[:-1]])
        self.start_level = np.concatenate([self.start_level, edges_level[:-1]])
        self.rate = np.concatenate([self.rate, rates])
        self.end_t, self.end_level = float(edges_t[-1]), float(edges_level[-1])

"""Workload: arrival processes against their closed forms, class and token draws, trace replay.

Every statistical test fixes its seed; each tolerance is about 4-6 standard errors of the
estimate for the run length used, so a correct generator fails with negligible probability
and a wrong rate or shape is caught.
"""

from __future__ import annotations

import math
import os
from itertools import islice, takewhile
from pathlib import Path

import numpy as np
import pytest

from swarmsim.config import build
from swarmsim.errors import ConfigError, TraceError
from swarmsim.traces import read_trace
from swarmsim.workload import (
    Arrival,
    BurstConfig,
    DiurnalConfig,
    MMPPConfig,
    QueryClass,
    TokenDist,
    TraceConfig,
    Workload,
    WorkloadConfig,
    _BurstPath,
)

SHARED = Path(os.environ.get("SWARMSIM_SHARED", Path(__file__).parents[3] / "shared"))
CONV = SHARED / "traces" / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
needs_conv = pytest.mark.skipif(not CONV.is_file(), reason=f"no shared trace at {CONV}")


def arrivals(cfg: WorkloadConfig, seed: int = 1, **kwargs) -> Workload:
    return Workload(cfg, np.random.default_rng(seed), **kwargs)


def until(cfg: WorkloadConfig, horizon_s: float, seed: int = 1) -> list[Arrival]:
    """All arrivals before ``horizon_s``."""
    return list(takewhile(lambda a: a.t < horizon_s, arrivals(cfg, seed).arrivals()))


def first(cfg: WorkloadConfig, n: int, seed: int = 1) -> list[Arrival]:
    return list(islice(arrivals(cfg, seed).arrivals(), n))


def gaps(stream: list[Arrival]) -> np.ndarray:
    return np.diff([0.0] + [a.t for a in stream])


def test_poisson_inter_arrivals_are_exponential():
    n, rate = 50_000, 10.0
    stream = first(WorkloadConfig(rate=rate), n)
    assert all(isinstance(a.t, float) and isinstance(a.input_tokens, int) for a in stream[:10])
    g = gaps(stream)
    assert np.all(g > 0)
    # standard errors at n = 50,000: mean 0.45%, CV about 0.8% (exponential kurtosis 9),
    # tail fraction sqrt(p(1-p)/n) = 0.0022
    assert g.mean() == pytest.approx(1 / rate, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, abs=0.04)
    assert np.mean(g > 1 / rate) == pytest.approx(math.exp(-1), abs=0.01)
    assert arrivals(WorkloadConfig(rate=rate)).mean_rate() == rate


@pytest.mark.parametrize(
    ("rates", "dwell", "horizon", "tolerance"),
    [
        # The count is dominated by the time share f of each state. For alternating exponential
        # dwells (means m1, m2) f's standard error is sqrt(2 m1^2 m2^2 / ((m1 + m2)^3 T)).
        # rate = 2 + 38 f: over T = 40,000 s, se(f) = 0.0037, i.e. 1.2% of the rate
        ((2.0, 40.0), (6.0, 2.0), 40_000.0, 0.06),
        # ON/OFF, rate = 30 f: over T = 10,000 s, se(f) = 0.005, i.e. 1% of the rate
        ((0.0, 30.0), (1.0, 1.0), 10_000.0, 0.05),
    ],
)
def test_mmpp_rate_is_the_dwell_weighted_mean_and_bursty(rates, dwell, horizon, tolerance):
    cfg = WorkloadConfig(kind="mmpp", mmpp=MMPPConfig(rates, dwell))
    expected = sum(r * d for r, d in zip(rates, dwell, strict=True)) / sum(dwell)
    assert arrivals(cfg).mean_rate() == pytest.approx(expected)
    stream = until(cfg, horizon)
    assert len(stream) / horizon == pytest.approx(expected, rel=tolerance)
    g = gaps(stream)
    assert np.all(g >= 0)
    assert g.std() / g.mean() > 1.2  # Poisson would be 1.0; these are about 1.5 and 1.4


def diurnal_expected(rate: float, cfg: DiurnalConfig, a: float, b: float) -> float:
    """The closed-form mean count in [a, b): the integral of the sinusoidal rate."""
    w = 2 * math.pi / cfg.period_s
    swing = cfg.amplitude / w * (math.cos(w * (a + cfg.phase_s)) - math.cos(w * (b + cfg.phase_s)))
    return rate * ((b - a) + swing)


def test_diurnal_follows_the_sine_hour_by_hour():
    rate, day = 2.0, DiurnalConfig(period_s=86_400.0, amplitude=0.5, phase_s=3 * 3600.0)
    cfg = WorkloadConfig(kind="diurnal", rate=rate, diurnal=day)
    stream = until(cfg, day.period_s)
    # over a whole period the sine averages out: 172,800 expected, standard error 0.24%
    assert len(stream) / day.period_s == pytest.approx(rate, rel=0.015)
    assert arrivals(cfg).mean_rate() == rate
    hourly = np.bincount([int(a.t // 3600) for a in stream], minlength=24)
    for hour, observed in enumerate(hourly):
        expected = diurnal_expected(rate, day, hour * 3600.0, (hour + 1) * 3600.0)
        assert abs(observed - expected) < 5 * math.sqrt(expected), hour  # Poisson counts
    assert hourly.max() > 2.5 * hourly.min()  # the peak is 3x the trough


DAY = DiurnalConfig(period_s=3600.0, amplitude=0.5)
BURSTS = BurstConfig(multiplier=3.0, mean_duration_s=60.0, mean_gap_s=540.0)


def bursty(seed: int = 7, bursts: BurstConfig = BURSTS) -> Workload:
    """A diurnal workload at 2 queries/s with bursts drawn from ``default_rng(seed)``."""
    cfg = WorkloadConfig(kind="diurnal", rate=2.0, diurnal=DAY, bursts=bursts)
    return Workload(cfg, np.random.default_rng(1), burst_rng=np.random.default_rng(seed))


def test_bursty_cycles_count_the_integral_of_their_rate():
    """Given the burst spells (rebuilt from the same burst seed), each one-hour cycle's count
    is Poisson with mean the integral of 2 x (1 + 0.5 sin) x (3 in a burst, else 1): within
    5 standard deviations (sqrt of the mean, ~7.5k here: 1.2%)."""
    horizon, dt = 4 * DAY.period_s, 0.05
    grid = np.arange(0.0, horizon, dt) + dt / 2  # midpoints: the rule's error is negligible
    factor = _BurstPath(BURSTS, np.random.default_rng(7)).factor(grid)
    rate = 2.0 * (1 + 0.5 * np.sin(2 * math.pi * grid / DAY.period_s)) * factor
    expected = (rate * dt).reshape(4, -1).sum(axis=1)
    times = [a.t for a in takewhile(lambda a: a.t < horizon, bursty().arrivals())]
    observed = np.bincount(np.floor_divide(times, DAY.period_s).astype(int), minlength=4)
    assert np.all(np.abs(observed - expected) < 5 * np.sqrt(expected)), (observed, expected)
    assert np.all(expected > 7200)  # every hour holds some bursts (7,200 without)


def test_bursts_raise_the_long_run_rate_by_their_share():
    """Mean rate 2 x (1 + (3 - 1) x 60 / 600) = 2.4/s. Over T = 200 h the time share f in
    bursts has standard error sqrt(2 m1^2 m2^2 / ((m1 + m2)^3 T)) = 0.0012 (as for the MMPP),
    i.e. 0.2% of the rate; Poisson noise adds 0.06%: 1% is 5 standard errors."""
    horizon = 200 * DAY.period_s
    assert bursty().mean_rate() == pytest.approx(2.4)
    count = sum(1 for _ in takewhile(lambda a: a.t < horizon, bursty().arrivals()))
    assert count / horizon == pytest.approx(2.4, rel=0.01)


def test_bursts_are_a_factor_on_top_drawn_from_their_own_stream():
    """With a multiplier of 1 the thinning is the diurnal one, draw for draw; with bursts the
    arrivals depend on the burst seed, and the workload refuses to run without that stream."""
    plain = WorkloadConfig(kind="diurnal", rate=2.0, diurnal=DAY)
    flat = list(islice(bursty(bursts=BurstConfig(multiplier=1.0)).arrivals(), 2000))
    assert flat == first(plain, 2000)
    seven, eight = (list(islice(bursty(seed).arrivals(), 2000)) for seed in (7, 8))
    assert seven != eight
    with pytest.raises(ValueError, match="burst_rng"):
        Workload(WorkloadConfig(rate=2.0, bursts=BURSTS), np.random.default_rng(1))


def test_class_shares_and_token_medians():
    stream = first(WorkloadConfig(), 40_000)
    qclass = np.array([a.qclass for a in stream])
    # share standard error sqrt(0.16 / 40,000) = 0.002
    assert np.mean(qclass == 0) == pytest.approx(0.8, abs=0.01)
    # a lognormal sample median has log-space standard error 1.2533 sigma / sqrt(n):
    # 0.7% for routine (n 32,000, sigma <= 1), 0.7% and 1.1% for complex (n 8,000)
    for index, cls in enumerate(WorkloadConfig().classes):
        chosen = [a for a in stream if a.qclass == index]
        for dist, values in [
            (cls.input_tokens, [a.input_tokens for a in chosen]),
            (cls.output_tokens, [a.output_tokens for a in chosen]),
        ]:
            assert np.median(values) == pytest.approx(dist.median, rel=0.06), cls.name


def test_token_counts_are_clipped_to_their_bounds():
    wide = TokenDist(median=100, sigma=2.0, min=10, max=200)
    only = QueryClass("only", 1.0, "small", wide, TokenDist(5, 0.0))
    stream = first(WorkloadConfig(classes=(only,)), 5_000)
    inputs = np.array([a.input_tokens for a in stream])
    assert inputs.min() == 10 and inputs.max() == 200  # sigma 2 reaches both bounds
    assert {a.output_tokens for a in stream} == {5} and {a.qclass for a in stream} == {0}


@pytest.mark.parametrize(
    "cfg",
    [
        WorkloadConfig(),
        WorkloadConfig(kind="mmpp", mmpp=MMPPConfig()),
        WorkloadConfig(kind="diurnal", diurnal=DiurnalConfig(period_s=600.0)),
    ],
    ids=["poisson", "mmpp", "diurnal"],
)
def test_same_seed_same_sequence(cfg):
    assert first(cfg, 20_000, seed=42) == first(cfg, 20_000, seed=42)
    assert first(cfg, 100, seed=42) != first(cfg, 100, seed=43)


@needs_conv
def test_conv_replay_reproduces_the_trace_exactly():
    trace = TraceConfig(str(CONV), time_scale=0.5)
    stream = list(arrivals(WorkloadConfig(kind="trace", trace=trace)).arrivals())
    table = read_trace(CONV)
    assert len(stream) == len(table) == 19_366
    assert np.array_equal([a.t for a in stream], table.t * 0.5)
    assert np.array_equal([a.input_tokens for a in stream], table.input_tokens)
    assert np.array_equal([a.output_tokens for a in stream], table.output_tokens)
    expected = np.where(table.input_tokens >= 4096, 1, 0)  # "complex" is the large class
    assert np.array_equal([a.qclass for a in stream], expected)
    assert 0 < expected.sum() < 1000  # 2% of conv rows are that long


def write_trace(tmp_path: Path, rows: list[tuple[float, int, int]]) -> Path:
    path = tmp_path / "trace.csv"
    lines = [f"{t},{i},{o}" for t, i, o in rows]
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + "\n".join(lines))
    return path


def test_replay_classes_by_threshold_with_any_class_order(tmp_path):
    write_trace(tmp_path, [(10.0, 99, 1), (11.0, 100, 2), (12.0, 5000, 3)])
    big = QueryClass("big", 1.0, "large", TokenDist(500), TokenDist(50))
    small = QueryClass("small", 1.0, "small", TokenDist(50), TokenDist(5))
    cfg = WorkloadConfig(
        kind="trace",
        trace=TraceConfig("trace.csv"),
        classes=(big, small),
        complex_input_tokens=100,
    )
    stream = list(arrivals(cfg, base_dir=tmp_path).arrivals())
    assert stream == [Arrival(0.0, 1, 99, 1), Arrival(1.0, 0, 100, 2), Arrival(2.0, 0, 5000, 3)]


def test_replay_window_is_rebased_and_scaled(tmp_path):
    path = write_trace(tmp_path, [(float(t), t, 2 * t) for t in range(20)])
    trace = TraceConfig(str(path), start_s=5.0, end_s=8.0, time_scale=2.0)
    workload = arrivals(WorkloadConfig(kind="trace", trace=trace))
    stream = list(workload.arrivals())
    assert [(a.t, a.input_tokens, a.output_tokens) for a in stream] == [
        (0.0, 5, 10),
        (2.0, 6, 12),
        (4.0, 7, 14),
    ]
    assert workload.mean_rate() == pytest.approx(3 / 6.0)  # 3 arrivals per 3 s window, x2


def test_looping_replay_repeats_every_period(tmp_path):
    path = write_trace(tmp_path, [(100.0, 1, 1), (101.0, 2, 2), (103.0, 3, 3)])
    # no end_s: the period is the span plus one mean gap, 3 + 1.5 s, then doubled
    trace = TraceConfig(str(path), time_scale=2.0, loop=True)
    workload = arrivals(WorkloadConfig(kind="trace", trace=trace))
    stream = list(islice(workload.arrivals(), 7))
    assert [a.t for a in stream] == [0.0, 2.0, 6.0, 9.0, 11.0, 15.0, 18.0]
    assert [a.input_tokens for a in stream] == [1, 2, 3, 1, 2, 3, 1]
    assert workload.mean_rate() == pytest.approx(3 / 9.0)
    windowed = TraceConfig(str(path), end_s=10.0, loop=True)  # an explicit window sets it
    times = [
        a.t for a in islice(arrivals(WorkloadConfig(kind="trace", trace=windowed)).arrivals(), 4)
    ]
    assert times == [0.0, 1.0, 3.0, 10.0]


def test_replay_rejects_an_empty_window_and_a_zero_length_loop(tmp_path):
    path = write_trace(tmp_path, [(1.0, 1, 1), (2.0, 2, 2)])
    empty = TraceConfig(str(path), start_s=50.0)
    with pytest.raises(TraceError, match="no arrivals in the window"):
        arrivals(WorkloadConfig(kind="trace", trace=empty))
    single = TraceConfig(str(path), start_s=1.0, loop=True)
    with pytest.raises(ConfigError) as caught:
        arrivals(WorkloadConfig(kind="trace", trace=single))
    assert caught.value.field == "trace.loop"


def routine_only() -> tuple[QueryClass, ...]:
    return (QueryClass("routine", 1.0, "small", TokenDist(10), TokenDist(10)),)


BAD_CONFIGS = [
    ("rate", lambda: WorkloadConfig(rate=0.0)),
    ("rate", lambda: WorkloadConfig(rate=float("nan"))),
    ("kind", lambda: WorkloadConfig(kind="bursty")),
    ("mmpp", lambda: WorkloadConfig(kind="mmpp")),
    ("diurnal", lambda: WorkloadConfig(kind="diurnal")),
    ("trace", lambda: WorkloadConfig(kind="trace")),
    ("bursts", lambda: WorkloadConfig(kind="mmpp", mmpp=MMPPConfig(), bursts=BurstConfig())),
    ("multiplier", lambda: BurstConfig(multiplier=0.5)),
    ("mean_gap_s", lambda: BurstConfig(mean_gap_s=0.0)),
    ("classes", lambda: WorkloadConfig(classes=())),
    ("classes", lambda: WorkloadConfig(classes=routine_only() * 2)),
    (
        "classes",
        lambda: WorkloadConfig(kind="trace", trace=TraceConfig("x"), classes=routine_only()),
    ),
    ("complex_input_tokens", lambda: WorkloadConfig(complex_input_tokens=0)),
    ("rates", lambda: MMPPConfig(rates=(0.0, 0.0), mean_dwell_s=(1.0, 1.0))),
    ("rates", lambda: MMPPConfig(rates=(-1.0, 2.0), mean_dwell_s=(1.0, 1.0))),
    ("rates", lambda: MMPPConfig(rates=(), mean_dwell_s=())),
    ("mean_dwell_s", lambda: MMPPConfig(rates=(1.0, 2.0), mean_dwell_s=(1.0,))),
    ("mean_dwell_s", lambda: MMPPConfig(rates=(1.0, 2.0), mean_dwell_s=(1.0, 0.0))),
    ("period_s", lambda: DiurnalConfig(period_s=0.0)),
    ("amplitude", lambda: DiurnalConfig(amplitude=1.0)),
    ("phase_s", lambda: DiurnalConfig(phase_s=float("inf"))),
    ("path", lambda: TraceConfig("")),
    ("format", lambda: TraceConfig("x", format="parquet")),
    ("columns", lambda: TraceConfig("x", columns={"tokens": "n"})),
    ("time_scale", lambda: TraceConfig("x", time_scale=0.0)),
    ("start_s", lambda: TraceConfig("x", start_s=-1.0)),
    ("end_s", lambda: TraceConfig("x", start_s=5.0, end_s=5.0)),
    ("median", lambda: TokenDist(median=0.0)),
    ("sigma", lambda: TokenDist(median=1.0, sigma=-0.1)),
    ("min", lambda: TokenDist(median=1.0, min=-1)),
    ("max", lambda: TokenDist(median=1.0, min=10, max=9)),
    ("name", lambda: QueryClass("", 1.0, "small", TokenDist(1), TokenDist(1))),
    ("weight", lambda: QueryClass("a", 0.0, "small", TokenDist(1), TokenDist(1))),
    ("model", lambda: QueryClass("a", 1.0, "medium", TokenDist(1), TokenDist(1))),
]


@pytest.mark.parametrize(("field", "make"), BAD_CONFIGS, ids=[f for f, _ in BAD_CONFIGS])
def test_bad_configs_name_the_field(field, make):
    with pytest.raises(ConfigError) as caught:
        make()
    assert caught.value.field == field


def test_configs_load_from_plain_data_with_field_paths():
    data = {"kind": "mmpp", "mmpp": {"rates": [1, 3], "mean_dwell_s": [10, 10]}}
    assert arrivals(build(WorkloadConfig, data)).mean_rate() == 2.0
    data["mmpp"]["mean_dwell_s"] = [10]
    with pytest.raises(ConfigError) as caught:
        build(WorkloadConfig, data)
    assert caught.value.field == "mmpp.mean_dwell_s"


def test_a_shifting_mix_draws_each_phases_weights():
    """Two 100-second phases, 90/10 then 20/80, cycled: class shares per phase match."""
    cfg = build(
        WorkloadConfig,
        {"kind": "poisson", "rate": 50.0,
         "mix": [{"duration_s": 100, "weights": [0.9, 0.1]},
                 {"duration_s": 100, "weights": [0.2, 0.8]}]},
    )  # fmt: skip
    arrivals = list(islice(Workload(cfg, np.random.default_rng(5)).arrivals(), 40_000))
    t = np.array([a.t for a in arrivals])
    large = np.array([a.qclass for a in arrivals]) == 1
    first = np.mod(t, 200.0) < 100.0
    # 20,000 arrivals per phase: the standard error of a share is below 0.003
    assert large[first].mean() == pytest.approx(0.1, abs=0.012)
    assert large[~first].mean() == pytest.approx(0.8, abs=0.012)


def test_mix_weights_must_match_the_classes():
    with pytest.raises(ConfigError, match=r"mix\[0\].weights"):
        build(WorkloadConfig, {"mix": [{"duration_s": 10, "weights": [1.0]}]})

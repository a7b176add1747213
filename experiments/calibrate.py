"""``swarmsim calibrate RECORDING -o SCENARIO.yaml``: fit the simulator to a recorded run.

Per layer, the recorded service times (a stage record's ``end - start``) are fitted by least
squares: to ``base + scale * profile time`` where the layer has a device profile and the
records name their device (the profile carries each device's speed and the token counts'
effect, so one scale serves a layer of mixed GPUs; a synthesizer's profile time counts only
the prompt tokens its replica's prefix cache did not hold, the stage record's ``cached``, as
the simulator's does); else, for synthesizers, to ``base + a * input tokens + b * output
tokens``; else to a constant (a coefficient that comes out negative is dropped and the rest
refitted). The log-sd of ``service / fit`` is the log-normal residual.
What a stage spends between its jobs being sent and served that is not service (the hops
there and back, the coordinator's and the worker's own handling) is fitted as a distribution
by load (``experiments.overhead``: tables of quantiles, dense in the tail where a p99 is
decided, one row per number of queries in flight), written as the layer's ``overhead``, which
the simulator draws from per stage without occupying the agent; the modelled fabric is turned
off, because loopback hops are neither bandwidth- nor topology-bound. A layer's ``load_s`` is
the median
time its replicas took to become ready (the recording's ``startup`` and ``role_change``
events: process start and model or shard load, live).

The output is an ordinary scenario file: the source scenario as written, with each recorded
layer's ``service`` replaced by the fitted model, its ``overhead`` table (where it is not all
zero) and ``fabric.enabled: false``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy.optimize import nnls

from swarmsim.errors import SwarmError
from swarmsim.profiles import load_profiles
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario, raw_scenario, resolve_scenario

from .overhead import (
    OVERHEAD_LEVELS,
    fit_overhead,
    queries_in_flight,
    stage_gaps,
    stage_overheads,
)

MIN_RECORDS = 5  # below this a layer fits a profile scale alone, or keeps its model


@dataclass(frozen=True)
class LayerFit:
    """A layer's fitted service model and what it was fitted on."""

    layer: str
    model: str  # "profile", "tokens" or "constant": what the service time was fitted on
    records: int
    scale: float  # profile model: x the profile's time
    base_s: float
    per_input_token_s: float
    per_output_token_s: float
    residual_sigma: float
    overhead_s: float  # median overhead of the stages whose jobs found their agents idle
    overhead_quantiles_s: tuple[tuple[float, ...], ...]  # by load, at OVERHEAD_LEVELS
    dispatch_s: float  # median time from a stage being ready to its first send
    dispatch_quantiles_s: tuple[tuple[float, ...], ...]  # the same by load

    def service(self) -> dict[str, Any]:
        """The scenario's ``service`` mapping for this layer."""
        base = self.base_s
        if self.model == "profile":
            return {"kind": "profile", "scale": self.scale, "base_s": base,
                    "residual_sigma": self.residual_sigma}  # fmt: skip
        return {
            "kind": "fitted",
            "base_s": base,
            "per_input_token_s": self.per_input_token_s,
            "per_output_token_s": self.per_output_token_s,
            "residual_sigma": self.residual_sigma,
        }

    def overhead(self) -> dict[str, Any] | None:
        """The scenario's ``overhead`` mapping for this layer; None where none was measured."""
        if not any(map(any, self.overhead_quantiles_s)):
            return None
        out = {"quantiles_s": _rounded(self.overhead_quantiles_s),
               "probabilities": list(OVERHEAD_LEVELS)}  # fmt: skip
        if any(map(any, self.dispatch_quantiles_s)):
            out["dispatch_quantiles_s"] = _rounded(self.dispatch_quantiles_s)
        return out


def _rounded(rows: tuple[tuple[float, ...], ...]) -> list[list[float]]:
    """A table's rows to 0.1 us, which keeps them non-decreasing."""
    return [[round(x, 7) for x in row] for row in rows]


def stage_samples(path: Path, scenario: Scenario) -> dict[str, np.ndarray]:
    """Per layer, rows of (service s, overhead s, input tokens, output tokens, waited,
    profile s, stage key, sent, ready, queries in flight at sent, and at ready) of every stage
    record of a completed query in the JSONL timeline at ``path``: profile s is NaN where the
    layer or the record has no device profile; the key numbers the record's query and stage;
    the stage was ready at the previous stage's last answer (the first, at the arrival)."""
    profiles = load_profiles()
    if not path.is_file():
        raise SwarmError(f"{path}: no such recording")
    rows: dict[str, list[tuple[float, ...]]] = {}
    spans: list[tuple[float, float]] = []  # every query's arrival and end
    for n, line in enumerate(path.open(), 1):
        if not line.strip():
            continue
        try:
            q = json.loads(line)
            if "event" in q:
                continue
            done = q.get("end")
            spans.append((float(q["arrival"]), float(done) if _is_number(done) else math.inf))
            if q["outcome"] == "completed":
                for layer, row in _query_rows(q, scenario, profiles, len(spans)):
                    rows.setdefault(layer, []).append(row)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise SwarmError(f"{path}:{n}: not a timeline record ({err!r})") from None
    if not rows:
        raise SwarmError(f"{path}: no completed query to calibrate on")
    arrivals, ends = np.array(spans).T
    out = {}
    for layer, r in rows.items():
        r = _mark_waits(np.array(r, dtype=float))
        loads = [queries_in_flight(arrivals, ends, r[:, c]) for c in (7, 8)]
        out[layer] = np.column_stack([r, *loads])
    return out


def _query_rows(q: dict, scenario: Scenario, profiles, qid: int) -> list[tuple[str, tuple]]:
    """(layer, (service, overhead, in, out, agent, sent, start, profile, key, ready)) of each
    stage record of one completed query."""
    tokens = float(q["input_tokens"]), float(q["output_tokens"])
    last: dict[int, float] = {}  # each stage's last answer
    for st in q["stages"]:
        last[int(st["stage"])] = max(last.get(int(st["stage"]), -math.inf), float(st["end"]))
    order = sorted(last)
    ready = dict(zip(order, [float(q["arrival"]), *(last[s] for s in order[:-1])], strict=True))
    out = []
    for st in q["stages"]:
        sent, start, end = float(st["sent"]), float(st["start"]), float(st["end"])
        layer = scenario.layers.get(str(st["layer"]))
        cached = float(st.get("cached", 0))  # prompt tokens its prefix cache held: no prefill
        prof = _profile_s(profiles, layer, st.get("device"), tokens[0] - cached, tokens[1])
        stage = int(st["stage"])
        row = (end - start, start - sent, *tokens, float(st["agent"]), sent, start, prof,
               qid * 64.0 + stage, ready[stage])  # fmt: skip
        out.append((str(st["layer"]), row))
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _mark_waits(rows: np.ndarray) -> np.ndarray:
    """(service, overhead, in, out, waited, profile, key, sent, ready): a job waited when it was
    sent before the job its agent served just before it had finished."""
    service, agent, sent, start = rows[:, 0], rows[:, 4], rows[:, 5], rows[:, 6]
    order = np.lexsort((start, agent))
    busy_until = np.full(len(rows), -np.inf)
    same = agent[order][1:] == agent[order][:-1]
    prev_end = (start + service)[order][:-1]
    busy_until[order[1:]] = np.where(same, prev_end, -np.inf)
    waited = (busy_until > sent).astype(float)
    return np.column_stack([rows[:, :4], waited, rows[:, 7], rows[:, 8], sent, rows[:, 9]])


def _profile_s(profiles, layer, device, in_tok: float, out_tok: float) -> float:
    """The profile's service time of one job, or NaN where there is none to scale."""
    if layer is None or layer.service.kind != "profile" or not isinstance(device, str):
        return math.nan
    try:
        prof = profiles.device(device)
    except SwarmError:
        return math.nan
    if layer.role == "synthesizer":
        return prof.synth_seconds(layer.model, int(in_tok), int(out_tok))
    if layer.role == "embedder":
        return prof.embed_base_s + prof.embed_per_item_s
    if layer.role == "evaluator":
        return prof.eval_s
    return math.nan  # retrieval: the live shard is a real index, fitted as a constant


def fit_layer(layer: str, samples: np.ndarray, tokens: bool) -> LayerFit:
    """Non-negative least squares of service on the profile time where every record has one,
    else on a constant and (with ``tokens``) the token counts."""
    service, overhead = samples[:, 0], samples[:, 1]
    profile = samples[:, 5]
    if np.isfinite(profile).all() and len(samples) < MIN_RECORDS:  # too few for a base
        model, design = "profile", np.column_stack([np.zeros(len(samples)), profile])
    elif np.isfinite(profile).all():
        model, design = "profile", np.column_stack([np.ones(len(samples)), profile])
    elif tokens:
        model, design = "tokens", np.column_stack([np.ones(len(samples)), samples[:, 2:4]])
    else:
        model, design = "constant", np.ones((len(samples), 1))
    coef, _ = nnls(design, service)  # no negative base or slope: time never shrinks
    predicted = design @ coef
    ok = (predicted > 0) & (service > 0)
    sigma = float(np.std(np.log(service[ok] / predicted[ok]))) if ok.sum() > 1 else 0.0
    scale, per_in, per_out = 1.0, 0.0, 0.0
    if model == "profile":
        scale = coef[1]
    elif model == "tokens":
        per_in, per_out = coef[1], coef[2]
    key, sent, ready = samples[:, 6], samples[:, 7], samples[:, 8]
    hops, load = stage_overheads(key, sent, service, overhead, samples[:, 4],
                                 samples[:, 9].astype(np.int64))  # fmt: skip
    gaps, ready_load = stage_gaps(key, sent, ready, samples[:, 10].astype(np.int64))
    return LayerFit(
        layer, model, len(samples), float(scale), float(coef[0]), float(per_in), float(per_out),
        sigma, float(np.median(hops)), fit_overhead(hops, load), float(np.median(gaps)),
        fit_overhead(gaps, ready_load),
    )  # fmt: skip


def calibrate(recording: Path, scenario: str, overrides: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fits of every recorded layer of ``scenario`` and the calibrated scenario mapping."""
    source, raw = raw_scenario(scenario)
    resolved = load_scenario(scenario, overrides)
    samples = stage_samples(recording, resolved)
    unknown = sorted(set(samples) - set(resolved.layers))
    if unknown:
        raise SwarmError(f"{recording}: layer {unknown[0]!r} is not in scenario {scenario}")
    loads = lifecycle_samples(recording)
    fits = {
        name: fit_layer(name, rows, resolved.layers[name].role == "synthesizer")
        for name, rows in samples.items()
        if len(rows) >= MIN_RECORDS or np.isfinite(rows[:, 5]).all()
    }
    for name, fit in fits.items():
        raw.setdefault("layers", {}).setdefault(name, {})["service"] = fit.service()
        raw["layers"][name]["batch_max"] = 1  # the fitted model is per recorded job
        raw["layers"][name]["overhead"] = fit.overhead()
    for name, kinds in loads.items():
        if name in resolved.layers:
            all_s = [t for durations in kinds.values() for t in durations]
            raw.setdefault("layers", {}).setdefault(name, {})["load_s"] = float(np.median(all_s))
    raw.setdefault("fabric", {})["enabled"] = False
    raw["description"] = f"{raw.get('description', scenario)} Calibrated on {recording.name}."
    resolve_scenario(raw, overrides, f"calibrated {source}")  # refuse one that won't load
    lifecycle = {
        layer: {kind: {"n": len(d), "median_s": float(np.median(d))} for kind, d in kinds.items()}
        for layer, kinds in loads.items()
    }
    return {"source": source, "fits": {k: asdict(v) for k, v in fits.items()},
            "lifecycle": lifecycle, "scenario": raw}  # fmt: skip


def lifecycle_samples(path: Path) -> dict[str, dict[str, list[float]]]:
    """Per layer and kind (``startup``, ``role_change``), how long replicas took to be ready."""
    out: dict[str, dict[str, list[float]]] = {}
    for line in path.open():
        if '"event"' not in line:
            continue
        row = json.loads(line)
        if isinstance(row, dict) and row.get("event") in ("startup", "role_change"):
            seconds = float(row["end"]) - float(row["start"])
            out.setdefault(str(row["layer"]), {}).setdefault(row["event"], []).append(seconds)
    return out


def write_scenario(result: dict[str, Any], out: Path, command: str) -> None:
    """The calibrated scenario as YAML, headed by the command and the fits as comments."""
    lines = [f"# {command}", "# fitted per layer (service s = base + a*in + b*out; residual; "
             "median overhead and dispatch; their tables are the layer's overhead):"]  # fmt: skip
    for name, fit in result["fits"].items():
        brief = {k: v for k, v in fit.items() if not k.endswith("quantiles_s")}
        lines.append(f"#   {name}: " + json.dumps(brief))
    out.write_text("\n".join(lines) + "\n" + _dump(result["scenario"]))


def _dump(raw: dict[str, Any]) -> str:
    """YAML with lists of scalars on one line each, so an overhead table reads row by row."""
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100)

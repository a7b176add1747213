"""``swarmsim compare A.jsonl B.jsonl``: how far one per-query timeline is from another.

Both files use the timeline schema of ``simulate --trace-out`` and ``live run --record``
(one query per line: arrival, end, outcome, and a record per stage with the layer, sent,
start and end). A is the reference (usually the live recording), B the candidate (the
simulator): each figure is reported for both with B's relative error ``(B - A) / A``, end to
end and per layer, with CDF overlays. A layer's time for one query spans its stage, from the
first job sent to the last answer (a retrieval fan-out counts once, to its join).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from swarmsim.errors import SwarmError

from .tables import table, text

QUANTILES = {"p50": 50, "p95": 95, "p99": 99}


@dataclass(frozen=True)
class Recording:
    """A timeline's completed queries: end-to-end latencies and per-layer stage times."""

    path: str
    submitted: int
    completed: int
    failed: int
    span_s: float  # first arrival to last end
    latency_s: np.ndarray
    stages: dict[str, np.ndarray]
    ready_s: dict[str, np.ndarray]  # lifecycle: seconds to ready by kind (startup, role_change)

    @property
    def throughput_qps(self) -> float:
        return self.completed / self.span_s if self.span_s > 0 else 0.0


def read_recording(path: str | Path, warmup_s: float = 0.0) -> Recording:
    """A JSONL timeline; queries arriving before ``warmup_s`` are left out. A malformed line
    raises :class:`SwarmError` naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        raise SwarmError(f"{path}: no such recording")
    rows = [read_row(path, n, line) for n, line in enumerate(path.open(), 1) if line.strip()]
    ready: dict[str, list[float]] = {}
    for r in rows:
        if "event" in r and isinstance(r.get("start"), float | int):
            ready.setdefault(str(r["event"]), []).append(float(r["end"]) - float(r["start"]))
    rows = [r for r in rows if "event" not in r]  # lifecycle rows: replicas, not queries
    rows = [r for r in rows if r["arrival"] >= warmup_s]
    if not rows:
        raise SwarmError(f"{path}: no queries after the warm-up ({warmup_s} s)")
    done = [r for r in rows if r["outcome"] == "completed"]
    stages: dict[str, list[float]] = {}
    for r in done:
        for layer, seconds in _stage_spans(r["stages"]).items():
            stages.setdefault(layer, []).append(seconds)
    ends = [r["end"] for r in rows if isinstance(r.get("end"), float | int)]
    span = (max(ends) if ends else 0.0) - min(r["arrival"] for r in rows)
    return Recording(
        str(path),
        submitted=len(rows),
        completed=len(done),
        failed=sum(r["outcome"] != "completed" for r in rows),
        span_s=span,
        latency_s=np.array([r["end"] - r["arrival"] for r in done]),
        stages={k: np.array(v) for k, v in stages.items()},
        ready_s={k: np.array(v) for k, v in ready.items()},
    )


def read_row(path: Path, n: int, line: str) -> dict[str, Any]:
    """Line ``n`` of the recording at ``path``: an event row as it is, a query row checked
    for the fields readers need; errors name the line."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise SwarmError(f"{path}:{n}: not JSON ({err.msg})") from None
    if not isinstance(row, dict):
        raise SwarmError(f"{path}:{n}: expected a JSON object per line")
    if "event" in row:
        return row
    for key in ("arrival", "outcome", "stages"):
        if key not in row:
            raise SwarmError(f"{path}:{n}: missing field {key!r}")
    if not isinstance(row["arrival"], float | int) or not isinstance(row["stages"], list):
        raise SwarmError(f"{path}:{n}: 'arrival' must be a number and 'stages' a list")
    if row["outcome"] == "completed" and not isinstance(row.get("end"), float | int):
        raise SwarmError(f"{path}:{n}: a completed query needs a numeric 'end'")
    return row


def _stage_spans(records: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Per layer: last end minus first sent over its records (one query)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for rec in records:
        layer = str(rec["layer"])
        first[layer] = min(first.get(layer, math.inf), float(rec["sent"]))
        last[layer] = max(last.get(layer, -math.inf), float(rec["end"]))
    return {layer: last[layer] - first[layer] for layer in first}


def compare(a: Recording, b: Recording) -> dict[str, Any]:
    """Every figure of ``a`` and ``b`` side by side with B's relative error against A."""
    counts = {
        "submitted": _pair(a.submitted, b.submitted),
        "completed": _pair(a.completed, b.completed),
        "failed": _pair(a.failed, b.failed),
        "throughput_qps": _pair(a.throughput_qps, b.throughput_qps),
    }
    layers = [k for k in a.stages if k in b.stages] + [k for k in b.stages if k not in a.stages]
    return {
        "reference": a.path,
        "candidate": b.path,
        "counts": counts,
        "end_to_end": _quantiles(a.latency_s, b.latency_s),
        "stages": {k: _quantiles(a.stages.get(k), b.stages.get(k)) for k in layers},
        "lifecycle": {
            k: _quantiles(a.ready_s.get(k), b.ready_s.get(k))
            for k in sorted(set(a.ready_s) | set(b.ready_s))
        },
    }


def _quantiles(a: np.ndarray | None, b: np.ndarray | None) -> dict[str, Any]:
    out = {"n": _pair(_size(a), _size(b)), "mean": _pair(_stat(a, None), _stat(b, None))}
    for name, q in QUANTILES.items():
        out[name] = _pair(_stat(a, q), _stat(b, q))
    return out


def _size(x: np.ndarray | None) -> int:
    return 0 if x is None else int(x.size)


def _stat(x: np.ndarray | None, q: float | None) -> float | None:
    if x is None or x.size == 0:
        return None
    return float(np.mean(x)) if q is None else float(np.percentile(x, q))


def _pair(a: float | None, b: float | None) -> dict[str, float | None]:
    err = None
    if a is not None and b is not None:
        err = 0.0 if a == b else ((b - a) / a if a != 0 else math.inf)
    return {"a": a, "b": b, "rel_error": err}


def figures(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The comparison's rows: each figure's name and its ``{"a", "b", "rel_error"}``."""
    yield from result["counts"].items()
    for name in ("mean", *QUANTILES):
        yield f"end-to-end {name} (s)", result["end_to_end"][name]
    for layer, stage in result["stages"].items():
        for name in ("mean", *QUANTILES):
            yield f"{layer} {name} (s)", stage[name]
    for kind, ready in result["lifecycle"].items():
        yield f"{kind}: replicas", ready["n"]
        yield f"{kind} p50 (s)", ready["p50"]


def render(result: dict[str, Any]) -> str:
    """The comparison as a Markdown report."""
    lines = [
        "# Fidelity: B against A",
        "",
        f"A (reference): `{result['reference']}`  ",
        f"B (candidate): `{result['candidate']}`",
        "",
        "| figure | A | B | B vs A |",
        "| --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(_cells(name, pair)) + " |" for name, pair in figures(result)]
    return "\n".join(lines) + "\n"


def render_table(result: dict[str, Any]) -> str:
    """The comparison as a table for the terminal."""
    head = f"A (reference): {result['reference']}\nB (candidate): {result['candidate']}\n"
    rows = [_cells(name, pair) for name, pair in figures(result)]
    return head + text(table(["figure", "A", "B", "B vs A"], rows)) + "\n"


def _cells(name: str, pair: dict[str, Any]) -> list[str]:
    err = pair["rel_error"]
    rel = "n/a" if err is None else f"{err:+.1%}"
    return [name, _num(pair["a"]), _num(pair["b"]), rel]


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def write_report(a: Recording, b: Recording, out: Path) -> dict[str, Any]:
    """``fidelity.json``, ``fidelity.md`` and CDF overlays (end to end, per layer) in ``out``."""
    from . import plots

    out.mkdir(parents=True, exist_ok=True)
    result = compare(a, b)
    (out / "fidelity.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "fidelity.md").write_text(render(result))
    names = {f"A: {Path(a.path).name}": a, f"B: {Path(b.path).name}": b}
    plots.latency_cdf({k: r.latency_s for k, r in names.items()}, out / "cdf_end_to_end.png")
    for layer in result["stages"]:
        samples = {k: r.stages.get(layer, np.array([])) for k, r in names.items()}
        plots.latency_cdf(samples, out / f"cdf_{layer}.png", xlabel=f"{layer} stage time (s)")
    return result

"""``swarmsim live report ADDR|RECORDING``: what a shadow or A/B comparison on a live swarm
has shown so far.

For an A/B split, per arm (the controller that routed the query): finished queries,
latency p50/p95/p99 with distribution-free 95% intervals, recall@k with a t interval and the
failure rate with a Wilson interval, and whether the two arms' intervals separate. For a
shadow, per Task: how often the shadow chose what the acting controller chose (Wilson
interval) and, where they differed, the mean of shadow minus acting of each figure the Task
estimates from the queue states measured at decision time (for routing, the retrieval time
and the shards searched).

The same report is made from a running swarm (its most recent 50,000 queries and every
shadow decision) or from a recording (``live up --record``: query rows and the decisions
logged with their observations, routing ones sampled). ``--against TASK=CONTROLLER`` replays
a recording's logged observations through another controller offline: how often it would have
chosen what was applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from swarmsim.errors import SwarmError

from .fidelity import read_row
from .stats import mean_ci, proportion_ci, quantile_ci
from .tables import table, text

QUANTILES = (0.5, 0.95, 0.99)


def from_swarm(address: str, keys: Path | None = None) -> dict[str, Any]:
    """The report of the swarm running at ``address`` (asked with the operator key in the
    key directory ``keys``, if given)."""
    from live.operator import report_rows, request

    columns, shadows = report_rows(request(address, "REPORT", keys=keys))
    return build(columns, shadows, str(address))


def from_recording(path: Path) -> dict[str, Any]:
    """The report of a recording (JSONL of query rows, decisions and controller events)."""
    queries: dict[str, list] = {"arm": [], "outcome": [], "latency_s": [], "recall": []}
    shadows: dict[str, dict[str, Any]] = {}
    for row in _rows(path):
        if "event" not in row and "outcome" in row:
            queries["arm"].append(row.get("arm", ""))
            queries["outcome"].append(row["outcome"])
            queries["latency_s"].append(float(row["end"]) - float(row["arrival"]))
            queries["recall"].append(row.get("recall"))
        elif row.get("event") == "decision" and "shadow" in row:
            _count_shadow(shadows, row)
    return build(queries, list(shadows.values()), str(path))


def against(path: Path, spec: str) -> dict[str, Any]:
    """Offline: how often the controller ``spec`` (TASK=NAME|PATH) would have chosen what was
    applied, on every decision of its Task logged in the recording at ``path``."""
    from controllers.spec import resolve

    arm = resolve(spec)
    controller = arm.build()
    compared = agreed = 0
    by_controller: dict[str, list[int]] = {}
    for row in _rows(path):
        if row.get("event") != "decision" or row.get("task") != arm.task:
            continue
        choice = np.asarray(controller.act(np.asarray(row["obs"], dtype=np.float32)))
        same = choice.tolist() == row["action"]
        compared, agreed = compared + 1, agreed + same
        counts = by_controller.setdefault(row["controller"], [0, 0])
        counts[0], counts[1] = counts[0] + 1, counts[1] + same
    if compared == 0:
        raise SwarmError(f"{path}: no logged {arm.task} decisions to replay {spec} against")
    return {
        "source": str(path),
        "against": arm.label,
        "task": arm.task,
        "agreement": proportion_ci(agreed, compared),
        "by_controller": {k: proportion_ci(a, n) for k, (n, a) in by_controller.items()},
    }


def render_against(result: dict[str, Any]) -> str:
    """The offline agreement as text."""
    a = result["agreement"]
    lines = [
        f"{result['against']} on the {a['n']} logged {result['task']} decisions of "
        f"{result['source']}: would have chosen the applied action on "
        f"{_ci(a['rate'], a['ci95'], pct=True)}"
    ]
    for label, c in result["by_controller"].items():
        lines.append(f"  where {label} acted: {_ci(c['rate'], c['ci95'], pct=True)} of {c['n']}")
    return "\n".join(lines)


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a recording, checked as ``compare`` checks them."""
    for n, line in enumerate(path.open(encoding="utf-8"), 1):
        if line.strip():
            yield read_row(path, n, line)


def _count_shadow(shadows: dict[str, dict[str, Any]], row: dict[str, Any]) -> None:
    shadow = row["shadow"]
    key = f"{row['task']} {row['controller']} {shadow['controller']}"
    entry = shadows.setdefault(
        key,
        {
            "task": row["task"],
            "acting": row["controller"],
            "shadow": shadow["controller"],
            "running": None,
            "compared": 0,
            "agreed": 0,
            "differences": [],
        },
    )
    entry["compared"] += 1
    if shadow["action"] == row["action"]:
        entry["agreed"] += 1
    elif "estimate" in shadow:
        entry["differences"].append([shadow["acting_estimate"], shadow["estimate"]])


def build(queries: dict[str, list], shadows: list[dict[str, Any]], source: str) -> dict:
    """The report from per-query columns (arm, outcome, latency_s, recall) and each Task's
    shadow comparison (compared, agreed, differences as (acting, shadow) estimates)."""
    arms: dict[str, dict[str, Any]] = {}
    labels = sorted(set(queries["arm"]))
    for label in labels:
        rows = [i for i, a in enumerate(queries["arm"]) if a == label]
        outcome = [queries["outcome"][i] for i in rows]
        done = [i for i in rows if queries["outcome"][i] == "completed"]
        latency = [queries["latency_s"][i] for i in done]
        recall = [queries["recall"][i] for i in done if queries["recall"][i] is not None]
        arms[label or "heuristic"] = {
            "finished": len(rows),
            "completed": len(done),
            "failure_rate": proportion_ci(len(rows) - outcome.count("completed"), len(rows)),
            **{f"p{round(q * 100)}_s": quantile_ci(latency, q) for q in QUANTILES},
            "recall_at_k": mean_ci(recall),
        }
    report: dict[str, Any] = {"source": source, "arms": arms, "shadow": []}
    if len(arms) == 2:
        a, b = arms.values()
        report["separated"] = {
            key: _separate(a[key]["ci95"], b[key]["ci95"])
            for key in ("p50_s", "p95_s", "p99_s", "recall_at_k", "failure_rate")
        }
    for s in shadows:
        report["shadow"].append(
            {
                "task": s["task"],
                "acting": s["acting"],
                "shadow": s["shadow"],
                "running": s["running"],
                "agreement": proportion_ci(s["agreed"], s["compared"]),
                "differed": s["compared"] - s["agreed"],
                "shadow_minus_acting": _differences(s["differences"]),
            }
        )
    return report


def _differences(pairs: list[list[dict[str, float]]]) -> dict[str, Any]:
    """Per estimated figure: the mean of shadow minus acting over the differing decisions."""
    keys = sorted({k for acting, _ in pairs for k in acting})
    return {k: mean_ci(shadow[k] - acting[k] for acting, shadow in pairs) for k in keys}


def _separate(a: list, b: list) -> bool | None:
    if None in a or None in b:
        return None
    return bool(a[1] < b[0] or b[1] < a[0])


def render(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    lines = [f"live report: {report['source']}"]
    if report["arms"]:
        rows = [
            [label, arm["finished"], *(_q(arm[f"p{q}_s"]) for q in (50, 95, 99)),
             _ci(arm["recall_at_k"]["mean"], arm["recall_at_k"]["ci95"]),
             _ci(arm["failure_rate"]["rate"], arm["failure_rate"]["ci95"])]
            for label, arm in report["arms"].items()
        ]  # fmt: skip
        heads = ["arm", "finished", "p50 s", "p95 s", "p99 s", "recall@k", "failed"]
        lines += ["", "queries by arm (95% intervals):", text(table(heads, rows))]
        if "separated" in report:
            sep = [k for k, v in report["separated"].items() if v]
            lines.append("  intervals separate: " + (", ".join(sep) if sep else "none"))
    for s in report["shadow"]:
        agree = s["agreement"]
        state = {True: "running", False: "ended", None: "recorded"}[s["running"]]
        lines += [
            "",
            f"shadow on {s['task']} ({state}): {s['shadow']} beside {s['acting']}",
            f"  agreed on {_ci(agree['rate'], agree['ci95'], pct=True)} of {agree['n']} "
            f"decisions; differed on {s['differed']}",
        ]
        for key, d in s["shadow_minus_acting"].items():
            lines.append(
                f"  where they differed, shadow - acting {key}: {_ci(d['mean'], d['ci95'])}"
            )
    if not report["arms"] and not report["shadow"]:
        lines.append("nothing to report yet: no finished queries and no shadow decisions")
    return "\n".join(lines)


def _q(cell: dict[str, Any]) -> str:
    return _ci(cell["value"], cell["ci95"])


def _ci(value: float | None, ci: list, pct: bool = False) -> str:
    if value is None:
        return "-"
    if pct:
        return f"{value:.1%} [{ci[0]:.1%}, {ci[1]:.1%}]"
    return f"{_g(value)} [{_g(ci[0])}, {_g(ci[1])}]"


def _g(x: float) -> str:
    return f"{x:.4g}" if np.isfinite(x) else str(x)

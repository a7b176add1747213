"""``decision_spread.md``: the decision-spread result as Markdown, with the command that
regenerates it, the commit, the seeds, the wall time and the verdicts per scenario."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from .spread import (
    COLLAPSED_BELOW,
    CONTROL_SUFFIX,
    HIGHER_IS_BETTER,
    MATTERS_AT,
    PLANS,
    REPLAYS,
    SCENARIOS,
)

METHODS = (
    "Per arm: mean over seeds and a Student-t 95% interval, clipped to the metric's range (every "
    "metric is non-negative, rates are at most 1), so no bound outside it is printed. Paired "
    "difference: per seed, the arm's value minus the best arm's on the same seed (common random "
    "numbers), mean and Student-t 95% interval (a difference may be negative). Spread: the worst "
    "sensible arm's mean / the best arm's mean on a headline metric (lower is better), with a 95% "
    "percentile bootstrap over seeds resampled in pairs (the two arms are chosen on the same "
    "data, so the interval is optimistic about the spread). Goodput: post-warm-up queries "
    "finished within the SLO per second of measured (post-warm-up) time, `slo.goodput_qps`."
)


def git_commit(root: Path) -> str:
    """The checkout's commit, with ``+dirty`` when files differ from it; "unknown" without git."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def render(result: dict[str, Any]) -> str:
    """The whole report: header, the verdict table, then one section per scenario."""
    lines = [
        "# Decisions that matter: the spread between heuristics (issue 15)",
        "",
        f"Regenerate: `{result['command']}`",
        "",
        _provenance(result),
        "",
        METHODS,
        "",
        f"A scenario's decision matters when its primary spread is at least {MATTERS_AT}x and its "
        f'best arm is not the "do nothing" arm; a control twin\'s spread has collapsed below '
        f"{COLLAPSED_BELOW}x. Autoscaling has two headline metrics, SLO violation rate and "
        "GPU-hours, each with its own spread (one arm can win one and lose the other); "
        "role-assignment has mean latency and SLO violation rate.",
        "",
        *_verdicts(result["scenarios"]),
    ]
    for name, sc in result["scenarios"].items():
        lines += ["", *_section(name, sc), *_identical(sc)]
        twin = result["scenarios"].get(name + CONTROL_SUFFIX)
        if twin is not None:
            lines += ["", *_mechanism(name, sc, twin)]
    return "\n".join(lines) + "\n"


def _provenance(result: dict[str, Any]) -> str:
    seeds = result["seeds"]
    overrides = f"; overrides {result['overrides']}" if result["overrides"] else ""
    return (
        f"Commit {result['commit']}; seeds {seeds[0]}..{seeds[-1]} ({len(seeds)} per arm, the "
        f"same for every arm); wall time {result['wall_s']:.0f} s on {result['workers']} "
        f"worker processes{overrides}."
    )


def _verdicts(scenarios: dict[str, Any]) -> list[str]:
    lines = [
        "| scenario | Task | headline | best | worst sensible | spread [95%] | verdict | "
        "best is not do-nothing |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, sc in scenarios.items():
        for metric, h in sc["headline"].items():
            if h["best"] is None:
                continue
            lines.append(
                f"| {name} | {sc['task']} | {metric} | {h['best']} ({h['best_mean']:.4g}) | "
                f"{h['worst']} ({h['worst_mean']:.4g}) | {_spread(h)} | {_verdict(name, h)} | "
                f"{_not_baseline(h, sc['baseline'])} |"
            )
    return lines


def _spread(h: dict[str, Any]) -> str:
    if h["spread"] is None:
        return "undefined (best is 0)"
    lo, hi = h["spread_ci95"]
    ci = "" if lo is None else f" [{lo:.2f}, {hi:.2f}]"
    return f"{h['spread']:.2f}x{ci}"


def _verdict(name: str, h: dict[str, Any]) -> str:
    """For a scenario: whether the spread is at least MATTERS_AT; for a control twin: whether
    it collapsed (below COLLAPSED_BELOW)."""
    spread = h["spread"]
    if name.endswith(CONTROL_SUFFIX):
        if spread is None:
            return "collapsed: no (best is 0, worst is not)" if h["worst_mean"] > 0 else "collapsed"
        return f"collapsed (< {COLLAPSED_BELOW}x): {'yes' if spread < COLLAPSED_BELOW else 'no'}"
    matters = h["worst_mean"] > 0 if spread is None else spread >= MATTERS_AT
    return f">= {MATTERS_AT}x: {'yes' if matters else 'no'}"


def _not_baseline(h: dict[str, Any], baseline: str) -> str:
    if h["best_is_baseline"]:
        return f"no: {baseline} is best"
    if h["baseline_worse"] is None:
        return f"yes ({baseline} not run)" if baseline not in h["paired_to_best"] else "yes"
    if h["baseline_worse"]:
        return f"yes; {baseline} is worse (paired interval above 0)"
    return f"yes, but {baseline} is within noise of it (paired interval includes 0)"


def _section(name: str, sc: dict[str, Any]) -> list[str]:
    task = sc["task"]
    plan = PLANS[task]
    twin = name + CONTROL_SUFFIX if name + CONTROL_SUFFIX in SCENARIOS else None
    if twin is not None:
        role = f"control twin: `{twin}`"
    elif name in REPLAYS:
        replay = REPLAYS[name]
        role = f"`{replay.path}` replayed on `{replay.scenario}`; one trace: seeds agree"
    else:
        role = f"control twin of `{name.removesuffix(CONTROL_SUFFIX)}`"
    counts = sorted({c for cs in sc["submitted"].values() for c in cs})
    crn = (
        "identical across arms on every seed"
        if sc["same_arrivals"]
        else "NOT identical across arms on some seed (arrivals depend on the controller)"
    )
    metrics = list(next(iter(sc["arms"].values()))["metrics"])
    head = [*(f"{m} (paired - best)" for m in sc["headline"]), *metrics]
    lines = [
        f"## {name} ({task}; {role})",
        "",
        f"Do-nothing arm: `{plan.baseline}`. Submitted queries per seed: {crn} "
        f"(range {counts[0]}..{counts[-1]} over seeds).",
        "",
        "| arm | " + " | ".join(head) + " | wall s/run |",
        "| --- |" + " --- |" * (len(head) + 1),
    ]
    for label, arm in sc["arms"].items():
        reason = plan.unsensible.get(label)
        mark = "" if reason is None else f" (not sensible, out of the spread: {reason})"
        cells = [_cell(h["paired_to_best"].get(label)) for h in sc["headline"].values()]
        cells += [_cell(arm["metrics"][m], m) for m in metrics]
        lines.append(
            f"| {label}{mark} | " + " | ".join(cells) + f" | {arm['wall_s_per_run']:.2f} |"
        )
    return lines


def _cell(stat: dict[str, Any] | None, metric: str = "") -> str:
    if not stat or stat["mean"] is None:
        return "n/a"
    lo, hi = stat["ci95"]
    arrow = " ↑" if metric in HIGHER_IS_BETTER else ""
    return f"{stat['mean']:.4g} [{lo:.4g}, {hi:.4g}]{arrow}"


def _identical(sc: dict[str, Any]) -> list[str]:
    """A note naming arms whose every metric on every seed equals an earlier arm's."""
    first: dict[str, str] = {}
    same = []
    for label, arm in sc["arms"].items():
        key = repr(sorted(arm["per_seed"].items()))
        if key in first:
            same.append(f"`{label}` = `{first[key]}`")
        else:
            first[key] = label
    if not same:
        return []
    return ["", "Identical results on every seed and metric: " + "; ".join(same) + "."]


def _mechanism(name: str, sc: dict[str, Any], twin: dict[str, Any]) -> list[str]:
    """Per arm, each headline metric on the scenario and on its control twin (same seeds and
    arrivals) and their ratio: what the mechanism costs each heuristic."""
    metrics = [m for m in sc["headline"] if m in twin["headline"]]
    lines = [
        f"Mechanism effect: each arm on `{name}` against `{name}{CONTROL_SUFFIX}` (same seeds; "
        "ratio of means, scenario / twin).",
        "",
        "| arm | " + " | ".join(f"{m}: scenario, twin, ratio" for m in metrics) + " |",
        "| --- |" + " --- |" * len(metrics),
    ]
    for label, arm in sc["arms"].items():
        other = twin["arms"].get(label)
        if other is None:
            continue
        cells = []
        for m in metrics:
            a, b = arm["metrics"][m]["mean"], other["metrics"][m]["mean"]
            ratio = "n/a" if a is None or not b else f"{a / b:.2f}x"
            cells.append(f"{_num(a)}, {_num(b)}, {ratio}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"

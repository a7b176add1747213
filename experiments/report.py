"""The report of a training run: evaluation against the baselines, plots and report.md."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmsim.scenario_files import load_scenario

from . import plots
from .evaluate import evaluate, resolve, run_arm
from .progress import Stages

REPORT_STAGES = 2  # the evaluation, then the plots and report.md
TABLE = ("latency_s.p50", "latency_s.p99", "slo.violation_rate", "recall_at_k", "gpu_hours")


@dataclass(frozen=True)
class Bar:
    """What a learned policy must beat (issue 4): ``metric`` lower by ``margin`` than the best
    reference arm, with separate 95% intervals, and ``guard`` no worse."""

    metric: str
    margin: float
    guard: str | None = None  # a metric that must not get worse
    guard_higher_is_better: bool = False
    reference: str = ""  # only arms whose label contains this are references ("" = all)


BARS = {
    "shard-routing": Bar("latency_s.p99", 0.20, "recall_at_k", True),
    "autoscaling": Bar("gpu_hours", 0.20, "slo.violation_rate", False, "hpa"),
    "role-assignment": Bar("latency_s.mean", 0.20, None, False, "static"),
    "llm-routing": Bar("latency_s.p99", 0.20),
}


def write_report(
    cfg: Any,
    out: Path,
    policy_dir: Path,
    train_s: float,
    stages: Stages | None = None,
    command: str = "swarmsim train <config>",
) -> dict[str, Any]:
    """Evaluate ``policy_dir`` against ``cfg.eval.baselines``; write eval.json, plots, report
    (naming ``command``, the one that trained it); as ``REPORT_STAGES`` of ``stages``
    (default: lines on stderr)."""
    stages = Stages(REPORT_STAGES, False) if stages is None else stages
    overrides = list(cfg.overrides)
    if cfg.eval.duration_s is not None:
        overrides.append(f"duration_s={cfg.eval.duration_s}")
    scenario = load_scenario(cfg.scenario, overrides)
    seeds = list(range(cfg.eval.seed_start, cfg.eval.seed_start + cfg.eval.seeds))
    specs = [str(policy_dir), *(f"{cfg.task}={b}" for b in cfg.eval.baselines)]
    result = evaluate(scenario, specs, seeds, stages)
    result["train_s"] = train_s
    result["command"] = command  # the run that trained what this evaluates
    result["verdict"] = verdict(cfg.task, result, specs[0])
    (out / "eval.json").write_text(json.dumps(result, indent=2) + "\n")
    with stages.stage(f"plots and report ({len(specs)} recorded runs)") as stage:
        figures = _plots(scenario, seeds[0], specs, out / "plots")
        (out / "report.md").write_text(render(cfg, result, figures, out, command))
        stage.result = str(out / "report.md")
    return result


def verdict(task: str, result: dict[str, Any], learned: str) -> dict[str, Any]:
    """Whether the learned policy meets its Task's bar against its reference arm.

    Without a guard the reference is the best reference arm on the metric. With one, it is
    the arm tuned nearest to the learned policy's level of the guard without being better
    there (for autoscaling: the HPA whose SLO-violation rate is the smallest one at or above
    the policy's), ties going to the best on the metric: beating a cheaper HPA that violates
    twice as often, or a costlier one that violates less, would not be "at no more SLO
    violations". If every reference arm is better on the guard, the nearest of them is the
    reference and the guard fails."""
    bar = BARS[task]
    arms = result["controllers"]
    refs = {
        k: v
        for k, v in arms.items()
        if k != learned and bar.reference in k and _mean(v, bar.metric) is not None
    }
    if not refs or _mean(arms[learned], bar.metric) is None:
        return {"metric": bar.metric, "met": False, "why": "no comparable reference arm"}
    best = _reference(bar, refs, arms[learned])
    mine, theirs = arms[learned][bar.metric], refs[best][bar.metric]
    gain = 1 - mine["mean"] / theirs["mean"]
    separate = mine["ci95"][1] < theirs["ci95"][0]
    guard_ok = True
    if bar.guard is not None:
        delta = _mean(arms[learned], bar.guard) - _mean(refs[best], bar.guard)
        guard_ok = delta >= 0 if bar.guard_higher_is_better else delta <= 0
    return {"metric": bar.metric, "reference": best, "improvement": gain, "bar": bar.margin,
            "intervals_separate": separate, "guard": bar.guard, "guard_ok": guard_ok,
            "met": gain >= bar.margin and separate and guard_ok}  # fmt: skip


def _reference(bar: Bar, refs: dict[str, Any], learned: dict[str, Any]) -> str:
    """The reference arm of ``verdict`` (see there)."""
    by_metric = sorted(refs, key=lambda k: _mean(refs[k], bar.metric))
    if bar.guard is None or _mean(learned, bar.guard) is None:
        return by_metric[0]
    sign = -1.0 if bar.guard_higher_is_better else 1.0  # guard loss: lower is better
    mine = sign * _mean(learned, bar.guard)
    loss = {k: sign * _mean(refs[k], bar.guard) for k in by_metric}
    worse = [k for k in by_metric if loss[k] >= mine]
    if worse:  # the nearest from above; ties go to the best on the metric
        return min(worse, key=lambda k: loss[k])
    return max(by_metric, key=lambda k: loss[k])  # all better on the guard: the nearest


def _mean(metrics: dict[str, Any], name: str) -> float | None:
    return metrics.get(name, {}).get("mean")


def _plots(scenario, seed: int, specs: list[str], where: Path) -> list[Path]:
    runs = {
        spec: run_arm(scenario, seed, resolve(spec, scenario.name), record=True) for spec in specs
    }
    label = {spec: Path(spec).name if Path(spec).is_dir() else spec for spec in specs}
    return [
        plots.latency_cdf({label[s]: r["latencies"] for s, r in runs.items()},
                          where / "latency_cdf.png"),
        plots.replicas_over_time({label[s]: r["series"] for s, r in runs.items()},
                                 where / "replicas.png"),
    ]  # fmt: skip


def render(cfg: Any, result: dict[str, Any], figures: list[Path], out: Path, command: str) -> str:
    """report.md: what was trained, how long, the comparison table and the verdict."""
    cost = plots.cost_vs_slo(result, out / "plots" / "cost_vs_slo.png")
    lines = [
        f"# {cfg.name}",
        "",
        f"Command: `{command}`; task `{cfg.task}`, scenario `{cfg.scenario}`,"
        f" {cfg.algo}, {cfg.total_timesteps:,} steps in {result['train_s']:.0f} s.",
        *_warm_start_line(cfg, out),
        f"Evaluation: seeds {result['seeds'][0]}..{result['seeds'][-1]}, mean and 95% interval.",
        "",
        "| controller | p50 (s) | p99 (s) | SLO violations | recall@k | GPU-hours |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, m in result["controllers"].items():
        cells = [_cell(m.get(k)) for k in TABLE]
        lines.append(f"| {Path(label).name} | " + " | ".join(cells) + " |")
    v = result["verdict"]
    lines += ["", f"Verdict on `{v['metric']}`: " + json.dumps(v), ""]
    lines += [f"![{p.stem}](plots/{p.name})" for p in [*figures, cost]]
    return "\n".join(lines) + "\n"


def _warm_start_line(cfg: Any, out: Path) -> list[str]:
    path = out / "imitation.json"
    if not path.is_file():
        return []
    s = json.loads(path.read_text())
    return [
        f"Warm start: behaviour cloning of `{cfg.imitate.controller}` on {s['demo_steps']:,}"
        f" demonstration steps ({cfg.imitate.epochs} epochs; the cloned policy's deterministic"
        f" action equals the heuristic's on {s['agreement']:.1%} of them), then"
        f" {cfg.algo} fine-tuning."
    ]


def _cell(stat: dict[str, Any] | None) -> str:
    if not stat or stat["mean"] is None:
        return "n/a"
    lo, hi = stat["ci95"]
    return f"{stat['mean']:.4g} [{lo:.4g}, {hi:.4g}]"

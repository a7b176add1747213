"""Environment speed: steps per second of each Task's env on its scenario, on one core, next
to a baseline checkout of the code measured in the same run, interleaved.

Prints and writes ``results/env_speed.json``. Each measurement is a child process pinned to
one core that imports either this checkout or the baseline's (``--baseline DIR``, e.g. a
``git worktree add /tmp/wt-base <commit>``), makes the env, resets it once (loading the
corpus and profiles, not timed), then times ``--steps`` steps of actions sampled from the
action space (the invalid choices among them are replaced by the Task, as during
exploration), resets included when an episode ends, as in training. The two checkouts
alternate for ``--rounds`` rounds and the median of each is kept, so that load from other
processes falls on both alike; the rate per second of the child's own CPU time is kept too
(``cpu_steps_per_s``), which load disturbs less than the wall-clock rate. For the current
checkout the time of a step is also split into running the simulator to the next decision,
building the view, the observation and the action.

Run: ``python benchmarks/env_speed.py [--baseline DIR] [--rounds N] [--steps-scale X]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "env_speed.json"
# (env id, scenario, steps per measurement, target steps/s from issue 16)
CASES = [
    ("swarmsim/ShardRouting-v0", "hot-shards", 4000, 10_000),
    ("swarmsim/ShardRouting-v0", "escape-velocity", 4000, 10_000),
    ("swarmsim/LlmRouting-v1", "prefix-cache", 3000, 10_000),
    ("swarmsim/Autoscaling-v1", "diurnal", 720, 200),  # one episode: three compressed days
    ("swarmsim/RoleAssignment-v0", "shared-gpus", 480, 200),
    ("swarmsim/Autoscaling-v1", "escape-velocity", 100, 200),  # the busiest cluster
    ("swarmsim/RoleAssignment-v0", "escape-velocity", 100, 200),
]

# The child: measure one case with whatever ``envs`` is on its path; print one JSON line.
CHILD = r"""
import json, os, sys, time
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
import gymnasium as gym
import envs  # noqa: F401
env_id, scenario, steps, split = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
env = gym.make(env_id, scenario=scenario)
inner = env.unwrapped
spent = {}

def timed(obj, name, key):
    fn = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        spent[key] = spent.get(key, 0.0) + time.perf_counter() - t
        return out

    setattr(obj, name, wrapper)

env.reset(seed=0)
if split:
    timed(inner, "_advance", "advance")  # includes an interval Task's view (built in a hook)
    timed(inner, "_decision_view", "view")
    timed(inner.task, "observe", "observe")
    timed(inner.task, "act", "act")
    timed(inner, "reset", "reset")
env.action_space.seed(0)
actions = [env.action_space.sample() for _ in range(steps)]
start, cpu = time.perf_counter(), time.process_time()
for action in actions:
    _, _, terminated, truncated, _ = env.step(action)
    if terminated or truncated:
        env.reset()
total, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"steps_per_s": steps / total, "cpu_steps_per_s": steps / cpu,
                  "split_us": {k: v / steps * 1e6 for k, v in spent.items()}}))
"""


def measure(tree: Path, env_id: str, scenario: str, steps: int, split: bool) -> dict[str, Any]:
    """One child process's measurement of ``env_id`` on ``scenario`` with ``tree``'s code."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, "-c", CHILD, env_id, scenario, str(steps), "1" if split else "0"]
    out = subprocess.run(args, env=env, cwd=tree, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def git_commit(tree: Path) -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True)
    return out.stdout.decode().strip() or "unknown"


def run_case(case: tuple[str, str, int, int], baseline: Path | None, rounds: int) -> dict:
    env_id, scenario, steps, target = case
    ours, theirs = [], []
    for _ in range(rounds):  # interleaved, so that load from other processes hits both
        ours.append(measure(ROOT, env_id, scenario, steps, split=False))
        if baseline is not None:
            theirs.append(measure(baseline, env_id, scenario, steps, split=False))
    row: dict[str, Any] = {
        "env": env_id,
        "scenario": scenario,
        "steps": steps,
        "steps_per_s": statistics.median(m["steps_per_s"] for m in ours),
        # per second of the process's own CPU time: what the core gave it, whatever the load
        "cpu_steps_per_s": statistics.median(m["cpu_steps_per_s"] for m in ours),
        "target_steps_per_s": target,
    }
    row["meets_target"] = row["steps_per_s"] >= target
    if theirs:
        row["baseline_steps_per_s"] = statistics.median(m["steps_per_s"] for m in theirs)
        row["ratio_to_baseline"] = row["steps_per_s"] / row["baseline_steps_per_s"]
        base_cpu = statistics.median(m["cpu_steps_per_s"] for m in theirs)
        row["baseline_cpu_steps_per_s"] = base_cpu
        row["cpu_ratio_to_baseline"] = row["cpu_steps_per_s"] / base_cpu
    row["split_us_per_step"] = measure(ROOT, env_id, scenario, steps, split=True)["split_us"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps-scale", type=float, default=1.0, help="scale every step count")
    args = parser.parse_args()
    rows = []
    for env_id, scenario, steps, target in CASES:
        n = max(int(steps * args.steps_scale), 10)
        row = run_case((env_id, scenario, n, target), args.baseline, args.rounds)
        rows.append(row)
        base = (
            f"; baseline {row['baseline_steps_per_s']:8,.0f}, x{row['ratio_to_baseline']:.2f}"
            f" (CPU time x{row['cpu_ratio_to_baseline']:.2f})"
            if "baseline_steps_per_s" in row
            else ""
        )
        split = ", ".join(f"{k} {v:.0f}" for k, v in row["split_us_per_step"].items())
        print(
            f"{env_id:28s} {scenario:16s} {row['steps_per_s']:8,.0f} steps/s "
            f"(target {target:,}){base}  [us/step: {split}]",
            flush=True,
        )
    command = "python benchmarks/env_speed.py" + (
        f" --baseline {args.baseline} --rounds {args.rounds}" if args.baseline else ""
    )
    out = {
        "command": command,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}, each measurement one process pinned to one core; "
        f"load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores: "
        "compare the interleaved ratios rather than the absolute rates)",
        "commit": git_commit(ROOT),
        "baseline_commit": git_commit(args.baseline) if args.baseline else None,
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "runs": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

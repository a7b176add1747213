"""Start-up time of the ``swarmsim`` command, the whole process timed, against a bare Python
start measured in the same run.

For each command: the median wall time of ``--runs`` runs of the installed console script,
the bare interpreter's median (``python -c pass``) and the ratio, and the goal (``swarmsim
scenarios`` at most 0.4 s). The runs are interleaved (one of each command per round), so
background load falls on all of them alike.

Run: ``python benchmarks/cli_startup.py [--runs 7]``; writes ``results/cli_startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results" / "cli_startup.json"
GOAL_S = {"scenarios": 0.4}
COMMANDS = {
    "--help": ["--help"],
    "scenarios": ["scenarios"],
    "controllers": ["controllers"],
    "simulate mmc --duration 60": ["simulate", "mmc", "--duration", "60"],
}


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True)  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    script = shutil.which("swarmsim") or str(Path(sys.executable).parent / "swarmsim")
    bare = [sys.executable, "-c", "pass"]
    times: dict[str, list[float]] = {"python -c pass": [], **{name: [] for name in COMMANDS}}
    for i in range(args.runs):
        times["python -c pass"].append(timed(bare))
        for name, argv in COMMANDS.items():
            times[name].append(timed([script, *argv]))
        print(f"round {i + 1}/{args.runs} done", flush=True)
    base = statistics.median(times["python -c pass"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        row = {"command": name, "median_s": median, "runs_s": values,
               "ratio_to_bare_python": median / base}  # fmt: skip
        if name in GOAL_S:
            row["goal_s"], row["meets_goal"] = GOAL_S[name], median <= GOAL_S[name]
        rows.append(row)
        print(f"{name:32s} median {median:6.3f} s  ({median / base:4.1f}x bare python)",
              flush=True)  # fmt: skip
    out = {
        "command": "python benchmarks/cli_startup.py --runs " + str(args.runs),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; load average at the end {os.getloadavg()[0]:.1f}",
        "measured_at": time.strftime("%Y-%m-%d %H:%M"),
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

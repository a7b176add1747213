"""A hung controller on a live swarm (``swarmsim live run``, real processes): each hung
decision is preempted at the decision deadline and replaced by the heuristic's, the policy is
benched at the next heartbeat, and it acts again only after ``recover_after`` valid decisions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HUNG = 4  # decisions the faulty policy hangs on before it recovers


def test_a_hung_controller_costs_one_deadline_per_decision_then_returns_after_k_valid():
    spec = f"shard-routing=faulty:mode=hang:after=5:lasting={HUNG}"
    cmd = [sys.executable, "-m", "experiments.cli", "live", "run", "homelab", "--workers", "8",
           "--set", "rate=6", "--set", "failures.heartbeat_interval_s=0.3", "--time-scale",
           "0.05", "--controller", spec, "--duration", "20", "--json"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    ctl = summary["controllers"]["shard-routing"]
    assert ctl["fallbacks"]["deadline"] == HUNG  # every hung decision, and only those
    assert ctl["decide_us_p99"] < 1e6  # a hang cost one 0.1 s deadline, never the loop
    changes = [c.split(" ")[0] for c in ctl["changes"]]
    assert changes == ["attached", "benched", "reinstated"]
    assert ctl["name"] == spec  # acting again at the end
    q = summary["queries"]
    assert q["submitted"] == q["completed"] > 0  # served throughout, nothing lost

"""What ``swarmsim quickstart`` runs by default, as plain constants: building the command's
parser reads them, so they import nothing (a test checks they agree with
``experiments.learned.COMPARISONS``)."""

from __future__ import annotations

from pathlib import Path

TASK = "llm-routing"
SCENARIO = "prefix-cache"
HEURISTICS = ("least-outstanding", "kv-overlap", "llm-d", "round-robin")
ARTIFACT = Path("results") / "training" / "llm-routing-prefix-cache"  # relative to the checkout
TRAIN_CONFIG = Path("experiments") / "configs" / "llm-routing.yaml"
TRAIN_STEPS = 10_000  # --train: PPO steps after a short imitation (the config runs 200 k)
DEMO_STEPS = 5_000  # --train: demonstration steps and cloning epochs (the config's are larger)
DEMO_EPOCHS = 20
LIVE_QUERIES = 300  # measured (post-warm-up) queries per live arm, at least
TIME_SCALE = 0.2  # live: the scenario's workload five times faster

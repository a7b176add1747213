"""The one split of simulation seeds: heuristics are tuned (and policies may be trained) on
``TUNING_SEEDS`` and every comparison is reported on the held-out ``EVAL_SEEDS``, so that no
arm is judged on the seeds it was fitted to."""

from __future__ import annotations

EVAL_SEEDS = range(0, 10)  # held out: eval's and train's report's default seeds
TUNING_SEED_START = 1000  # swarmsim tune --seeds K uses 1000 .. 1000 + K - 1


def tuning_seeds(k: int) -> list[int]:
    """The first ``k`` tuning seeds."""
    return list(range(TUNING_SEED_START, TUNING_SEED_START + k))

"""The learned-vs-tuned comparison as data (issue 16, section 3): per Task the scenario its
policy is trained on, the control twin, one trace the policy never saw, where the trained
artifact lives, the heuristics it must beat (each at its tuned settings) and the side
condition of the headline. ``experiments.learned_run`` runs it; ``swarmsim compare`` is its
command. The headline itself is the Task's objective in ``experiments.objectives``, the one
``swarmsim tune`` minimises."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .objectives import Measure, recall, violation_rate
from .spread import CONTROL_SUFFIX

TRAINING_DIR = Path("results") / "training"  # relative to the working directory
GOAL_GAIN = 0.20  # the learned policy must be at least 20% better than the best heuristic
LEARNED = "learned"  # the policy's arm label


@dataclass(frozen=True)
class Side:
    """The condition the headline is won under: ``metric`` no worse than the best heuristic's
    (``higher_is_better``: recall; else violations), per seed from ``measure``."""

    metric: str
    higher_is_better: bool
    measure: Measure


RECALL = Side("recall_at_k", True, recall)
VIOLATIONS = Side("slo.violation_rate", False, violation_rate)


@dataclass(frozen=True)
class Comparison:
    """One Task's comparison. ``trace`` is a ``spread.REPLAYS`` name, or None with the reason
    in ``no_trace``; ``artifact`` is a run directory under ``TRAINING_DIR``; ``heuristics``
    are controller names of the Task, each run at its ``swarmsim tune`` settings;
    ``references`` too, but they bound the result instead of competing (an oracle that knows
    the future cannot be deployed)."""

    task: str
    scenario: str
    trace: str | None
    no_trace: str
    artifact: str
    heuristics: tuple[str, ...]
    side: Side
    references: tuple[str, ...] = ()  # bounds, never the best heuristic: an oracle, say

    @property
    def twin(self) -> str:
        return self.scenario + CONTROL_SUFFIX

    @property
    def artifact_dir(self) -> Path:
        return TRAINING_DIR / self.artifact


COMPARISONS = {
    c.task: c
    for c in (
        Comparison(
            "llm-routing",
            "prefix-cache",
            "mooncake@prefix-cache",
            "",
            "llm-routing-prefix-cache",
            ("round-robin", "least-outstanding", "power-of-two", "kv-overlap", "llm-d"),
            RECALL,
        ),
        Comparison(
            "shard-routing",
            "hot-shards",
            None,
            "no public trace says which shards a query needs; replaying arrival times alone "
            "would test the arrivals, not the shard heat the policy routes by",
            "routing-hot-shards",
            (
                "round-robin",
                "least-outstanding",
                "power-of-two",
                "search-all-shards",
                "relevance-threshold",
            ),
            RECALL,
        ),
        Comparison(
            "autoscaling",
            "diurnal",
            "azure-conv@diurnal",
            "",
            "autoscaling-diurnal",
            ("static", "hpa", "kpa", "ray-serve", "predictive"),
            VIOLATIONS,
            references=("oracle",),
        ),
        Comparison(
            "role-assignment",
            "shared-gpus",
            None,
            "Azure's conv trace, the one public trace with token counts, sends almost no query "
            "to the large model: replayed on shared-gpus at 2.7 requests/s (time scale 2) no "
            "query violated the SLO under proportional, so the decision does not matter there",
            "roles-shared-gpus",
            ("static", "proportional"),
            VIOLATIONS,
        ),
    )
}


def task_of(scenario: str) -> str:
    """The Task compared on ``scenario`` (its own, its twin or its trace)."""
    return next(c.task for c in COMPARISONS.values() if scenario in (c.scenario, c.twin, c.trace))

"""Do two rankings by a noisy figure agree? Orders of arms judged on 95% intervals.

Each side (live, sim) has repeated runs of every arm. An arm is ahead of another on a side
when their 95% intervals of the mean (``stats.mean_ci``) do not overlap; overlapping intervals
are a tie, noise the runs cannot resolve. The rankings agree when no pair separated on both
sides is ordered differently; pairs separated on one side only are reported, not counted
against agreement, since the other side could not tell them apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from .stats import mean_ci


def order(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """``"<"`` when interval ``a`` lies wholly below ``b``, ``">"`` above, else ``"tie"``."""
    (a_lo, a_hi), (b_lo, b_hi) = a["ci95"], b["ci95"]
    if a_hi < b_lo:
        return "<"
    if b_hi < a_lo:
        return ">"
    return "tie"


def agreement(values: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    """Per side and arm the mean with its 95% interval; per pair of arms each side's order;
    the pairs ordered the same on both sides (``agreed``), oppositely (``contradicted``) and
    resolved on one side only; ``agrees`` when none is contradicted."""
    sides = list(values)
    cis = {s: {arm: mean_ci(v) for arm, v in values[s].items()} for s in sides}
    arms = list(values[sides[0]])
    pairs, verdict = {}, {"agreed": [], "contradicted": [], "one_side": [], "tied": []}
    for a, b in combinations(arms, 2):
        orders = {s: order(cis[s][a], cis[s][b]) for s in sides}
        pairs[f"{a} vs {b}"] = orders
        separated = [o for o in orders.values() if o != "tie"]
        kind = ("tied" if not separated else "one_side" if len(separated) < len(sides)
                else "agreed" if len(set(separated)) == 1 else "contradicted")  # fmt: skip
        verdict[kind].append(f"{a} vs {b}")
    by_mean = {s: sorted(arms, key=lambda arm: cis[s][arm]["mean"]) for s in sides}
    return {"mean_ci95": cis, "order_by_mean": by_mean, "pairs": pairs, **verdict,
            "agrees": not verdict["contradicted"]}  # fmt: skip

"""The bar a learned policy is judged by (issue 4), on hand-made evaluation results."""

from __future__ import annotations

from experiments.report import verdict


def arm(**metrics: tuple[float, float, float]) -> dict:
    return {
        k.replace("__", "."): {"mean": m, "ci95": [lo, hi]} for k, (m, lo, hi) in metrics.items()
    }


def test_autoscaling_is_judged_against_the_cheapest_hpa_at_no_more_violations():
    result = {"controllers": {
        "policy": arm(gpu_hours=(20, 19, 21), slo__violation_rate=(0.10, 0.09, 0.11)),
        "hpa": arm(gpu_hours=(30, 29, 31), slo__violation_rate=(0.12, 0.11, 0.13)),
        "hpa:target_utilization=0.5": arm(gpu_hours=(40, 39, 41), slo__violation_rate=(0.05, 0, 1)),
        "kpa": arm(gpu_hours=(5, 4, 6), slo__violation_rate=(0.9, 0.8, 1)),  # not a reference
    }}  # fmt: skip
    v = verdict("autoscaling", result, "policy")
    assert v["reference"] == "hpa" and abs(v["improvement"] - 1 / 3) < 1e-9
    assert v["intervals_separate"] and v["guard_ok"] and v["met"]


def test_routing_needs_no_worse_recall_and_separate_intervals():
    base = arm(latency_s__p99=(10, 9, 11), recall_at_k=(1.0, 1.0, 1.0))
    faster_but_forgetful = arm(latency_s__p99=(5, 4, 6), recall_at_k=(0.8, 0.7, 0.9))
    overlapping = arm(latency_s__p99=(7.9, 6, 9.5), recall_at_k=(1.0, 1.0, 1.0))
    v = verdict("shard-routing", {"controllers": {"p": faster_but_forgetful, "jsq": base}}, "p")
    assert v["improvement"] == 0.5 and not v["guard_ok"] and not v["met"]
    v = verdict("shard-routing", {"controllers": {"p": overlapping, "jsq": base}}, "p")
    assert v["improvement"] > 0.2 and not v["intervals_separate"] and not v["met"]


def test_a_swept_hpa_is_matched_at_the_policys_level_of_violations():
    """A cheap HPA that violates twice as often is no reference: the HPA tuned nearest to the
    policy's violation rate from above is (here target 0.5), even though 0.9 is cheaper."""
    result = {"controllers": {
        "policy": arm(gpu_hours=(35, 33, 37), slo__violation_rate=(0.104, 0.097, 0.111)),
        "hpa:target_utilization=0.5": arm(gpu_hours=(38, 37.4, 38.6),
                                          slo__violation_rate=(0.113, 0.10, 0.125)),
        "hpa": arm(gpu_hours=(34, 32, 36), slo__violation_rate=(0.14, 0.13, 0.15)),
        "hpa:target_utilization=0.9": arm(gpu_hours=(27, 25, 30),
                                          slo__violation_rate=(0.24, 0.20, 0.29)),
    }}  # fmt: skip
    v = verdict("autoscaling", result, "policy")
    assert v["reference"] == "hpa:target_utilization=0.5"
    assert abs(v["improvement"] - (1 - 35 / 38)) < 1e-9 and v["guard_ok"] and not v["met"]
    # a policy that violates more than every HPA meets the nearest of them, and fails
    result["controllers"]["policy"] = arm(
        gpu_hours=(10, 9, 11), slo__violation_rate=(0.5, 0.4, 0.6)
    )
    v = verdict("autoscaling", result, "policy")
    assert v["reference"] == "hpa:target_utilization=0.9" and not v["guard_ok"] and not v["met"]

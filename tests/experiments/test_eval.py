"""`swarmsim eval` and `swarmsim controllers`: paired comparisons with confidence intervals."""

from __future__ import annotations

import json

import pytest

from experiments.cli import main
from experiments.stats import flatten, mean_ci, t975


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_mean_ci_uses_student_t():
    stat = mean_ci([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: half-width t(2) / sqrt(3)
    assert stat["mean"] == 2.0
    assert stat["ci95"] == pytest.approx([2 - 4.302653 / 3**0.5, 2 + 4.302653 / 3**0.5])
    assert mean_ci([5.0])["ci95"] == [5.0, 5.0]
    assert t975(40) == pytest.approx(2.021075, abs=1e-6)  # not the normal 1.96


def test_flatten_keeps_numeric_leaves_under_dotted_names():
    flat = flatten({"a": {"b": 1, "c": None, "d": {"e": 2.5}}, "f": "x", "g": True, "h": 3})
    assert flat == {"a.b": 1.0, "a.d.e": 2.5, "h": 3.0}


def test_controllers_lists_names_grouped_by_task(capsys):
    code, out, _ = run_cli(capsys, "controllers")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "shard-routing" and "autoscaling" in lines and "role-assignment" in lines
    assert any(line.split()[0] == "hpa" for line in lines if line.startswith("  "))


def test_eval_json_has_per_controller_means_and_intervals(capsys):
    code, out, _ = run_cli(
        capsys, "eval", "cloud-burst", "--controllers", "autoscaling=static,hpa",
        "--seeds", "2", "--seed-start", "3", "--duration", "600", "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    assert result["scenario"] == "cloud-burst" and result["seeds"] == [3, 4]
    assert set(result["controllers"]) == {"autoscaling=static", "hpa"}
    p99 = result["controllers"]["hpa"]["latency_s.p99"]
    assert p99["ci95"][0] <= p99["mean"] <= p99["ci95"][1]
    for metric in ("recall_at_k", "gpu_hours", "slo.violation_rate", "queries.submitted"):
        assert metric in result["controllers"]["autoscaling=static"]
    # common random numbers: both arms saw exactly the same arrivals on every seed
    same = result["paired"]["hpa"]["queries.submitted"]
    assert same["mean"] == 0.0 and same["ci95"] == [0.0, 0.0]


def test_eval_text_table(capsys):
    code, out, err = run_cli(
        capsys, "eval", "homelab", "--controllers", "least-outstanding,random",
        "--seeds", "2", "--duration", "300",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[0].startswith("scenario homelab  seeds 0..1 (2)")
    assert "least-outstanding" in out and "±" in out
    # off a terminal: a line as the evaluation starts, one per arm, one as it ends
    lines = err.splitlines()
    assert lines[0] == "evaluation: 2 controllers x 2 seeds on homelab ..."
    assert [ln.split(":")[0] for ln in lines[1:3]] == ["  least-outstanding", "  random"]
    assert all("2 seeds, latency_s.p99 " in ln for ln in lines[1:3])
    assert lines[3].startswith("evaluation: 2 controllers x 2 seeds on homelab: 4 runs (")
    assert len(lines) == 4


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("static", "write TASK=static"),
        ("hpaa", "did you mean hpa"),
        ("autoscaling=kpaa", "did you mean kpa"),
        ("scaling=hpa", "unknown task 'scaling'"),
    ],
)
def test_eval_user_errors_are_one_line(capsys, spec, needle):
    code, _, err = run_cli(capsys, "eval", "mmc", "--controllers", spec, "--seeds", "1")
    assert code == 2 and err.count("\n") == 1 and needle in err


def test_eval_compares_inference_strategy_bandits(capsys):
    specs = "inference-strategy=static,inference-strategy=ucb1,inference-strategy=thompson"
    code, out, _ = run_cli(
        capsys, "eval", "homelab", "--controllers", specs, "--seeds", "2", "--duration", "900",
        "--json",
    )  # fmt: skip
    assert code == 0
    result = json.loads(out)
    static = result["controllers"]["inference-strategy=static"]
    assert static["answer_quality"]["mean"] == pytest.approx(0.9675)  # int4 x recall 1
    for label in ("inference-strategy=ucb1", "inference-strategy=thompson"):
        shares = [v["mean"] for k, v in result["controllers"][label].items() if ".arm_share." in k]
        assert len(shares) == 4 and sum(shares) == pytest.approx(1.0)
        assert result["paired"][label]["queries.submitted"]["mean"] == 0.0

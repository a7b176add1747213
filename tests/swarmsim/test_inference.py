"""Inference strategies: precision and batch size of synthesizer work, as data/inference.yaml says.

Stories on one RTX 3060 serving llm-small, no fabric; trace queries have 100 input and 10 output
tokens. Expected times are computed from the two data files, so a changed figure moves both.
"""

from __future__ import annotations

import pytest

from swarmsim import Simulation
from swarmsim.inference import InferenceStrategy, load_inference
from swarmsim.profiles import load_profiles

GPU = load_profiles().devices["rtx3060"].llm["llm-small"]
INF = load_inference()
SYNTH = """
fabric: {enabled: false}
layers:
  synth: {role: synthesizer, model: llm-small}
stages: [{layer: synth}]
nodes:
  - name: host
    devices: [rtx3060]
    agents: [{layer: synth, device: 0}]
"""
ARRIVALS = [0, 0.01, 0.02, 0.03, 0.04]


def seconds(n: int, precision: str, in_tok: int = 100, out_tok: int = 10) -> float:
    """A batch of ``n`` such queries at ``precision``, by the formula of swarmsim.inference."""
    f = INF.precisions[precision]
    prefill = n * in_tok / (GPU.prefill_tok_s * f.prefill)
    return prefill + out_tok / (GPU.decode_tok_s * f.decode) * INF.step_factor(n)


def run(scenario, strategies: dict[int, InferenceStrategy] | None) -> Simulation:
    """Run with a configure hook answering ``strategies[query id]`` at once (no hook: None)."""
    sim = Simulation(scenario, seed=0, record_timeline=True)
    if strategies is not None:
        sim.on_configure = lambda q: sim.configure(q.id, strategies[q.id])
    sim.run()
    return sim


def spans(sim: Simulation) -> dict[int, tuple[float, float]]:
    """Per query, its synthesizer service (start, end)."""
    return {r["query"]: (r["stages"][0]["start"], r["stages"][0]["end"]) for r in sim.timeline}


def test_the_data_file_has_a_source_for_every_figure_and_int4_is_the_reference():
    assert INF.reference == "int4"
    assert INF.precisions["int4"].prefill == INF.precisions["int4"].decode == 1.0
    assert len(INF.sources) == 3 * 3 + len(INF.batched_decode)
    assert all(s.strip() for s in INF.sources.values())
    assert INF.step_factor(1) == 1.0 and INF.step_factor(3) == pytest.approx(
        (INF.step_factor(2) + INF.step_factor(4)) / 2
    )


def test_without_a_strategy_hook_queries_are_served_one_by_one_at_the_profile_speed(story):
    one = 100 / GPU.prefill_tok_s + 10 / GPU.decode_tok_s
    got = spans(run(story(SYNTH, arrivals=ARRIVALS), None))
    assert [got[q] for q in range(5)] == [pytest.approx((i * one, (i + 1) * one)) for i in range(5)]


def test_precision_scales_speed_and_a_batch_size_lets_queued_queries_share_decode(story):
    """Query 0 alone at int8; the four queued meanwhile choose int4 with batch size 4 and are
    served as one batch: their prompts' prefill plus one decode at 4 sequences per step."""
    plan = {0: InferenceStrategy(None, "int8")} | {
        q: InferenceStrategy(4, "int4") for q in (1, 2, 3, 4)
    }
    sim = run(story(SYNTH, arrivals=ARRIVALS), plan)
    got, t0 = spans(sim), seconds(1, "int8")
    assert t0 == pytest.approx(100 / (GPU.prefill_tok_s * 1.10) + 10 / (GPU.decode_tok_s * 0.66))
    assert got[0] == (0.0, pytest.approx(t0))
    for q in (1, 2, 3, 4):
        assert got[q] == (pytest.approx(t0), pytest.approx(t0 + seconds(4, "int4")))


def test_a_batch_holds_one_precision_and_respects_every_members_batch_size(story):
    """Queued behind query 0: int8 b4, int4 b2, int4 b2, int4 b4. The int8 job goes alone
    (precision differs from the next); the int4 jobs form a batch of two (the second's cap of
    2 admits it, the third's cap of 2 does not admit a third member); then the last alone."""
    s = InferenceStrategy
    plan = {0: s(None, "int4"), 1: s(4, "int8"), 2: s(2, "int4"), 3: s(2, "int4"), 4: s(4, "int4")}
    got = spans(run(story(SYNTH, arrivals=ARRIVALS), plan))
    t1 = seconds(1, "int4")
    t2 = t1 + seconds(1, "int8")
    t3 = t2 + seconds(2, "int4")
    assert got[1] == pytest.approx((t1, t2))
    assert got[2] == got[3] == pytest.approx((t2, t3))
    assert got[4] == pytest.approx((t3, t3 + seconds(1, "int4")))


def test_answer_quality_is_the_precision_factor_times_recall(story):
    plan = {q: InferenceStrategy(None, "int8" if q % 2 else "fp16") for q in range(5)}
    sim = run(story(SYNTH, arrivals=ARRIVALS, overrides=["warmup_s=0"]), plan)
    q = {p: INF.precisions[p].quality for p in ("int8", "fp16")}
    assert sim.summary(0)["answer_quality"] == pytest.approx((2 * q["int8"] + 3 * q["fp16"]) / 5)
    assert sim.view().totals.quality == pytest.approx(2 * q["int8"] + 3 * q["fp16"])
    default = run(story(SYNTH, arrivals=ARRIVALS, overrides=["warmup_s=0"]), None)
    assert default.summary(0)["answer_quality"] == pytest.approx(INF.precisions["int4"].quality)


def test_configure_rejects_unknown_queries_and_non_strategies(story):
    sim = Simulation(story(SYNTH, arrivals=ARRIVALS), seed=0)
    waiting = []
    sim.on_configure = waiting.append
    sim.start()
    sim.env.run(until=0.001)
    assert [q.id for q in waiting] == [0]
    with pytest.raises(ValueError, match="not waiting"):
        sim.configure(7, InferenceStrategy())
    with pytest.raises(TypeError, match="InferenceStrategy"):
        sim.configure(0, 2)
    with pytest.raises(ValueError, match="precision"):
        InferenceStrategy(4, "int3")
    sim.configure(0, InferenceStrategy())
    assert not sim.coordinator.configuring


def test_the_outcome_hook_hears_every_query_end(story):
    plan = {q: InferenceStrategy(None, "int8") for q in range(5)}
    sim = Simulation(story(SYNTH, arrivals=ARRIVALS), seed=0)
    heard = []
    sim.on_configure = lambda q: sim.configure(q.id, plan[q.id])
    sim.on_outcome = heard.append
    sim.run()
    assert [(o.id, o.outcome) for o in heard] == [(q, "completed") for q in range(5)]
    assert heard[0].latency_s == pytest.approx(seconds(1, "int8"))
    assert heard[0].quality == INF.precisions["int8"].quality

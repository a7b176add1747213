"""Background training jobs on the serving GPUs: who holds which GPU when, and what it costs."""

from __future__ import annotations

import pytest

from swarmsim import Simulation
from swarmsim.errors import ConfigError

# One 1-second server on a GPU; training jobs (when the story enables them) take that GPU.
GPU_SERVER = """
fabric: {enabled: false}
layers:
  server: {role: synthesizer, service: {kind: deterministic, rate: 1.0}}
stages: [{layer: server}]
nodes:
  - name: host
    devices: [a100-80gb]
    agents: [{layer: server, device: 0}]
"""
TRAINING = ["training.interarrival_s=20", "training.duration_s=10", "training.slowdown=3.0"]
EVERY_4_S = [4.0 * i for i in range(50)]


def held_intervals(sim: Simulation, gpu: int = 0) -> list[tuple[float, float]]:
    """(start, end) of each job that held ``gpu``, from the training log (end inf if running)."""
    out: list[tuple[float, float]] = []
    for t, what, gpus in sim.training.log:
        if gpu in gpus:
            if what == "start":
                out.append((t, float("inf")))
            else:
                out[-1] = (out[-1][0], t)
    return out


def run(scenario, seed: int = 0) -> Simulation:
    sim = Simulation(scenario, seed=seed, record_timeline=True)
    sim.run()
    return sim


def test_a_replica_on_a_gpu_held_by_training_serves_slowdown_times_slower(story) -> None:
    """A query every 4 s on a 1-second server: a job whose service starts while a training
    job holds the GPU takes exactly 3 s (slowdown 3), every other exactly 1 s."""
    sim = run(story(GPU_SERVER, arrivals=EVERY_4_S, duration_s=200, overrides=TRAINING))
    held = held_intervals(sim)
    seen = set()
    for rec in sim.timeline:
        (stage,) = rec["stages"]
        shared = any(a <= stage["start"] < b for a, b in held)
        assert stage["end"] - stage["start"] == pytest.approx(3.0 if shared else 1.0)
        seen.add(shared)
    assert seen == {True, False}  # seed 0 serves both ways


def test_without_training_every_service_takes_its_plain_time(story) -> None:
    sim = run(story(GPU_SERVER, arrivals=EVERY_4_S, duration_s=200))
    assert sim.training.log == []
    assert {rec["stages"][0]["end"] - rec["stages"][0]["start"] for rec in sim.timeline} == {1.0}


def test_training_draws_come_from_their_own_stream(story) -> None:
    """Jobs with slowdown 1 change nothing a query sees: the training stream is separate."""
    plain = run(story(GPU_SERVER, arrivals=EVERY_4_S, duration_s=200))
    neutral = ["training.interarrival_s=20", "training.slowdown=1.0"]
    idle_jobs = run(story(GPU_SERVER, arrivals=EVERY_4_S, duration_s=200, overrides=neutral))
    assert idle_jobs.training.started > 0
    assert idle_jobs.timeline == plain.timeline


FOUR_GPUS = """
fabric: {enabled: false}
layers:
  server: {role: synthesizer, service: {kind: deterministic, rate: 1.0}}
stages: [{layer: server}]
nodes:
  - name: box
    count: 2
    devices: [a100-80gb, a100-80gb]
    agents: [{layer: server, device: 0}, {layer: server, device: 1}]
"""
BUSY = ["training.interarrival_s=5", "training.duration_s=30", "training.gpus=2"]


def test_jobs_hold_distinct_free_gpus_and_are_turned_away_when_too_few_are_free(story) -> None:
    """Two-GPU jobs on four GPUs, arriving faster than they leave: at most two run at once,
    never on the same GPU, and the rest are turned away."""
    sim = run(story(FOUR_GPUS, duration_s=2000, overrides=BUSY))
    held: set[int] = set()
    for _t, what, gpus in sim.training.log:
        assert len(gpus) == 2
        if what == "start":
            assert not held & set(gpus)
            held |= set(gpus)
        else:
            held -= set(gpus)
    assert sim.training.started > 10 and sim.training.turned_away > 10


def test_arrivals_and_holding_are_reproducible_with_a_seed(story) -> None:
    scenario = story(FOUR_GPUS, duration_s=2000, overrides=BUSY)
    first, again, other = run(scenario, 7), run(scenario, 7), run(scenario, 8)
    assert first.training.log == again.training.log
    assert first.training.log != other.training.log


def test_jobs_may_be_kept_to_named_node_groups(story) -> None:
    sim = run(story(FOUR_GPUS, duration_s=500, overrides=[*BUSY, "training.groups=[box]"]))
    assert sim.training.started > 0
    with pytest.raises(ConfigError, match=r"training\.groups"):
        story(FOUR_GPUS, overrides=["training.groups=[nowhere]"])

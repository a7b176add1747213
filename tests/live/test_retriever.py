"""The live retriever: a real faiss search that answers at the simulator's emulated search
time for the scenario's modelled index, and a worker that takes its index over the same
path as its device profile (no processes here; the swarm tests are test_swarm.py)."""

from __future__ import annotations

import numpy as np
import pytest

from live.backends import Retriever
from live.corpusfiles import CorpusFiles, write_corpus
from live.worker import Worker, WorkerSpec
from swarmsim.corpus import scenario_corpus
from swarmsim.profiles import load_profiles
from swarmsim.scenario_files import load_scenario
from swarmsim.service import retrieval_seconds

PROFILES = load_profiles()
SMALL = ["corpus.n_vectors=800", "corpus.n_queries=16", "warmup_s=0"]  # builds in no time


@pytest.fixture(scope="module")
def hot(tmp_path_factory):
    """The hot-shards scenario (400 M modelled vectors in shards 4:2:1:1) and its corpus."""
    path = tmp_path_factory.mktemp("corpus")
    scenario = load_scenario("hot-shards", SMALL)
    write_corpus(scenario_corpus(scenario.corpus), path)
    return scenario, CorpusFiles.load(path), path


@pytest.mark.parametrize("device", ["cpu-desktop", "l4"])
def test_a_search_is_due_when_the_cost_model_says_times_the_time_scale(hot, device):
    scenario, files, _ = hot
    ret, prof = scenario.retrieval, PROFILES.device(device)
    modelled = ret.shard_vectors(files.n_shards)
    for shard in range(files.n_shards):
        for scale in (1.0, 0.25):
            r = Retriever(files, shard, ret, prof, scale)
            job = r.start(np.asarray(files.queries[3], dtype=np.float32), now=100.0)
            want = retrieval_seconds(ret, modelled[shard], prof.scan_ns_per_dim) * scale
            assert job.due == pytest.approx(100.0 + want)
            assert not job.ready(100.0 + want * 0.99) and job.ready(100.0 + want)
    # the shards' modelled sizes set their costs: the big shard is the slow one
    waits = [Retriever(files, s, ret, prof, 1.0).emulated_s for s in range(files.n_shards)]
    assert waits[0] > waits[1] > waits[2] == pytest.approx(waits[3])


def test_the_answer_is_the_real_search_of_the_shard(hot):
    scenario, files, _ = hot
    r = Retriever(files, 1, scenario.retrieval, PROFILES.device("l4"), 1.0)
    q = np.asarray(files.queries[5], dtype=np.float32)
    out = r.start(q, now=0.0).value()
    rows = files.shard_rows(1)
    exact = rows[np.argsort(-(np.asarray(files.vectors[rows]) @ q), kind="stable")[: files.k]]
    assert out["shard"] == 1 and set(out["ids"]) == set(exact.tolist())
    assert out["scores"] == sorted(out["scores"], reverse=True)


def test_the_spec_carries_the_scenario_index_and_assign_is_validated(hot):
    scenario, files, path = hot
    spec = WorkerSpec(0, "", "retriever", "retriever", "l4", str(path), shard=0,
                      time_scale=0.5, retrieval=scenario.retrieval)  # fmt: skip
    back = WorkerSpec.from_json(spec.to_json())
    assert back == spec and back.retrieval.shard_weights == (4, 2, 1, 1)
    worker = Worker(back)
    assert isinstance(worker.backend, Retriever)
    cpu = PROFILES.device("cpu-desktop")
    ask = {"layer": "retriever", "role": "retriever", "shard": 2, "device": "cpu-desktop"}
    target = worker._target(ask)
    assert target.retrieval == scenario.retrieval  # an ASSIGN keeps the scenario's index
    moved = Worker(target).backend
    assert isinstance(moved, Retriever)
    n = scenario.retrieval.shard_vectors(files.n_shards)[2]
    assert moved.emulated_s == pytest.approx(
        retrieval_seconds(scenario.retrieval, n, cpu.scan_ns_per_dim) * 0.5
    )
    for bad in ({"shard": 4}, {"shard": -1}, {"device": "no-such-gpu"}, {"role": "oracle"}):
        with pytest.raises((KeyError, ValueError)):
            worker._target({**ask, **bad})

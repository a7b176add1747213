"""Live prefix caches: the emulated synthesizer's cache accounting, the wire's bound on block
hashes, and the coordinator's placement and per-replica overlap (no processes here; the swarm
test is test_kv_swarm.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from controllers.llm_routing import KvOverlap
from envs.llm_routing import REPLICA_FEATURES, LlmRoutingTask
from live.backends import EmulatedSynthesizer
from live.coordinator import Coordinator
from live.corpusfiles import CorpusFiles, write_corpus
from live.errors import ProtocolError
from live.protocol import CONTROL, DATA, MAX_PREFIX_BLOCKS, Message, prefix_blocks
from live.worker import WorkerSpec
from swarmsim.cluster import replica_capacity
from swarmsim.corpus import scenario_corpus
from swarmsim.kvcache import KVCache
from swarmsim.profiles import load_profiles
from swarmsim.scenario_files import load_scenario
from swarmsim.view import NO_AGENT

PROFILES = load_profiles()
DEVICE = PROFILES.device("rtx4080-super")


SMALL = ["corpus.n_vectors=500", "corpus.n_queries=16", "warmup_s=0"]  # builds in no time


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> CorpusFiles:
    path = tmp_path_factory.mktemp("corpus")
    write_corpus(scenario_corpus(load_scenario("prefix-cache", SMALL).corpus), path)
    return CorpusFiles.load(path)


def synth(files: CorpusFiles, capacity: int = 4) -> EmulatedSynthesizer:
    return EmulatedSynthesizer(files, DEVICE, "llm-small", 1.0, KVCache(capacity), 16)


def job(tin: int, blocks: list[int]) -> dict:
    return {"input_tokens": tin, "output_tokens": 10, "docs": [], "blocks": blocks}


def test_the_emulated_synthesizer_prefills_only_what_its_cache_missed(files):
    """Capacity 4 blocks of 16 tokens. [1, 2, 3] misses (cold), then is cached; [1, 2, 3, 4,
    5] finds its first three (48 tokens skip prefill) and, inserted last to first, loses its
    tail beyond the capacity: the cache holds 1..4, so [1, 2] hits both and [5] misses."""
    s = synth(files)
    perf = DEVICE.llm["llm-small"]
    first = s.start(job(100, [1, 2, 3]), now=10.0)
    assert first.due == pytest.approx(10.0 + 100 / perf.prefill_tok_s + 10 / perf.decode_tok_s)
    out = first.value()
    assert (out["cached"], out["kv_hits"], out["kv_lookups"]) == (0, 0, 3)
    assert out["kv_util"] == pytest.approx(3 / 4)
    second = s.start(job(100, [1, 2, 3, 4, 5]), now=20.0)
    assert second.due == pytest.approx(20.0 + 52 / perf.prefill_tok_s + 10 / perf.decode_tok_s)
    out = second.value()
    assert (out["cached"], out["kv_hits"], out["kv_lookups"]) == (48, 3, 8)
    assert out["prefill_s"] == pytest.approx(52 / perf.prefill_tok_s)
    assert list(s.kv.blocks) == [4, 3, 2, 1] and out["kv_util"] == 1.0  # LRU first
    assert s.start(job(100, [1, 2]), now=30.0).value()["cached"] == 32
    assert s.start(job(100, [5]), now=35.0).value()["cached"] == 0
    # the cached tokens never exceed the prompt (its own partial last block is not cached)
    assert s.start(job(20, [2, 3]), now=40.0).value()["cached"] == 20


def test_block_hashes_on_the_wire_are_bounded_and_typed(files):
    assert prefix_blocks({}) == ()
    assert prefix_blocks({"blocks": [-(2**63), 2**63 - 1]}) == (-(2**63), 2**63 - 1)
    for bad in ([1] * (MAX_PREFIX_BLOCKS + 1), [1, "2"], [True], [2**63], 7, {"a": 1}):
        with pytest.raises(ProtocolError):
            prefix_blocks({"blocks": bad})
    with pytest.raises(ProtocolError, match="blocks"):
        synth(files).start(job(100, [1.5]), now=0.0)  # type: ignore[list-item]


@pytest.fixture
def prefix_coord(files, launcher) -> Iterator[Coordinator]:
    """A prefix-cache coordinator with its four synthesizers running (in its tables only);
    what it sends to workers is kept in ``coord.sent``."""
    coord = Coordinator(load_scenario("prefix-cache", SMALL), files, launcher)
    coord.sent = []  # type: ignore[attr-defined]

    def send_worker(agent, msg: Message) -> bool:
        coord.sent.append((agent.id, msg))  # type: ignore[attr-defined]
        return True

    coord.send_worker = send_worker  # type: ignore[method-assign]
    for wid in range(4):
        spec = WorkerSpec(wid, "", "synth", "synthesizer", "rtx4080-super", "", model="llm-small")
        coord.roster.launch(spec)
        coord._worker_state(coord.agents[wid], Message(CONTROL, "READY", "", f"w{wid}", {}))
    try:
        yield coord
    finally:
        coord.close()


def test_replicas_are_sized_as_the_simulator_sizes_them(prefix_coord):
    coord = prefix_coord
    cfg = coord.scenario.layers["synth"]
    want = replica_capacity(cfg, DEVICE, PROFILES, 16)
    assert want == 1263  # (16 GB - the model's weights) / (16 tokens x KV bytes per token)
    assert coord.kv.capacity("synth", "rtx4080-super") == want
    assert {a: m.capacity for a, m in coord.kv.mirrors.items()} == dict.fromkeys(range(4), want)


def admit(coord: Coordinator, blocks: list[int]) -> None:
    payload = {"qclass": 0, "input_tokens": 16 * len(blocks) + 5, "output_tokens": 3,
               "pool": 0, "blocks": blocks}  # fmt: skip
    coord.pipeline.admit(b"client", Message(DATA, "QUERY", "t", "client", payload))


def test_kv_overlap_places_a_query_where_its_prefix_is_cached(prefix_coord):
    """Replica 2 answered a synthesis of blocks 1..6: its mirror holds them. A query whose
    prompt starts 1..4 overlaps 4 of its 5 blocks there and none elsewhere; kv-overlap
    (cost 1 - overlap + outstanding) places it on replica 2, with its blocks on the wire."""
    coord = prefix_coord
    coord.kv.served(2, [1, 2, 3, 4, 5, 6])
    coord.controls.attach("llm-routing", KvOverlap(), "llm-routing=kv-overlap")
    admit(coord, [1, 2, 3, 4, 99])
    query = next(iter(coord.active.values()))
    view = coord.view(query, ("synthesizer",), False)
    assert (view.query.blocks, view.query.layer) == (5, 0)
    assert view.query.overlap.tolist() == [0, 0, 4, 0]
    obs = LlmRoutingTask().observe(view)
    assert obs[2 * REPLICA_FEATURES + 3] == pytest.approx(4 / 5)  # slot 2's overlap fraction
    (agent, msg), *_ = [s for s in coord.sent if s[1].action == "SYNTH"]
    assert agent == 2 and msg.payload["blocks"] == [1, 2, 3, 4, 99]
    assert coord.slots["llm-routing"].decisions == 1 and query.id not in coord.pipeline.placing


def test_place_refuses_what_the_simulator_refuses_and_a_bad_choice_falls_back(prefix_coord):
    coord = prefix_coord
    admit(coord, [7])  # no controller: the layer's rule sends it at once
    assert [s[1].action for s in coord.sent] == ["SYNTH"]
    with pytest.raises(ValueError, match="not waiting for a synthesizer replica"):
        coord.place(0, 1)
    query = next(iter(coord.active.values()))
    coord.pipeline.placing[query.id] = query
    with pytest.raises(ValueError, match="agent 9 is not an accepting replica of layer synth"):
        coord.place(query.id, 9)

    class BadChoice:
        active = True

        def decide(self, swarm, q) -> None:
            swarm.place(q.id, 9)

    coord.controls.place_slot = BadChoice()  # type: ignore[assignment]
    coord.controls.decide_place(query)
    assert coord.counts["bad_plans"] == 1 and query.id not in coord.pipeline.placing
    # the fallback, place(NO_AGENT): the layer's rule sent it
    assert [s[1].action for s in coord.sent] == ["SYNTH", "SYNTH"]
    coord.pipeline.placing[query.id] = query
    coord.place(query.id, NO_AGENT)
    assert [s[1].action for s in coord.sent] == ["SYNTH"] * 3


def test_answers_update_the_mirror_the_hit_counts_and_ttft(prefix_coord):
    """The worker's answer carries its cache's counts and utilisation (the summary's hit rate
    and the view's kv_util), the tokens it found cached (the stage row) and its prefill time
    (time to first token = service start + prefill)."""
    coord = prefix_coord
    coord.record = True
    admit(coord, [1, 2, 3])
    query = next(iter(coord.active.values()))
    (agent, msg), *_ = coord.sent
    answer = {"answer": "", "cached": 32, "prefill_s": 0.25, "service_s": 1.0, "wait_s": 0.0,
              "kv_util": 0.5, "kv_hits": 2, "kv_lookups": 3}  # fmt: skip
    coord._job_answer(coord.agents[agent], Message("RESPONSE", "DONE", msg.task, "w", answer))
    assert coord.kv.mirrors[agent].peek([1, 2, 3]) == 3
    assert coord.kv.summary()["per_replica"][str(agent)] == pytest.approx(2 / 3)
    assert coord.view().agents.kv_util[agent] == 0.5
    (row,) = coord.recording()
    assert row["stages"][0]["cached"] == 32
    assert query.first_token == pytest.approx(row["stages"][0]["start"] + 0.25, abs=1e-9)
    assert np.isclose(coord.metrics.ttfts[0], query.first_token - query.arrival)


def test_pending_counts_the_prompts_sent_to_a_replica_and_not_yet_answered(prefix_coord):
    """A conversation's next turn arrives while its previous turn is still on replica 1:
    nothing is cached yet (overlap 0 everywhere), but the prompt in flight there shares 3
    leading blocks, as the simulator counts a prompt queued on a replica."""
    coord = prefix_coord
    admit(coord, [1, 2, 3])  # the layer's rule sends it to some replica, answer pending
    (agent, _msg), *_ = coord.sent
    admit(coord, [1, 2, 3, 4])
    second = list(coord.active.values())[-1]
    view = coord.view(second, ("synthesizer",), False)
    assert view.query.overlap.tolist() == [0, 0, 0, 0]
    want = [3 if i == agent else 0 for i in range(4)]
    assert view.query.pending.tolist() == want  # its own job in flight does not count
    obs = LlmRoutingTask().observe(view)
    assert obs[agent * REPLICA_FEATURES + 7] == pytest.approx(3 / 4)

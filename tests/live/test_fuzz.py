"""Property-based fuzzing of what the network can send: the frame decoder raises only
ProtocolError (never another exception, never a hang), and the coordinator's handlers,
given any well-formed message with any payload, never raise."""

from __future__ import annotations

import contextlib

import msgpack
import numpy as np
import pytest
from fakes import NoLauncher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from live import protocol
from live.coordinator import Coordinator
from live.corpusfiles import CorpusFiles, write_corpus
from live.errors import ProtocolError
from live.limits import search_answer
from live.protocol import ACTIONS, CONTROL, DATA, RESPONSE, VERSION, Message, decode, encode
from live.state import Agent
from live.worker import WorkerSpec
from swarmsim.corpus import scenario_corpus
from swarmsim.query import AgentState
from swarmsim.scenario import Scenario
from swarmsim.scenario_files import load_scenario

FAST = settings(max_examples=300, deadline=500)  # a 500 ms deadline per example: no hang

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)
GOOD_HEADER = {"v": VERSION, "type": DATA, "action": "QUERY", "task": "t", "sender": "c",
               "ts": 1.0, "deadline": None, "enc": "msgpack"}  # fmt: skip
messages = st.builds(
    lambda kind, data, task, payload, deadline: Message(
        kind, data.draw(st.sampled_from(sorted(ACTIONS[kind]))), task, "peer", payload,
        deadline=deadline,
    ),
    st.sampled_from(sorted(ACTIONS)),
    st.data(),
    st.text(max_size=10),
    values,
    st.none() | st.floats(allow_nan=True),
)  # fmt: skip


def refused_or_decoded(frames: list[bytes]) -> None:
    with contextlib.suppress(ProtocolError):  # anything else fails the test
        decode(frames)


@FAST
@given(st.lists(st.binary(max_size=64), max_size=6))
def test_arbitrary_frame_lists(frames):
    refused_or_decoded(frames)


@FAST
@given(messages, st.data())
def test_mutated_valid_frames(msg, data):
    frames = encode(msg)
    which = data.draw(st.integers(0, len(frames) - 1))
    frame = bytearray(frames[which])
    mutation = data.draw(st.sampled_from(["flip", "truncate", "append", "extra", "drop"]))
    if mutation == "flip" and frame:
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    elif mutation == "truncate":
        frame = frame[: data.draw(st.integers(0, len(frame)))]
    elif mutation == "append":
        frame += data.draw(st.binary(min_size=1, max_size=16))
    frames[which] = bytes(frame)
    if mutation == "extra":
        frames.insert(data.draw(st.integers(0, len(frames))), data.draw(st.binary(max_size=8)))
    elif mutation == "drop":
        del frames[which]
    refused_or_decoded(frames)


@FAST
@given(st.sampled_from(sorted(GOOD_HEADER)), values, values)
def test_wrong_header_field_types_and_versions(key, value, payload):
    head = msgpack.packb({**GOOD_HEADER, key: value}, use_bin_type=True)
    refused_or_decoded([head, msgpack.packb(payload, use_bin_type=True)])


@FAST
@given(
    st.sampled_from([*sorted(protocol.DTYPES), "object", "float16"]) | values,
    st.lists(st.integers(min_value=-1, max_value=2**63 - 1), max_size=5) | values,
    st.binary(max_size=256),
)
def test_array_length_and_shape_mismatches(dtype, shape, body):
    head = {**GOOD_HEADER, "type": DATA, "action": "SEARCH", "enc": "ndarray"}
    refused_or_decoded([msgpack.packb({**head, "dtype": dtype, "shape": shape}), body])


@FAST
@given(st.binary(max_size=128), st.binary(max_size=128))
def test_garbage_msgpack(head, body):
    refused_or_decoded([head, body])
    refused_or_decoded([msgpack.packb(GOOD_HEADER), body])


def test_oversized_and_deeply_nested_frames_are_refused():
    cases = [
        [msgpack.packb(GOOD_HEADER), b"\x00" * (protocol.MAX_MESSAGE_BYTES + 1)],
        [b"\x81" * (protocol.MAX_HEADER_BYTES + 1), b""],
        [msgpack.packb(GOOD_HEADER), b"\x91" * 100_000],  # a list in a list ... 100,000 deep
    ]
    for frames in cases:
        try:
            decode(frames)
        except ProtocolError:
            continue
        raise AssertionError(f"accepted {frames[0][:20]!r}")


@FAST
@given(values)
def test_a_search_answer_of_any_shape_yields_only_corpus_hits(p):
    hits = search_answer(p if isinstance(p, dict) else {"ids": p, "scores": p}, 10, 100)
    assert all(isinstance(d, int) and 0 <= d < 100 and np.isfinite(s) for s, d in hits)


@FAST
@given(values)
def test_an_agent_takes_only_well_typed_load_reports(p):
    agent = Agent(0, "l", "r", -1, "", "cpu", 0, AgentState.RUNNING, 0.0, 0.0)
    agent.report(p if isinstance(p, dict) else {"busy_s": p, "queue": p, "kv_util": p})
    assert 0 <= agent.queue <= 256 and 0 <= agent.busy_s < np.inf and 0 <= agent.kv_util <= 1


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Scenario, CorpusFiles]:
    scenario = load_scenario("homelab")
    path = tmp_path_factory.mktemp("corpus")
    write_corpus(scenario_corpus(scenario.corpus), path)
    return scenario, CorpusFiles.load(path)


def _running(coord) -> None:
    """An agent per layer of homelab (one retriever per shard), running in the tables."""
    coord.send_worker = lambda agent, msg: True
    wid = 0
    for layer, cfg in coord.scenario.layers.items():
        shards = range(coord.files.n_shards) if cfg.role == "retriever" else [-1]
        for shard in shards:
            spec = WorkerSpec(wid, "", layer, cfg.role, "rtx4080-super", "", shard=shard,
                              model=cfg.model or "")  # fmt: skip
            coord.roster.launch(spec)
            coord.roster.ready(coord.agents[wid], layer, cfg.role, shard)
            wid += 1


VALID = {"qclass": 0, "input_tokens": 10, "output_tokens": 5, "pool": 0}
steps = st.tuples(
    st.just(VALID) | values | st.dictionaries(st.sampled_from(sorted(VALID)), values),
    st.none() | st.floats(),  # the query's header deadline
    st.integers(0, 1000),  # which job a worker answers
    st.sampled_from(["DONE", "FAILED"]),
    values,  # its answer
    st.sampled_from(["READY", "HEARTBEAT"]),
    values,  # a heartbeat's load report
    st.sampled_from(["STATUS", "DETACH", "REPORT", "STOP"]),
    values,  # an operator's request
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(steps, min_size=1, max_size=6))
def test_the_coordinators_handlers_survive_any_payload(corpus, script):
    """Clients, workers (answering real jobs with any payload) and operators: no exception,
    and every query admitted is still accounted for."""
    coord = Coordinator(*corpus, NoLauncher())
    try:
        _running(coord)
        for query, deadline, pick, action, answer, beat, report, request, body in script:
            coord._from_client(
                b"client", Message(DATA, "QUERY", "t", "c", query, deadline=deadline)
            )
            jobs = [(a, jid) for a in coord.agents.values() for jid in a.jobs]
            if jobs:
                agent, jid = jobs[pick % len(jobs)]
                coord._from_worker(agent.ident, Message(RESPONSE, action, jid, "w", answer))
            coord._from_worker(b"w0", Message(CONTROL, beat, "", "w0", report))
            coord.controls.request(b"op", Message(CONTROL, request, "r", "op", body))
            coord.housekeeping()
        q = coord.metrics.query_summary()
        assert q["submitted"] == q["completed"] + q["failed"] + q["dropped"] + len(coord.active)
    finally:
        coord.close()

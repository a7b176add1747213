"""The wire protocol: round trips, the textual form, and every malformed input refused."""

from __future__ import annotations

import pickle

import msgpack
import numpy as np
import pytest

from live.errors import ProtocolError
from live.protocol import (
    CONTROL,
    DATA,
    MAX_MESSAGE_BYTES,
    RESPONSE,
    VERSION,
    Message,
    decode,
    encode,
    render,
)


def test_msgpack_payload_round_trip():
    msg = Message(DATA, "QUERY", "task_42", "client", {"pool": 3, "text": "hi"}, 1.5, 9.0)
    assert decode(encode(msg)) == msg


def test_array_payload_round_trip_keeps_dtype_and_shape():
    vec = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = decode(encode(Message(DATA, "SEARCH", "1.1.0.1", "coordinator", vec)))
    assert out.payload.dtype == np.float32 and out.payload.shape == (3, 4)
    np.testing.assert_array_equal(out.payload, vec)


def test_textual_form():
    msg = Message(DATA, "QUERY", "task_id_42", "client", {"pool": 7})
    assert render(msg) == "DATA:QUERY:task_id_42:{pool:7}"
    vec = Message(RESPONSE, "DONE", "t", "w1", np.zeros(384, dtype=np.float32))
    assert render(vec) == "RESPONSE:DONE:t:<float32[384]>"


def _header(**changes) -> bytes:
    head = {
        "v": VERSION,
        "type": CONTROL,
        "action": "HEARTBEAT",
        "task": "",
        "sender": "w1",
        "ts": 1.0,
        "deadline": None,
        "enc": "msgpack",
    }
    head.update(changes)
    return msgpack.packb({k: v for k, v in head.items() if v is not KeyError})


@pytest.mark.parametrize(
    ("frames", "reason"),
    [
        ([b"x"], "frames"),
        ([b"x", b"y", b"z"], "frames"),
        ([b"\xc1garbage", b"\xc0"], "header"),
        ([msgpack.packb([1, 2]), b"\xc0"], "header"),
        ([_header(v=99), b"\xc0"], "version"),
        ([_header(v=KeyError), b"\xc0"], "version"),
        ([_header(type="SHOUT"), b"\xc0"], "action"),
        ([_header(action="DESTROY"), b"\xc0"], "action"),
        ([_header(task=5), b"\xc0"], "header"),
        ([_header(ts="now"), b"\xc0"], "header"),
        ([_header(deadline="soon"), b"\xc0"], "header"),
        ([_header(enc="pickle"), pickle.dumps({"a": 1})], "header"),
        ([_header(), b"\xc1"], "payload"),
        ([_header(enc="ndarray", dtype="object", shape=[1]), b"\x00" * 8], "payload"),
        ([_header(enc="ndarray", dtype="float32", shape=[4]), b"\x00" * 15], "payload"),
        ([_header(enc="ndarray", dtype="float32", shape="4"), b"\x00" * 16], "payload"),
        ([_header(), b"\x00" * (MAX_MESSAGE_BYTES + 1)], "oversized"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(frames, reason):
    with pytest.raises(ProtocolError) as err:
        decode(frames)
    assert err.value.reason == reason


class Canary:
    """Unpickling this would leave a mark: the protocol must never do it."""

    fired = False

    def __reduce__(self):
        return (Canary._fire, ())

    @staticmethod
    def _fire():
        Canary.fired = True
        return "fired"


def test_a_pickle_is_never_unpickled():
    for frames in ([pickle.dumps(Canary()), b"\xc0"], [_header(), pickle.dumps(Canary())]):
        with pytest.raises(ProtocolError):
            decode(frames)
    assert not Canary.fired

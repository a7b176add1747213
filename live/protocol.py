"""The wire protocol: versioned multipart frames, validated on every receive.

A message is two frames (a ROUTER prepends the peer's identity on receive and strips it on
send): a msgpack **header** map and a **payload**. The header carries the protocol version,
the message type (Control / Data / Response), the action, the task id, the sender id, a
timestamp and an optional deadline; the payload is msgpack, or the raw bytes of a numpy array
whose dtype and shape sit in the header. ``render`` gives the design's textual form
``TYPE:ACTION:TASK_ID:PAYLOAD`` for logs.

Nothing here trusts the network: ``decode`` checks the frame count, sizes, version, every
header field's type and the array's byte length, and raises :class:`ProtocolError` (whose
``reason`` names the counter) instead of asserting. Nothing is ever unpickled.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from .errors import ProtocolError

VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # header + payload; also set as the socket's MAXMSGSIZE
MAX_HEADER_BYTES = 4096
MAX_FRAMES = 2  # header, payload (after the identity frame a ROUTER adds)

CONTROL, DATA, RESPONSE = "CONTROL", "DATA", "RESPONSE"
ACTIONS: dict[str, frozenset[str]] = {
    # READY: a worker joined (or finished a role change); HEARTBEAT: alive, with its load;
    # ASSIGN: play another role; STOP: exit cleanly. From an operator (``swarmsim live``):
    # STATUS, ATTACH / DETACH a controller, REPORT on shadow and A/B comparisons, INJECT a
    # fault. FAULT: to a worker, hang or slow down (an injected fault, ``live.faults``).
    # NODE_BEAT: a node supervisor's heartbeats of all its workers in one (``live.nodebeat``).
    CONTROL: frozenset(
        {
            *("READY", "HEARTBEAT", "ASSIGN", "STOP", "FAULT", "NODE_BEAT"),
            *("STATUS", "ATTACH", "DETACH", "REPORT", "INJECT"),
        }
    ),
    # QUERY: a client's question; the rest are one pipeline stage's work for a worker.
    DATA: frozenset({"QUERY", "EMBED", "SEARCH", "SYNTH", "EVAL"}),
    # DONE / FAILED: the outcome of a stage or of a whole query; ERROR: a message was refused.
    RESPONSE: frozenset({"DONE", "FAILED", "ERROR"}),
}
# A query's prompt prefix-block hashes (``blocks`` of a QUERY and of a SYNTH job): at most
# this many (a 131,072-token prompt at vLLM's 16 tokens per block), each a signed 64-bit int
MAX_PREFIX_BLOCKS = 8192
HASH_MIN, HASH_MAX = -(2**63), 2**63 - 1
DTYPES = frozenset({"float32", "float64", "int32", "int64"})  # arrays we accept on the wire
_ITEMSIZE = {name: np.dtype(name).itemsize for name in DTYPES}
_DTYPE_NAME = {np.dtype(name): name for name in DTYPES}  # dtype.name is slow per message


@dataclass(frozen=True)
class Message:
    """One protocol message; ``payload`` is msgpack-able data or a numpy array."""

    type: str
    action: str
    task: str
    sender: str
    payload: Any = None
    ts: float = field(default_factory=time.time)
    deadline: float | None = None  # wall-clock epoch seconds, like ``ts``

    def to_dict(self) -> dict[str, Any]:
        """The header as a plain dict (for traces and logs)."""
        return {
            "type": self.type,
            "action": self.action,
            "task": self.task,
            "sender": self.sender,
            "ts": self.ts,
            "deadline": self.deadline,
        }


def encode(msg: Message) -> list[bytes]:
    """The header and payload frames of ``msg``."""
    header = {"v": VERSION, "type": msg.type, "action": msg.action, "task": msg.task,
              "sender": msg.sender, "ts": msg.ts, "deadline": msg.deadline}  # fmt: skip
    if isinstance(msg.payload, np.ndarray):
        arr = np.ascontiguousarray(msg.payload)
        dtype = _DTYPE_NAME.get(arr.dtype) or arr.dtype.name
        header |= {"enc": "ndarray", "dtype": dtype, "shape": list(arr.shape)}
        body = arr.tobytes()
    else:
        header["enc"] = "msgpack"
        body = msgpack.packb(msg.payload, use_bin_type=True)
    return [msgpack.packb(header, use_bin_type=True), body]


# exact types (``type(x) in``): msgpack decodes to no subclass, and a bool is not an int here
_HEADER_TYPES: dict[str, tuple[type, ...]] = {
    "v": (int,),
    "type": (str,),
    "action": (str,),
    "task": (str,),
    "sender": (str,),
    "ts": (float, int),
    "enc": (str,),
}
_NUMBER = (float, int)


def decode(frames: list[bytes]) -> Message:
    """Validate and decode a header and payload; raises :class:`ProtocolError`."""
    if len(frames) != MAX_FRAMES:
        raise ProtocolError("frames", f"expected {MAX_FRAMES} frames, got {len(frames)}")
    head, body = frames
    size = len(head) + len(body)
    if size > MAX_MESSAGE_BYTES or len(head) > MAX_HEADER_BYTES:
        raise ProtocolError("oversized", f"{size} bytes (limit {MAX_MESSAGE_BYTES})")
    header = _unpack(head, "header")
    if not isinstance(header, dict):
        raise ProtocolError("header", f"header is a {type(header).__name__}, not a map")
    if header.get("v") != VERSION:
        raise ProtocolError("version", f"protocol version {header.get('v')!r}, want {VERSION}")
    get = header.get
    for key, types in _HEADER_TYPES.items():
        if type(get(key)) not in types:
            raise ProtocolError("header", f"field {key!r} is {get(key)!r}")
    kind, action = header["type"], header["action"]
    if action not in ACTIONS.get(kind, ()):
        raise ProtocolError("action", f"unknown type/action {kind}:{action}")
    deadline = get("deadline")
    if deadline is not None and type(deadline) not in _NUMBER:
        raise ProtocolError("header", f"field 'deadline' is {deadline!r}")
    payload = _payload(header, body)
    return Message(
        kind, action, header["task"], header["sender"], payload, float(header["ts"]), deadline
    )


def _unpack(data: bytes, what: str) -> Any:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.UnpackException) as err:
        raise ProtocolError(what, f"not valid msgpack ({err.__class__.__name__})") from None


def _payload(header: dict, body: bytes) -> Any:
    if header["enc"] == "msgpack":
        return _unpack(body, "payload")
    if header["enc"] != "ndarray":
        raise ProtocolError("header", f"unknown payload encoding {header['enc']!r}")
    dtype, shape = header.get("dtype"), header.get("shape")
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise ProtocolError("payload", f"array dtype {dtype!r} not accepted")
    if not (
        isinstance(shape, list)
        and len(shape) <= 4
        and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ProtocolError("payload", f"array shape {shape!r} is not a list of sizes")
    if math.prod(max(n, 1) for n in shape) * _ITEMSIZE[dtype] > MAX_MESSAGE_BYTES:
        raise ProtocolError("payload", f"array shape {shape} is larger than any message")
    want = math.prod(shape) * _ITEMSIZE[dtype]
    if want != len(body):
        raise ProtocolError("payload", f"{shape} {dtype} needs {want} bytes, got {len(body)}")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def prefix_blocks(payload: dict[str, Any]) -> tuple[int, ...]:
    """The payload's ``blocks`` (absent: none), checked: a list of at most
    ``MAX_PREFIX_BLOCKS`` signed 64-bit integers; raises :class:`ProtocolError`."""
    blocks = payload.get("blocks", ())
    if not isinstance(blocks, list | tuple) or len(blocks) > MAX_PREFIX_BLOCKS:
        size = len(blocks) if isinstance(blocks, list | tuple) else type(blocks).__name__
        raise ProtocolError("payload", f"blocks: a list of <= {MAX_PREFIX_BLOCKS}, got {size}")
    for h in blocks:
        if not (isinstance(h, int) and not isinstance(h, bool) and HASH_MIN <= h <= HASH_MAX):
            raise ProtocolError("payload", f"blocks: {h!r} is not a 64-bit block hash")
    return tuple(blocks)


def render(msg: Message, limit: int = 120) -> str:
    """The textual form ``TYPE:ACTION:TASK_ID:PAYLOAD`` (payload shortened to ``limit``)."""
    if isinstance(msg.payload, np.ndarray):
        body = f"<{msg.payload.dtype.name}{list(msg.payload.shape)}>"
    else:
        body = msgpack_text(msg.payload)
    if len(body) > limit:
        body = body[: limit - 3] + "..."
    return f"{msg.type}:{msg.action}:{msg.task}:{body}"


def msgpack_text(payload: Any) -> str:
    """A compact JSON-like rendering of a msgpack payload (bytes shown by length)."""
    if isinstance(payload, dict):
        return "{" + ",".join(f"{k}:{msgpack_text(v)}" for k, v in payload.items()) + "}"
    if isinstance(payload, list | tuple):
        return "[" + ",".join(msgpack_text(v) for v in payload) + "]"
    if isinstance(payload, bytes):
        return f"<{len(payload)} bytes>"
    return repr(payload) if isinstance(payload, str) else str(payload)

"""A rogue peer, for tests and experiments: a separate process that sends truncated, extra,
oversized, wrong-version, garbage, ill-typed and hostile-but-well-formed frames to each
socket a swarm binds, and counts what comes back.

Run as ``python -m live.rogue --address ADDR [--address ADDR ...] --messages N
[--rotate K] [--seed S] [--flood]``: it cycles over the addresses, under one identity per
address or a fresh one every ``K`` messages (a rogue dodging a per-identity ban), and waits
at most a second for room in a full queue (then the message is counted unsent). With
``--flood`` every message is a valid QUERY instead, sent as fast as the socket takes it (a
client sending faster than it is served). It prints a progress line to stderr every tenth
of the run, and one JSON line of counts when done.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable

import msgpack
import zmq

from .protocol import MAX_MESSAGE_BYTES, VERSION

OVERSIZED_EVERY = 5000  # one frame past the socket's limit this often (libzmq then drops the
# connection, and the DEALER reconnects)
WAIT_MS = 1000  # how long a message waits for room in a full queue before it is dropped
FLOOD_QUERY = msgpack.packb({"qclass": 0, "input_tokens": 10, "output_tokens": 5, "pool": 0})
HEADER = {"v": VERSION, "type": "DATA", "action": "QUERY", "task": "r", "sender": "rogue",
          "ts": 0.0, "deadline": None, "enc": "msgpack"}  # fmt: skip


def _pack(obj: object) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def _header(**changes: object) -> bytes:
    return _pack({**HEADER, **changes})


def _hostile(rng: random.Random) -> list[bytes]:
    """Well-formed frames asking for what no one may have."""
    payload = rng.choice([
        {"qclass": 0, "input_tokens": 10**12, "output_tokens": 1, "pool": 0},
        {"qclass": 10**6, "input_tokens": 1, "output_tokens": 1, "pool": -1},
        {"qclass": 0, "input_tokens": 1, "output_tokens": 1, "pool": 0, "blocks": [1] * 9000},
        {"qclass": 0, "input_tokens": 1, "output_tokens": 1, "pool": 0, "x": "y" * 1000},
    ])  # fmt: skip
    return [_header(task="t" * rng.choice([1, 1000])), _pack(payload)]


KINDS: dict[str, Callable[[random.Random], list[bytes]]] = {
    "truncated": lambda rng: [_header()],
    "extra": lambda rng: [_header(), _pack({}), b"x", b"y"],
    "version": lambda rng: [_header(v=rng.choice([0, 2, "1", None])), _pack({})],
    "garbage": lambda rng: [rng.randbytes(rng.randint(0, 64)), rng.randbytes(8)],
    "types": lambda rng: [_header(**{rng.choice(list(HEADER)): rng.choice([5, [], {}, "x"])}), b""],
    "array": lambda rng: [_header(enc="ndarray", dtype="float32", shape=[4]), rng.randbytes(3)],
    "action": lambda rng: [_header(type="CONTROL", action=rng.choice(["STOP", "ASSIGN", "X"])),
                           _pack({"layer": "x", "role": "y"})],
    "hostile": _hostile,
}  # fmt: skip


class Rogue:
    """The rogue's sockets (one per address, re-made under a new identity on rotation)."""

    def __init__(self, addresses: list[str], rotate: int, seed: int, flood: bool = False) -> None:
        self.ctx = zmq.Context()
        self.addresses, self.rotate, self.rng = addresses, rotate, random.Random(seed)
        self.flood = flood
        self.socks: list[zmq.Socket] = [self._socket(a, 0) for a in addresses]
        self.poller = zmq.Poller()
        for sock in self.socks:
            self.poller.register(sock, zmq.POLLIN)
        self.counts = {"sent": 0, "unsent": 0, "replies": 0, "identities": len(addresses)}
        self.by_kind = dict.fromkeys([*KINDS, "oversized", "flood"], 0)

    def _socket(self, address: str, n: int) -> zmq.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 1000)
        sock.setsockopt(zmq.IDENTITY, f"rogue-{n}-{self.rng.getrandbits(32):08x}".encode())
        sock.connect(address)
        return sock

    def send(self, i: int) -> None:
        """The ``i``-th message, to the ``i``-th address in turn."""
        slot = i % len(self.socks)
        if self.rotate and i and i % self.rotate == 0:
            self._renew(slot, i)
        kind = "oversized" if i % OVERSIZED_EVERY == OVERSIZED_EVERY - 1 else None
        if self.flood:
            kind, frames = "flood", [_header(task=str(i)), FLOOD_QUERY]
        elif kind is None:
            kind = self.rng.choice(list(KINDS))
            frames = KINDS[kind](self.rng)
        else:
            frames = [_header(), b"\0" * (MAX_MESSAGE_BYTES + 1)]  # past every socket's limit
        sock = self.socks[slot]
        if not sock.poll(WAIT_MS, zmq.POLLOUT):  # its queue is full: the peer is not reading
            self.counts["unsent"] += 1
            return
        sock.send_multipart(frames, zmq.NOBLOCK)
        self.counts["sent"] += 1
        self.by_kind[kind] += 1

    def _renew(self, slot: int, i: int) -> None:
        old = self.socks[slot]
        self.poller.unregister(old)
        old.close(linger=1000)  # its queued messages still go (a rogue wants them read)
        self.socks[slot] = self._socket(self.addresses[slot], i)
        self.poller.register(self.socks[slot], zmq.POLLIN)
        self.counts["identities"] += 1

    def read(self, timeout_ms: int = 0) -> None:
        """Take every reply waiting (counted, never parsed)."""
        for sock, _ in self.poller.poll(timeout_ms):
            while True:
                try:
                    sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.counts["replies"] += 1

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def run(
    addresses: list[str], messages: int, rotate: int, seed: int, flood: bool = False
) -> dict[str, object]:
    """Send ``messages`` rogue (or ``flood``) messages over ``addresses``; the counts."""
    rogue = Rogue(addresses, rotate, seed, flood)
    start, step = time.monotonic(), max(messages // 10, 1)
    try:
        for i in range(messages):
            rogue.send(i)
            if i % 100 == 0:
                rogue.read()
            if (i + 1) % step == 0:
                rate = (i + 1) / max(time.monotonic() - start, 1e-9)
                print(f"rogue: {i + 1}/{messages} sent ({rate:.0f}/s)", file=sys.stderr)
        rogue.read(200)
    finally:
        rogue.close()
    return {**rogue.counts, "kinds": rogue.by_kind, "seconds": time.monotonic() - start}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m live.rogue")
    parser.add_argument(
        "--address", action="append", required=True, help="a bound socket (repeatable)"
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--rotate",
        type=int,
        default=0,
        help="a fresh identity every K messages (0: one per address)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flood", action="store_true", help="valid QUERYs, as fast as taken")
    args = parser.parse_args(argv)  # fmt: skip
    print(json.dumps(run(args.address, args.messages, args.rotate, args.seed, args.flood)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

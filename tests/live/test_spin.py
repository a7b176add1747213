"""``LiveConfig.spin_s``: after traffic the coordinator polls without sleeping, for at most
that long and never past its poll timeout; without traffic it blocks, spending no CPU."""

from __future__ import annotations

import time

import pytest
import zmq

from live.config import LiveConfig
from live.protocol import CONTROL, Message
from live.sockets import dealer, send
from swarmsim.errors import SwarmError


def _poll(coord, timeout_s: float) -> tuple[float, float, dict]:
    wall, cpu = time.monotonic(), time.process_time()
    events = coord._poll(timeout_s)
    return time.monotonic() - wall, time.process_time() - cpu, events


def test_it_spins_after_traffic_and_blocks_without(offline) -> None:
    coord = offline
    coord.cfg = LiveConfig(spin_s=0.2)
    wall, cpu, events = _poll(coord, 0.1)  # no traffic yet: blocks for the timeout
    assert events == {} and 0.09 <= wall < 0.5 and cpu < 0.05
    ctx = zmq.Context()
    try:
        peer = dealer(ctx, coord.client_address, b"client-1")
        send(peer, Message(CONTROL, "STATUS", "", "client"))
        wall, _, events = _poll(coord, 5.0)
        assert coord.clients in events and wall < 1.0
        coord.clients.recv_multipart()
        wall, cpu, events = _poll(coord, 0.1)  # traffic just now: spins to the timeout
        assert events == {} and 0.09 <= wall < 0.5 and cpu > 0.25 * wall
        time.sleep(0.25)
        wall, cpu, events = _poll(coord, 0.1)  # the spin window passed: blocks again
        assert events == {} and cpu < 0.05
    finally:
        ctx.destroy(linger=0)


def test_spin_is_validated() -> None:
    with pytest.raises(SwarmError, match="spin_s"):
        LiveConfig(spin_s=-1)

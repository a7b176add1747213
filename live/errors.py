"""Errors raised by the live runtime."""

from __future__ import annotations

from swarmsim.errors import SwarmError


class ProtocolError(SwarmError, ValueError):
    """An inbound message broke the wire protocol; ``reason`` is the counter it lands in."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


class LiveError(SwarmError, RuntimeError):
    """The live swarm could not start or keep running (a worker never came up, ...)."""

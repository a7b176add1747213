"""Messages of the swarm: Control, Data and Response, each with the design's header.

The header is ``type, action, task id, sender id, timestamp``; the textual rendering
``TYPE:ACTION:TASK_ID:PAYLOAD`` is for logs. The simulator carries no payload, only its size
in bytes, which is what the fabric's delays depend on.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fabric import MessageSizes
    from .query import Query


class MessageType(IntEnum):
    CONTROL = 0
    DATA = 1
    RESPONSE = 2


class Message:
    """One message on the fabric: header fields plus the payload size in bytes."""

    __slots__ = ("action", "dst", "sender", "size", "task_id", "timestamp", "type")

    def __init__(
        self,
        type: MessageType,
        action: str,
        task_id: int,
        sender: int,
        timestamp: float,
        size: int,
        dst: int = -1,
    ) -> None:
        self.type = type
        self.action = action
        self.task_id = task_id
        self.sender = sender
        self.timestamp = timestamp
        self.size = size
        self.dst = dst

    def render(self, payload: str = "") -> str:
        """The human-readable form ``TYPE:ACTION:TASK_ID:PAYLOAD``."""
        return f"{self.type.name}:{self.action}:task_id_{self.task_id}:{payload}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type.name,
            "action": self.action,
            "task_id": self.task_id,
            "sender": self.sender,
            "dst": self.dst,
            "timestamp": self.timestamp,
            "size": self.size,
        }


def request_bytes(sizes: MessageSizes, role: str, query: Query) -> int:
    """Bytes of the message that sends ``query``'s work to an agent of ``role``."""
    if role == "embedder":
        return sizes.header + sizes.query
    if role == "retriever":
        return sizes.header + sizes.embedding
    if role == "synthesizer":
        return sizes.header + query.input_tokens * sizes.per_token
    return sizes.header + query.output_tokens * sizes.per_token


def response_bytes(sizes: MessageSizes, role: str, query: Query, k: int) -> int:
    """Bytes of an agent's answer to ``query``'s work (``k`` documents from a retriever)."""
    if role == "embedder":
        return sizes.header + sizes.embedding
    if role == "retriever":
        return sizes.header + k * sizes.document
    if role == "synthesizer":
        return sizes.header + query.output_tokens * sizes.per_token
    return sizes.header + sizes.control

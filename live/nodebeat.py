"""The coordinator's side of node supervisors (``live.supervisor``): one NODE_BEAT per node
per heartbeat interval stands for every local worker's HEARTBEAT, and one coordinator beat
per node stands for one per worker, so the control message rate grows with nodes, not agents.

A supervisor's DEALER identity is ``n<index>``. Its NODE_BEAT payload is a map with
``entries`` (at most ``MAX_NODE_ENTRIES``; each a worker's HEARTBEAT fields plus its ``id``)
and ``down`` (ids of local workers whose process the supervisor saw exit). Each entry is
applied exactly as a HEARTBEAT from that worker would be (liveness by its progress counter,
load, the ClusterView), so the view is the same with or without supervisors. The first
supervisor to name a worker owns it; an entry for a worker it does not own, an unknown id or
a malformed entry is refused and counted, never fatal. Data (jobs and their answers) and a
worker's READY still go directly between the coordinator and the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from swarmsim.query import GONE

from . import sockets
from .errors import ProtocolError
from .protocol import CONTROL, Message

if TYPE_CHECKING:
    from .coordinator import Coordinator
    from .state import Agent

MAX_NODE_ENTRIES = 1024  # workers one supervisor may speak for (a node holds 80 at agi-1000)
SUPERVISOR = "supervisor"  # why an agent is declared dead on its supervisor's word


def is_supervisor(peer: bytes) -> bool:
    """A node supervisor's identity (``n<index>``), as a worker's is ``w<id>``."""
    return peer[:1] == b"n"


@dataclass
class Node:
    """One supervisor as the coordinator knows it: when last heard, the workers it owns."""

    ident: bytes
    last_seen: float
    owns: set[int] = field(default_factory=set)


class NodeBeats:
    """The supervisors of one coordinator: their NODE_BEATs applied, their beats sent."""

    def __init__(self, coord: Coordinator) -> None:
        self.coord = coord
        self.nodes: dict[bytes, Node] = {}
        self.owner: dict[int, bytes] = {}  # worker id -> the supervisor that speaks for it
        self.beats = 0  # NODE_BEATs applied

    def receive(self, peer: bytes, msg: Message) -> None:
        """A message from supervisor ``peer``: a NODE_BEAT applied, anything else refused."""
        coord = self.coord
        if msg.type != CONTROL or msg.action != "NODE_BEAT":
            coord._refuse(coord.workers, peer, ProtocolError("action", f"{msg.action} from node"))
            return
        try:
            entries, down = node_beat(msg.payload)
        except ProtocolError as err:
            coord._refuse(coord.workers, peer, err)
            return
        now = coord.now()
        node = self.nodes.setdefault(peer, Node(peer, now))
        node.last_seen = now
        self.beats += 1
        for entry in entries:
            agent = self._claim(node, entry["id"])
            if agent is not None:
                agent.heard("HEARTBEAT", entry, now)
                coord._worker_state(agent, Message(CONTROL, "HEARTBEAT", "", msg.sender, entry))
        for wid in down:
            agent = self._claim(node, wid)
            if agent is not None and agent.state not in GONE:
                coord.dead(agent, SUPERVISOR)

    def _claim(self, node: Node, wid: int) -> Agent | None:
        """The agent ``node`` speaks for as ``wid``, or None (counted) if it may not."""
        agent = self.coord.agents.get(wid)
        owner = self.owner.setdefault(wid, node.ident) if agent is not None else None
        if owner != node.ident:
            self.coord.count_error("node_entry")
            return None
        node.owns.add(wid)
        return agent

    def covers(self, agent: Agent, now: float) -> bool:
        """A live supervisor speaks for ``agent``: the coordinator's beat goes to it."""
        ident = self.owner.get(agent.id)
        return ident is not None and now - self.nodes[ident].last_seen <= self.coord.dead_after_s

    def beat(self, msg: Message, now: float) -> None:
        """One coordinator heartbeat to each live supervisor."""
        for node in self.nodes.values():
            if now - node.last_seen <= self.coord.dead_after_s:
                self.coord.counts["sent"] += 1
                sockets.send(self.coord.workers, msg, node.ident)


def node_beat(p: Any) -> tuple[list[dict[str, Any]], list[int]]:
    """A NODE_BEAT payload's entries and down ids, checked (it is network input): a map, at
    most ``MAX_NODE_ENTRIES`` of each, every entry a map with an integer ``id`` and every
    down id an integer; raises :class:`ProtocolError` naming what is wrong."""
    if not isinstance(p, dict):
        raise ProtocolError("payload", f"NODE_BEAT is a map, not {type(p).__name__}")
    entries, down = p.get("entries", []), p.get("down", [])
    for name, value in (("entries", entries), ("down", down)):
        if not isinstance(value, list) or len(value) > MAX_NODE_ENTRIES:
            size = len(value) if isinstance(value, list) else type(value).__name__
            raise ProtocolError("payload", f"NODE_BEAT {name}: a list of <= "
                                f"{MAX_NODE_ENTRIES}, got {size}")  # fmt: skip
    for entry in entries:
        if not isinstance(entry, dict) or not _is_id(entry.get("id")):
            raise ProtocolError("payload", f"NODE_BEAT entry {str(entry)[:80]} has no integer id")
    for wid in down:
        if not _is_id(wid):
            raise ProtocolError("payload", f"NODE_BEAT down id {wid!r} is not an integer")
    return entries, down


def _is_id(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0

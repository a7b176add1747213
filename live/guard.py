"""Per-peer defences of the coordinator's ROUTER sockets: an error budget that cuts a rogue
peer off, and a token bucket that throttles a client sending faster than it is served.

Every peer is keyed by (socket, ZeroMQ routing identity). A peer whose messages break the
protocol (or name no known worker, or ask for nothing a socket serves) more than
``error_budget`` times in a ``window_s`` window is **banned** for ``ban_s``: its messages
are still read off the socket (a ROUTER cannot close one peer's connection) but dropped
before they are decoded, and never answered. A client's QUERY takes a token from its bucket
(``rate_qps``, ``burst``); without one it is answered at once ``dropped`` (reason
``throttled``) and never admitted; more than ``throttle_budget`` throttled queries in a
window ban it too. Replies to refusals share one global bucket (``reply_qps``), so refusals
never cost more sends than that.

What this does not bound: the routing identity is the peer's own choice (a DEALER sets it;
an anonymous one gets a fresh one per connection), so a rogue that reconnects under a new
identity starts with a fresh budget and bucket. It can still make the coordinator read and
decode its messages, at most 1000 per socket per loop pass (``Coordinator._drain``)
while ZeroMQ's fair queuing serves the honest peers' messages between its own; get at most
``error_budget`` replies per identity and ``reply_qps`` in all; and get at most ``burst``
queries per identity admitted, which the backlog and admission by deadline
(``live.admission``) still bound. The table of peers is bounded (``max_peers``, oldest
forgotten first). Memory is the weak point: libzmq holds up to RCVHWM unread messages per
connection (1000 on the client and control sockets) and still delivers a closed
connection's messages, so a rogue that sends faster than the coordinator discards, over
ever new connections, grows libzmq's unread backlog for as long as it outpaces it (figures
in results/reliability.md); libzmq also buffers a multipart message whole (MAXMSGSIZE bounds
each frame, not their number). What ends that is refusing the connection before any message
is delivered: CURVE keys with an authenticator, or a per-source connection limit in front.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmsim.errors import check

THROTTLED = "throttled"  # the reason a throttled query is answered dropped with
# CONTROL actions of the coordinator-worker dialogue: refused (counted) on the control socket
WORKER_CONTROLS = frozenset({"READY", "HEARTBEAT", "ASSIGN", "STOP", "FAULT", "NODE_BEAT"})


@dataclass(frozen=True)
class GuardConfig:
    """Budgets of one coordinator's peer defences."""

    error_budget: int = 10  # protocol errors per peer per window before it is banned
    throttle_budget: int = 1000  # throttled queries per peer per window before it is banned
    window_s: float = 10.0
    ban_s: float = 60.0  # how long a banned peer is ignored
    rate_qps: float = 10_000.0  # a client's sustained queries per second
    burst: int = 10_000  # ... and the most it may send at once
    reply_qps: float = 1000.0  # refusals answered per second, over all peers
    max_peers: int = 10_000  # peers tracked; the oldest are forgotten first

    def __post_init__(self) -> None:
        for name in ("error_budget", "throttle_budget", "burst", "max_peers"):
            check(getattr(self, name) >= 1, name, getattr(self, name), ">= 1")
        for name in ("window_s", "ban_s", "rate_qps", "reply_qps"):
            check(getattr(self, name) > 0, name, getattr(self, name), "> 0")


class Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` held."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate, burst, burst, now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Peer:
    """One peer's record: violations in the current window, its tokens, its ban."""

    __slots__ = ("banned_until", "bucket", "errors", "throttled", "window_start")

    def __init__(self, now: float, bucket: Bucket) -> None:
        self.window_start, self.errors, self.throttled = now, 0, 0
        self.bucket = bucket
        self.banned_until = -1.0


class PeerGuard:
    """The peers of a coordinator's sockets, their budgets and bans."""

    def __init__(self, cfg: GuardConfig, now: float) -> None:
        self.cfg = cfg
        self.peers: dict[tuple[str, bytes], Peer] = {}
        self.replies = Bucket(cfg.reply_qps, cfg.reply_qps, now)
        self.counts = {"banned": 0, "ignored": 0, "throttled": 0, "unanswered": 0}

    def ignored(self, sock: str, peer: bytes, now: float) -> bool:
        """Whether ``peer`` is banned on ``sock`` (its message is then dropped, counted)."""
        rec = self.peers.get((sock, peer))
        if rec is None or rec.banned_until < now:
            return False
        self.counts["ignored"] += 1
        return True

    def error(self, sock: str, peer: bytes, now: float) -> bool:
        """Count a protocol error from ``peer``; whether to answer it (not once banned, nor
        past the global reply rate)."""
        rec = self._record(sock, peer, now)
        rec.errors += 1
        if rec.errors > self.cfg.error_budget:
            self._ban(rec, now)
            return False
        return self._may_reply(now)

    def admit(self, peer: bytes, now: float) -> bool:
        """Whether a client's QUERY may be admitted (it takes a token); False: throttled."""
        rec = self._record("clients", peer, now)
        if rec.bucket.take(now):
            return True
        rec.throttled += 1
        self.counts["throttled"] += 1
        if rec.throttled > self.cfg.throttle_budget:
            self._ban(rec, now)
        return False

    def may_reply(self, sock: str, peer: bytes, now: float) -> bool:
        """Whether a throttled query of ``peer`` gets its quick ``dropped`` answer."""
        rec = self.peers.get((sock, peer))
        return (rec is None or rec.banned_until < now) and self._may_reply(now)

    def _may_reply(self, now: float) -> bool:
        if self.replies.take(now):
            return True
        self.counts["unanswered"] += 1
        return False

    def _ban(self, rec: Peer, now: float) -> None:
        if rec.banned_until < now:
            self.counts["banned"] += 1
        rec.banned_until = now + self.cfg.ban_s

    def _record(self, sock: str, peer: bytes, now: float) -> Peer:
        key = (sock, peer)
        rec = self.peers.get(key)
        if rec is None:
            if len(self.peers) >= self.cfg.max_peers:
                del self.peers[next(iter(self.peers))]  # the oldest
            rec = self.peers[key] = Peer(now, Bucket(self.cfg.rate_qps, self.cfg.burst, now))
        if now - rec.window_start >= self.cfg.window_s:
            rec.window_start, rec.errors, rec.throttled = now, 0, 0
        return rec

    def banned_peers(self, now: float) -> int:
        """Peers banned now."""
        return sum(rec.banned_until >= now for rec in self.peers.values())

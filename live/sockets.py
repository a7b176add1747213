"""ZeroMQ sockets set up the way REFERENCE.md says they must be (LINGER 0, bounded queues,
ROUTER_MANDATORY, a maximum message size) and a receive that never trusts its peer."""

from __future__ import annotations

from collections.abc import Callable

import zmq

from .errors import LiveError, ProtocolError
from .protocol import MAX_FRAMES, MAX_MESSAGE_BYTES, Message, decode, encode

# Flags as plain ints: pyzmq's enum arithmetic on every frame cost more than the send itself.
_NOBLOCK = int(zmq.NOBLOCK)
_NOBLOCK_MORE = int(zmq.NOBLOCK | zmq.SNDMORE)

Secure = Callable[[zmq.Socket], None]  # sets security options before bind or connect


def _common(sock: zmq.Socket, hwm: int) -> zmq.Socket:
    sock.setsockopt(zmq.LINGER, 0)  # closing never blocks on unsent messages
    sock.setsockopt(zmq.SNDHWM, hwm)
    sock.setsockopt(zmq.RCVHWM, hwm)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # per frame; frames are counted below
    return sock


def router(
    ctx: zmq.Context, bind: str, hwm: int = 10_000, secure: Secure | None = None
) -> zmq.Socket:
    """A ROUTER bound to ``bind`` (``tcp://127.0.0.1:0`` picks a free port; see ``endpoint``),
    made a CURVE server first by ``secure`` (``live.auth``) if given."""
    sock = _common(ctx.socket(zmq.ROUTER), hwm)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # unknown peer: raise instead of dropping silently
    if secure is not None:
        secure(sock)
    try:
        sock.bind(bind)
    except zmq.ZMQError as err:
        sock.close(linger=0)
        raise LiveError(f"cannot bind {bind}: {err}") from None
    return sock


def dealer(
    ctx: zmq.Context, connect: str, identity: bytes, hwm: int = 10_000, secure: Secure | None = None
) -> zmq.Socket:
    """A DEALER with a fixed identity, connected to ``connect`` (as a CURVE client, if
    ``secure`` from ``live.auth`` is given)."""
    sock = _common(ctx.socket(zmq.DEALER), hwm)
    sock.setsockopt(zmq.IDENTITY, identity)
    if secure is not None:
        secure(sock)
    sock.connect(connect)
    return sock


def try_recv(sock: zmq.Socket, routed: bool) -> tuple[bytes | None, Message | ProtocolError] | None:
    """``recv`` without blocking: None when no message waits (cheaper than polling EVENTS)."""
    try:
        return recv(sock, routed, _NOBLOCK)
    except zmq.Again:
        return None


def endpoint(sock: zmq.Socket) -> str:
    """The address a bound socket actually listens on."""
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode()


def send(sock: zmq.Socket, msg: Message, peer: bytes | None = None) -> bool:
    """Send without blocking; False when the peer is gone or its queue is full."""
    head, body = encode(msg)
    try:  # a multipart message is atomic: once its first frame is taken, all are
        if peer is not None:
            sock.send(peer, _NOBLOCK_MORE)
        sock.send(head, _NOBLOCK_MORE)
        sock.send(body, _NOBLOCK)
    except zmq.Again:
        return False
    except zmq.ZMQError as err:
        if err.errno == zmq.EHOSTUNREACH:  # ROUTER_MANDATORY: no such peer (any more)
            return False
        raise
    return True


def recv_raw(sock: zmq.Socket, routed: bool, flags: int = 0) -> tuple[bytes | None, list[bytes]]:
    """One multipart message, split into the peer identity (ROUTER) and the rest. Frames past
    the protocol's count are read and dropped, so a flood of tiny frames stays bounded.
    With ``flags=NOBLOCK`` raises ``zmq.Again`` when no message waits."""
    return _frames(sock, sock.recv(flags, copy=False), routed)


def _frames(sock: zmq.Socket, frame: zmq.Frame, routed: bool) -> tuple[bytes | None, list[bytes]]:
    frames = [frame.bytes]  # a Frame knows whether more follow: no getsockopt
    while frame.more:  # the rest of a multipart message has arrived with its first frame
        frame = sock.recv(_NOBLOCK, copy=False)
        frames.append(frame.bytes if len(frames) <= MAX_FRAMES + 1 else b"")  # counted only
    if routed:
        return frames[0], frames[1:]
    return None, frames


def recv(
    sock: zmq.Socket, routed: bool, flags: int = 0
) -> tuple[bytes | None, Message | ProtocolError]:
    """Receive one message: the peer (ROUTER) and the validated message, or the
    ProtocolError that refused it (returned, not raised: a bad peer is counted, not fatal).
    With ``flags=NOBLOCK`` raises ``zmq.Again`` when no message waits."""
    peer, frames = recv_raw(sock, routed, flags)
    try:
        return peer, decode(frames)
    except ProtocolError as err:
        return peer, err


def recv_raw_keyed(sock: zmq.Socket) -> tuple[str | None, bytes | None, list[bytes]]:
    """``recv_raw`` on a ROUTER without blocking (``zmq.Again`` when none waits), with the
    User-Id the ZAP authenticator gave the sender's connection first (None when none did)."""
    first = sock.recv(_NOBLOCK, copy=False)
    try:
        user: str | None = first.get("User-Id")
    except zmq.ZMQError:  # EINVAL: no such property on this connection
        user = None
    peer, frames = _frames(sock, first, routed=True)
    return user, peer, frames

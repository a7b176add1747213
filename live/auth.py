"""Who may talk to the coordinator: CURVE on its three sockets, pyzmq's ZAP authenticator
admitting on each only its role's public keys, and a check of every message's authenticated
key, so that what a peer may do is bound to its key, not to what it claims.

libzmq alone admits any CURVE client key (REFERENCE.md): the authenticator is what refuses
unknown ones. Each socket has its own ZAP domain (``workers``, ``clients``, ``control``)
answered from its role's key directory (``live.keys``): a worker's key opens no control
socket, a client's registers no worker. The coordinator will not start with keys unless the
authenticator runs, and it reads the User-Id the authenticator gave each message: a message
without one, or with a key not of the socket's role (an authenticator gone, a key revoked
since it connected), is refused and counted as ``unauthenticated``. Without keys a swarm
binds loopback only, unless told ``insecure``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import zmq
from zmq.auth.thread import ThreadAuthenticator

from .errors import LiveError, ProtocolError
from .keys import ROLE_DIRS, Party, coordinator_pair, public_keys
from .sockets import Secure

DOMAINS = {"workers": "worker", "clients": "client", "control": "operator"}  # ZAP domain: role


class Admitted:
    """One ZAP domain's allowed keys (the authenticator's credentials provider), counting its
    verdicts. ``callback`` runs in the authenticator's thread."""

    def __init__(self, keys: dict[bytes, str]) -> None:
        self.keys = keys
        self.admitted = 0
        self.denied = 0
        self.denied_keys: set[bytes] = set()

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            self.admitted += 1
            return True
        self.denied += 1
        self.denied_keys.add(key)
        return False


class Guard:
    """The coordinator's authenticator and its per-socket key check."""

    def __init__(self, ctx: zmq.Context, directory: Path) -> None:
        self.directory = directory
        self.pair = coordinator_pair(directory)
        self.domains = {d: Admitted(public_keys(directory, role)) for d, role in DOMAINS.items()}
        self.read = self._stamps()
        self.of_socket: dict[zmq.Socket, Admitted] = {}
        self.auth = ThreadAuthenticator(ctx)
        self.auth.start()
        for domain, admitted in self.domains.items():
            self.auth.configure_curve_callback(domain, admitted)
        if not self.running:
            self.close()
            raise LiveError(
                "the ZAP authenticator is not running: refusing to serve with keys (libzmq "
                "alone would admit any key)"
            )

    @property
    def running(self) -> bool:
        return self.auth.is_alive()

    def server(self, domain: str) -> Secure:
        """The options that make a ROUTER a CURVE server of ``domain``'s role."""
        admitted = self.domains[domain]

        def secure(sock: zmq.Socket) -> None:
            sock.curve_secretkey = self.pair.secret
            sock.curve_publickey = self.pair.public
            sock.curve_server = True
            sock.zap_domain = domain.encode()
            self.of_socket[sock] = admitted

        return secure

    def admits(self, sock: zmq.Socket, user: str | None) -> bool:
        """Whether a message with authenticated key ``user`` may arrive on ``sock``: a key
        of the socket's role (None, no key the authenticator vouched for, never)."""
        return user is not None and user.encode() in self.of_socket[sock].keys

    def refresh(self) -> None:
        """Re-read the key directories if they changed: a key added is admitted from its
        next connection, a key removed is refused from its next message. A directory that
        cannot be read keeps the keys it had (a key file being copied in is no revocation)."""
        stamps = self._stamps()
        if stamps == self.read:
            return
        self.read = stamps
        for domain, admitted in self.domains.items():
            try:
                admitted.keys = public_keys(self.directory, DOMAINS[domain])
            except LiveError:
                continue

    def _stamps(self) -> list[int]:
        folders = [self.directory / ROLE_DIRS[role] for role in DOMAINS.values()]
        return [f.stat().st_mtime_ns if f.is_dir() else -1 for f in folders]

    def status(self) -> dict[str, Any]:
        """What the authenticator admitted and denied, per domain (for ``live status``)."""
        counts = {d: {"keys": len(a.keys), "admitted": a.admitted, "denied": a.denied}
                  for d, a in self.domains.items()}  # fmt: skip
        return {"running": self.running, "keys": str(self.directory), **counts}

    def close(self) -> None:
        """Stop the authenticator (before its context is destroyed)."""
        if self.auth.is_alive():
            self.auth.stop()


def client(party: Party) -> Secure:
    """The options that make a DEALER a CURVE client of the coordinator as ``party``."""

    def secure(sock: zmq.Socket) -> None:
        sock.curve_secretkey = party.pair.secret
        sock.curve_publickey = party.pair.public
        sock.curve_serverkey = party.server

    return secure


def check_exposure(binds: Iterable[str], keyed: bool, insecure: bool) -> None:
    """Without keys, refuse a bind reachable from other machines unless told ``insecure``."""
    if keyed or insecure:
        return
    for bind in binds:
        if not is_loopback(bind):
            raise LiveError(
                f"{bind} is reachable from other machines and the swarm has no keys: give "
                "--keys DIR (made by swarmsim live keys DIR), or --insecure to allow anyone"
            )


def is_loopback(address: str) -> bool:
    """Whether a ZeroMQ bind address is reachable from this machine only."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    host = rest.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # "*", an interface name or a host name
        return False


def unauthenticated(user: str | None) -> ProtocolError:
    """The refusal of a message whose key may not send where it arrived."""
    return ProtocolError("unauthenticated", f"key {user!r} may not send here")

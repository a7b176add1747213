"""CURVE key pairs for a swarm spread over machines (``swarmsim live keys DIR``).

Each role's public keys sit in a directory of their own, which is what the coordinator's
authenticator admits on that role's socket; the secret keys sit apart, readable by their
owner only::

    DIR/coordinator/coordinator.key    the coordinator's public key (every party needs it)
    DIR/workers/worker-0.key ...       admitted on the worker socket
    DIR/clients/client-0.key ...       admitted on the query socket
    DIR/operators/operator-0.key ...   admitted on the control socket (status, attach, ...)
    DIR/private/NAME.key_secret        secret keys (directory 0700, files 0600)

Give each machine the public directories and only its own secret keys; a party uses the first
secret key of its role in ``DIR/private``. Removing a public key file revokes that key.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from .errors import LiveError

COORDINATOR = "coordinator"
ROLE_DIRS = {"worker": "workers", "client": "clients", "operator": "operators"}
PRIVATE = "private"


@dataclass(frozen=True)
class KeyPair:
    """One party's CURVE keys (z85-encoded, as zmq's socket options take them)."""

    public: bytes
    secret: bytes


@dataclass(frozen=True)
class Party:
    """What a connecting party (worker, client, operator) needs: its pair and the server's key."""

    pair: KeyPair
    server: bytes


def make_keys(directory: Path, counts: dict[str, int]) -> list[Path]:
    """Create the key pairs ``directory`` lacks: the coordinator's and ``counts[role]`` per role
    (named ROLE-0, ROLE-1, ...); existing keys are kept. The files written."""
    for role, n in counts.items():
        if role not in ROLE_DIRS:
            raise ValueError(f"role must be one of {sorted(ROLE_DIRS)}, got {role!r}")
        if n < 0:
            raise LiveError(f"--{ROLE_DIRS[role]}: expected a count >= 0, got {n}")
    private = directory / PRIVATE
    private.mkdir(mode=0o700, parents=True, exist_ok=True)
    private.chmod(0o700)  # also when it existed: secret keys are the owner's only
    wanted = [(COORDINATOR, COORDINATOR)]
    wanted += [(ROLE_DIRS[r], f"{r}-{i}") for r, n in counts.items() for i in range(n)]
    written = []
    for folder, name in wanted:
        public = directory / folder / f"{name}.key"
        if (private / f"{name}.key_secret").exists() or public.exists():
            continue
        public.parent.mkdir(parents=True, exist_ok=True)
        pub, secret = (Path(p) for p in zmq.auth.create_certificates(private, name))
        secret.chmod(0o600)
        os.replace(pub, public)
        written += [public, secret]
    return written


def coordinator_pair(directory: Path) -> KeyPair:
    """The coordinator's own key pair (its secret key file)."""
    return _pair(directory / PRIVATE / f"{COORDINATOR}.key_secret")


def party(directory: Path, role: str) -> Party:
    """The first key pair of ``role`` in ``DIR/private`` and the coordinator's public key."""
    if role not in ROLE_DIRS:
        raise ValueError(f"role must be one of {sorted(ROLE_DIRS)}, got {role!r}")
    found = sorted((directory / PRIVATE).glob(f"{role}-*.key_secret"))
    if not found:
        raise LiveError(
            f"{directory / PRIVATE}: no {role} secret key ({role}-N.key_secret); "
            f"swarmsim live keys {directory} makes one"
        )
    return Party(_pair(found[0]), _public(directory / COORDINATOR / f"{COORDINATOR}.key"))


def public_keys(directory: Path, role: str) -> dict[bytes, str]:
    """The public keys admitted for ``role`` (z85 key -> name), read from its directory."""
    folder = directory / ROLE_DIRS[role]
    if not folder.is_dir():
        raise LiveError(f"{folder}: no such directory (swarmsim live keys {directory} makes it)")
    return {_public(path): path.stem for path in sorted(folder.glob("*.key"))}


def _public(path: Path) -> bytes:
    if not path.is_file():
        raise LiveError(f"{path}: no such key file")
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as err:
        raise LiveError(f"{path}: not a CURVE key file ({err})") from None
    return public


def _pair(path: Path) -> KeyPair:
    """A secret key file's pair; refused when anyone but its owner may read it (as ssh does)."""
    if not path.is_file():
        raise LiveError(f"{path}: no such secret key file")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise LiveError(f"{path}: mode {mode:04o}, a secret key must be 0600 (chmod 600 {path})")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as err:
        raise LiveError(f"{path}: not a CURVE key file ({err})") from None
    if secret is None:
        raise LiveError(f"{path}: holds no secret key")
    return KeyPair(public, secret)


def check_swarm_keys(directory: Path, parties: tuple[str, ...]) -> None:
    """What a swarm with keys reads, checked before any process starts: a directory, the
    coordinator's pair, every role's public-key directory, and a pair for each of ``parties``
    (the roles it starts itself: its workers, its load generator)."""
    if not directory.is_dir():
        raise LiveError(f"--keys: {directory} is not a directory (swarmsim live keys makes one)")
    coordinator_pair(directory)
    for role in ROLE_DIRS:
        public_keys(directory, role)
    for role in parties:
        party(directory, role)

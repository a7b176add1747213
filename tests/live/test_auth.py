"""A swarm with keys admits only its keys, each to its role's socket (live.keys, live.auth):
a coordinator with its authenticator, driven in this process, and peers on real CURVE
sockets; one test runs a whole swarm with keys (workers, load generator, operator commands).
"""

from __future__ import annotations

import os
import queue
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import zmq
from zmq.auth.thread import ThreadAuthenticator

from experiments.cli import main
from live import sockets
from live.auth import check_exposure, is_loopback
from live.client import Client, SwarmUnavailable
from live.config import LiveConfig
from live.coordinator import Coordinator
from live.corpusfiles import CorpusFiles, write_corpus
from live.errors import LiveError
from live.keys import KeyPair, coordinator_pair, make_keys, party
from live.operator import request
from live.protocol import CONTROL, Message
from live.runner import LiveRun, serve
from swarmsim.corpus import scenario_corpus
from swarmsim.scenario_files import load_scenario

ATTEMPTS = int(os.environ.get("AUTH_ATTEMPTS", "100"))  # unknown keys tried on each socket
BATCH = 100  # of them connected at once


@pytest.fixture
def keys(tmp_path) -> Path:
    directory = tmp_path / "keys"
    make_keys(directory, {"worker": 1, "client": 1, "operator": 1})
    return directory


@pytest.fixture
def guarded(tmp_path, keys, launcher) -> Iterator[Coordinator]:
    """A homelab coordinator with keys and no worker processes."""
    scenario = load_scenario("homelab")
    write_corpus(scenario_corpus(scenario.corpus), tmp_path)
    coord = Coordinator(scenario, CorpusFiles.load(tmp_path), launcher, keys=keys)
    try:
        yield coord
    finally:
        coord.close()


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    try:
        yield context
    finally:
        context.destroy(linger=0)


def peer(ctx: zmq.Context, address: str, pair: KeyPair, server: bytes) -> zmq.Socket:
    """A DEALER connecting as ``pair`` to the CURVE server whose public key is ``server``."""
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.curve_secretkey, sock.curve_publickey, sock.curve_serverkey = (
        pair.secret,
        pair.public,
        server,
    )
    sock.connect(address)
    return sock


def stranger() -> KeyPair:
    return KeyPair(*zmq.curve_keypair())


def serve_for(coord: Coordinator, seconds: float, until=lambda: False) -> None:
    """Run the coordinator's loop for ``seconds`` or until ``until()``."""
    stop = time.monotonic() + seconds
    while time.monotonic() < stop and not until():
        coord.step(0.01)


def status_from(coord: Coordinator, sock: zmq.Socket, seconds: float = 3.0) -> Message | None:
    """Send STATUS on ``sock``; the answer, if one came while the coordinator served."""
    sockets.send(sock, Message(CONTROL, "STATUS", "op", "operator"))
    serve_for(coord, seconds, until=lambda: sock.poll(0))
    return sockets.recv(sock, routed=False)[1] if sock.poll(0) else None


def test_keys_are_laid_out_by_role_secret_keys_owner_only_and_kept_when_made_again(keys):
    assert {p.name for p in keys.iterdir()} == {
        "coordinator", "workers", "clients", "operators", "private"}  # fmt: skip
    assert [p.name for p in (keys / "workers").iterdir()] == ["worker-0.key"]
    assert stat.S_IMODE((keys / "private").stat().st_mode) == 0o700
    secrets = sorted(p.name for p in (keys / "private").iterdir())
    assert secrets == [
        f"{n}.key_secret" for n in ("client-0", "coordinator", "operator-0", "worker-0")
    ]
    for path in (keys / "private").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = coordinator_pair(keys)
    assert main(["live", "keys", str(keys), "--workers", "2"]) == 0  # adds worker-1 only
    assert coordinator_pair(keys) == before
    assert sorted(p.name for p in (keys / "workers").iterdir()) == ["worker-0.key", "worker-1.key"]
    secret = keys / "private" / "operator-0.key_secret"
    secret.chmod(0o644)
    with pytest.raises(LiveError, match="mode 0644, a secret key must be 0600"):
        party(keys, "operator")


def test_every_unknown_key_is_refused_on_every_socket_and_a_known_one_answered(guarded, ctx):
    coord, guard = guarded, guarded.auth
    server = guard.pair.public
    operator = party(guard.directory, "operator").pair
    known = peer(ctx, coord.control_address, operator, server)
    answer = status_from(coord, known)
    assert answer is not None and answer.action == "DONE"
    received = coord.counts["received"]
    addresses = {"workers": coord.worker_address, "clients": coord.client_address,
                 "control": coord.control_address}  # fmt: skip
    for batch in range(0, ATTEMPTS, BATCH):  # in batches: each peer is a file descriptor
        tried = {domain: [stranger() for _ in range(min(BATCH, ATTEMPTS - batch))]
                 for domain in addresses}  # fmt: skip
        socks = [
            peer(ctx, addresses[d], pair, server) for d, pairs in tried.items() for pair in pairs
        ]
        for sock in socks:
            sockets.send(sock, Message(CONTROL, "STATUS", "op", "operator"))
        everyone_denied = lambda tried=tried: all(  # noqa: E731
            {p.public for p in pairs} <= guard.domains[d].denied_keys for d, pairs in tried.items()
        )
        serve_for(coord, 30, until=everyone_denied)
        serve_for(coord, 0.3)  # anything admitted by mistake would arrive now
        assert everyone_denied()  # each of the keys: refused
        assert not any(sock.poll(0) for sock in socks)  # and not one answered
        for sock in socks:
            sock.close(linger=0)
    assert all(len(guard.domains[d].denied_keys) == ATTEMPTS for d in addresses)  # 100%
    assert coord.counts["received"] == received  # not one message reached the coordinator


def test_a_key_opens_only_the_socket_of_its_role(guarded, ctx):
    coord, guard = guarded, guarded.auth
    server = guard.pair.public
    worker, client = party(guard.directory, "worker").pair, party(guard.directory, "client").pair
    # a worker's key cannot act as an operator, a client's cannot register as a worker
    assert status_from(coord, peer(ctx, coord.control_address, worker, server), 1.5) is None
    ready = Message(CONTROL, "READY", "", "w0", {"layer": "embed"})
    sock = peer(ctx, coord.worker_address, client, server)
    sockets.send(sock, ready)
    serve_for(coord, 1.5, until=lambda: client.public in guard.domains["workers"].denied_keys)
    assert worker.public in guard.domains["control"].denied_keys
    assert client.public in guard.domains["workers"].denied_keys
    assert guard.domains["control"].admitted == guard.domains["workers"].admitted == 0
    assert coord.counts["received"] == 0
    # the worker's own key is admitted on the worker socket: its READY reaches the coordinator
    sock = peer(ctx, coord.worker_address, worker, server)
    sockets.send(sock, ready)
    serve_for(coord, 3, until=lambda: coord.counts["received"] > 0)
    assert coord.counts["received"] == 1 and guard.domains["workers"].admitted == 1


def test_without_its_authenticator_a_curve_server_admits_any_key_and_the_coordinator_refuses(
    guarded, ctx
):
    """The check is real: libzmq alone lets a stranger in; the coordinator, its authenticator
    stopped, still refuses every message that carries no authenticated key."""
    pair = coordinator_pair(guarded.auth.directory)
    bare = ctx.socket(zmq.ROUTER)  # CURVE, no ZAP domain: nothing authenticates
    bare.linger = 0
    bare.curve_secretkey, bare.curve_publickey, bare.curve_server = pair.secret, pair.public, True
    port = bare.bind_to_random_port("tcp://127.0.0.1")
    intruder = peer(ctx, f"tcp://127.0.0.1:{port}", stranger(), pair.public)
    sockets.send(intruder, Message(CONTROL, "STATUS", "op", "operator"))
    assert bare.poll(3000), "libzmq refused an unknown key by itself: the test shows nothing"
    guarded.auth.close()  # the authenticator stops: the swarm's sockets admit anyone now
    assert not guarded.auth.running
    sock = peer(ctx, guarded.control_address, stranger(), pair.public)
    assert status_from(guarded, sock, 1.5) is None
    assert guarded.protocol_errors.get("unauthenticated", 0) >= 1  # reached it, refused


def test_the_coordinator_will_not_start_with_keys_if_its_authenticator_does_not_run(
    tmp_path, keys, launcher, monkeypatch
):
    monkeypatch.setattr(ThreadAuthenticator, "start", lambda self: None)
    scenario = load_scenario("homelab")
    write_corpus(scenario_corpus(scenario.corpus), tmp_path)
    with pytest.raises(LiveError, match="authenticator is not running"):
        Coordinator(scenario, CorpusFiles.load(tmp_path), launcher, keys=keys)


def test_a_key_removed_from_its_directory_is_refused_from_its_next_message(guarded, ctx):
    coord = guarded
    operator = party(coord.auth.directory, "operator").pair
    sock = peer(ctx, coord.control_address, operator, coord.auth.pair.public)
    assert status_from(coord, sock) is not None
    (coord.auth.directory / "operators" / "operator-0.key").unlink()
    coord.auth.refresh()  # the coordinator does this every heartbeat
    assert status_from(coord, sock, 1.5) is None  # the same connection, no longer heard
    assert coord.protocol_errors["unauthenticated"] == 1


def test_without_keys_a_bind_other_machines_reach_needs_insecure(capsys, launcher):
    local = ("tcp://127.0.0.1:5570", "tcp://[::1]:1", "tcp://localhost:1", "ipc:///tmp/s")
    reachable = ("tcp://0.0.0.0:1", "tcp://*:1", "tcp://eth0:1", "tcp://10.0.0.2:1")
    assert all(is_loopback(a) for a in local) and not any(is_loopback(a) for a in reachable)
    check_exposure(["tcp://0.0.0.0:1"], keyed=True, insecure=False)
    check_exposure(["tcp://0.0.0.0:1"], keyed=False, insecure=True)
    assert main(["live", "up", "homelab", "--bind", "tcp://0.0.0.0:5570"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swarmsim: error: tcp://0.0.0.0:5570 is reachable") and "\n" not in err
    with pytest.raises(LiveError, match="reachable from other machines"):  # the library too
        Coordinator(load_scenario("homelab"), None, launcher, clients_bind="tcp://*:0")


def test_a_swarm_with_keys_serves_its_own_parties_and_refuses_others(tmp_path, keys, capsys):
    run = LiveRun("homelab", overrides=("rate=4",), workers=8, keys=keys,
                  config=LiveConfig(time_scale=0.05), http="127.0.0.1:0")  # fmt: skip
    announced: queue.Queue = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: announced.put(serve(run, announced.put,
                              stop=stop.is_set)), daemon=True)  # fmt: skip
    thread.start()
    up = announced.get(timeout=90)
    try:
        addr = up["control"]
        # its workers and its load generator joined with their keys: queries are answered
        end = time.monotonic() + 30
        while (st := request(addr, "STATUS", keys=keys))["queries"]["completed"] < 3:
            if time.monotonic() > end:
                break
            time.sleep(0.1)
        assert st["queries"]["completed"] >= 3, st["queries"]
        assert st["auth"]["running"] and st["auth"]["workers"]["admitted"] >= 8
        assert main(["live", "status", addr, "--keys", str(keys)]) == 0
        assert "authenticator running  workers " in capsys.readouterr().out
        with pytest.raises(LiveError, match="has keys: give --keys DIR"):  # no handshake
            request(addr, "STATUS", timeout_s=5.0)
        other = tmp_path / "other"  # an operator key this swarm does not know
        make_keys(other, {"operator": 1})
        shutil.copy(keys / "coordinator" / "coordinator.key", other / "coordinator")
        assert main(["live", "status", addr, "--keys", str(other)]) == 2
        assert "refused the operator key" in capsys.readouterr().err
        # the front door asks as the swarm's client key, /healthz as its operator key
        chat = {"model": "routine", "messages": [{"role": "user", "content": "a shard?"}]}
        r = httpx.post(f"{up['http']}/v1/chat/completions", json=chat, timeout=30)
        assert r.status_code == 200, r.text
        assert httpx.get(f"{up['http']}/healthz", timeout=10).status_code == 200
        with Client(up["queries"], timeout_s=20, keys=keys) as client:
            assert client.ask("a shard?").ok
        with Client(up["queries"], timeout_s=2) as plain, pytest.raises(SwarmUnavailable):
            plain.ask("a shard?")  # no key: the handshake fails, nothing answers
    finally:
        stop.set()
        thread.join(timeout=60)
    summary = announced.get(timeout=1)
    assert summary["queries"]["completed"] >= 3
    assert summary["messages"]["dropped"].get("unauthenticated", 0) == 0


def test_an_operator_with_keys_at_a_swarm_without_is_told_so(offline, keys):
    with pytest.raises(LiveError, match="has no keys: leave out --keys"):
        request(offline.control_address, "STATUS", timeout_s=5.0, keys=keys)

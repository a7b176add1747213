"""The operator's side of a running swarm: requests on the coordinator's control socket
(STATUS, ATTACH, DETACH, REPORT, INJECT) and the client that ``swarmsim live`` sends them with.

A request is a CONTROL message; the answer is RESPONSE DONE with a payload, or RESPONSE ERROR
whose payload's ``error`` says, in one line, why the coordinator refused. A refusal changes
nothing: an artifact is verified (manifest, weights' sha256, the Task's version and spaces)
before it is attached, and a bad request never stops the swarm.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from controllers.spec import resolve_live
from envs.registry import TASKS
from swarmsim.errors import SwarmError
from swarmsim.faults import check_targets, parse_fault
from swarmsim.query import GONE, AgentState

from . import auth, sockets
from .attachment import ACTING, CANDIDATE
from .errors import LiveError, ProtocolError
from .faults import agent_counts
from .keys import party
from .protocol import CONTROL, RESPONSE, Message

if TYPE_CHECKING:
    from .coordinator import Coordinator

NAME = "coordinator"
RECENT_S = 60.0  # the window of the latency percentiles in status
TIMEOUT_S = 10.0  # how long a client waits for the coordinator's answer
HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL


def handle(coord: Coordinator, msg: Message) -> Message:
    """The answer to a STATUS, DETACH or REPORT request (never raises: a refusal is an ERROR
    reply). ATTACH is two steps, ``load`` then ``attach``, so the artifact is read and
    verified off the coordinator's loop."""
    p = msg.payload if isinstance(msg.payload, dict) else {}
    requests = {
        "STATUS": lambda: status(coord),
        "DETACH": lambda: detach(coord, p),
        "REPORT": lambda: report(coord),
        "INJECT": lambda: inject(coord, p),
    }
    return answer(msg, requests.get(msg.action, lambda: _refuse(f"{msg.action}: no such request")))


def answer(msg: Message, body: Callable[[], Any]) -> Message:
    """DONE with ``body()``, or ERROR with the one line that says why it was refused."""
    try:
        return Message(RESPONSE, "DONE", msg.task, NAME, body())
    except (SwarmError, ValueError) as err:
        error = f"attach refused: {err}" if msg.action == "ATTACH" else str(err)
        return Message(RESPONSE, "ERROR", msg.task, NAME, {"error": error})
    except Exception as err:  # an operator's request must never take the swarm down
        traceback.print_exc()
        error = f"internal error: {type(err).__name__}: {err}"
        return Message(RESPONSE, "ERROR", msg.task, NAME, {"error": error})


@dataclass(frozen=True)
class Loaded:
    """A controller read and verified for an ATTACH request, ready to install."""

    task: str
    label: str
    controller: Any
    sha256: str | None
    mode: str
    split: float


def load(p: dict[str, Any]) -> Loaded:
    """Read and verify the controller an ATTACH request names (safe off the loop: it touches
    nothing of the coordinator's). An artifact's manifest, weights' sha256, Task version and
    spaces are checked as it loads, and the hash must be the one the operator read."""
    task, spec = p.get("task"), p.get("controller")
    if not isinstance(task, str) or task not in TASKS:
        raise SwarmError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if not isinstance(spec, str) or not spec:
        raise SwarmError("give the controller as NAME[:k=v] or an artifact directory")
    mode, split = p.get("mode", ACTING), p.get("split", 0.0)
    if not isinstance(split, float | int):
        raise SwarmError(f"--split: expected a fraction, got {split!r}")
    label = p.get("label") if isinstance(p.get("label"), str) and p["label"] else spec
    controller = resolve_live(f"{task}={spec}").build()
    sha256 = controller_hash(controller)
    expected = p.get("sha256")
    if expected is not None and expected != sha256:
        raise SwarmError(
            f"{spec}: the coordinator read weights with sha256 {sha256}, the operator "
            f"checked {expected}: the artifact changed in between"
        )
    return Loaded(task, label, controller, sha256, str(mode), float(split))


def attach(coord: Coordinator, loaded: Loaded) -> dict[str, Any]:
    """Install a loaded controller; it takes the Task's next decision."""
    coord.controls.attach(loaded.task, loaded.controller, loaded.label, sha256=loaded.sha256,
                 mode=loaded.mode, split=loaded.split)  # fmt: skip
    status = coord.slots[loaded.task].status()
    return {"task": loaded.task, "mode": loaded.mode, "sha256": loaded.sha256, "status": status}


def _refuse(message: str) -> Any:
    raise SwarmError(message)


def detach(coord: Coordinator, p: dict[str, Any]) -> dict[str, Any]:
    """Return ``p["task"]`` to its heuristic, or take only its candidate out."""
    task, which = p.get("task"), p.get("which", ACTING)
    if not isinstance(task, str) or task not in TASKS:
        raise SwarmError(f"detach: unknown task {task!r}; tasks: {', '.join(TASKS)}")
    if which not in (ACTING, CANDIDATE):
        raise SwarmError(f"detach: which must be acting or candidate, got {which!r}")
    return {"task": task, "events": coord.controls.detach(task, which)}


def inject(coord: Coordinator, p: dict[str, Any]) -> dict[str, Any]:
    """Schedule the fault ``p["spec"]`` names, its time counted from now (``live inject``)."""
    spec = p.get("spec")
    if not isinstance(spec, str):
        raise SwarmError(f"inject: give a fault spec string, got {spec!r}")
    if coord.injector is None:
        raise SwarmError("inject: this swarm takes no injected faults")
    fault = parse_fault(spec, "inject")
    check_targets([fault], agent_counts(coord), coord.node_names, "inject")
    now = coord.now()
    coord.injector.add(fault, now)
    return {"fault": fault.text, "at": now + fault.at_s, "now": now}


def status(coord: Coordinator) -> dict[str, Any]:
    """Workers per layer, queues, controllers and recent latency of the running swarm."""
    now = coord.now()
    layers = {}
    for name, cfg in coord.scenario.layers.items():
        agents = coord.roster.members(name)
        states: dict[str, int] = {}
        for a in agents:
            states[a.state.label] = states.get(a.state.label, 0) + 1
        layers[name] = {
            "role": cfg.role,
            "workers": states,
            "healthy": sum(
                a.state == AgentState.RUNNING and now - a.last_seen <= coord.dead_after_s
                for a in agents
            ),
            "queue": len(coord.dispatch.backlog[name])
            + sum(a.queue for a in agents if a.state not in GONE),
            "in_flight": sum(len(a.jobs) for a in agents),
        }
    recent = [row for row in coord.finished if row[0] >= now - RECENT_S]
    latencies = [row[3] for row in recent if row[2] == "completed"]
    return {
        "scenario": coord.scenario.name,
        "uptime_s": now,
        "addresses": {"control": coord.control_address, "queries": coord.client_address},
        "layers": layers,
        "queries": coord.metrics.query_summary(),
        "active": len(coord.active),
        "recent": {
            "window_s": RECENT_S,
            "finished": len(recent),
            "completed": len(latencies),
            **{f"p{q}_s": _pct(latencies, q) for q in (50, 95, 99)},
        },
        "controllers": {task: slot.status() for task, slot in coord.slots.items()},
        "events": list(coord.changes)[-20:],
        "auth": None if coord.auth is None else coord.auth.status(),
    }


def report(coord: Coordinator) -> dict[str, Any]:
    """What a shadow or A/B report is computed from, compactly (labels and outcomes as
    codes, so the most recent 50,000 queries fit one message): per finished query its arm,
    outcome, latency and recall, and each Task's shadow comparison."""
    rows = list(coord.finished)
    arms = sorted({r[1] for r in rows})
    outcomes = sorted({r[2] for r in rows})
    arm_code = {a: i for i, a in enumerate(arms)}
    outcome_code = {o: i for i, o in enumerate(outcomes)}
    shadows = []
    for slot in coord.slots.values():
        if slot.shadowed is None:
            continue
        summary = slot.shadow_summary()
        pairs = summary.pop("differences")
        keys = sorted({k for acting, _ in pairs for k in acting})
        summary["estimates"] = {
            "keys": keys,
            "acting": [[a[k] for k in keys] for a, _ in pairs],
            "shadow": [[s[k] for k in keys] for _, s in pairs],
        }
        shadows.append(summary)
    return {
        "source": coord.control_address,
        "queries": {
            "arms": arms,
            "arm": [arm_code[r[1]] for r in rows],
            "outcomes": outcomes,
            "outcome": [outcome_code[r[2]] for r in rows],
            "latency_s": [r[3] for r in rows],
            "recall": [r[4] for r in rows],
        },
        "shadow": shadows,
        "controllers": {task: slot.status() for task, slot in coord.slots.items()},
    }


def report_rows(body: dict[str, Any]) -> tuple[dict[str, list], list[dict[str, Any]]]:
    """A REPORT answer decoded: per-query columns (arm, outcome, latency_s, recall) and the
    shadow comparisons with their (acting, shadow) estimate pairs."""
    q = body["queries"]
    columns = {
        "arm": [q["arms"][i] for i in q["arm"]],
        "outcome": [q["outcomes"][i] for i in q["outcome"]],
        "latency_s": q["latency_s"],
        "recall": q["recall"],
    }
    shadows = []
    for s in body["shadow"]:
        est = s["estimates"]
        pairs = [
            [dict(zip(est["keys"], a, strict=True)), dict(zip(est["keys"], b, strict=True))]
            for a, b in zip(est["acting"], est["shadow"], strict=True)
        ]
        shadows.append({**{k: v for k, v in s.items() if k != "estimates"}, "differences": pairs})
    return columns, shadows


def request(
    address: str,
    action: str,
    payload: Any = None,
    timeout_s: float = TIMEOUT_S,
    keys: Path | None = None,
) -> Any:
    """Send one operator request to the swarm at ``address`` (as the first operator key in
    the key directory ``keys``, if given); its answer's payload. Raises LiveError when nobody
    answers in ``timeout_s``, the swarm refuses the key, or the coordinator refuses."""
    if not address.startswith(("tcp://", "ipc://")):
        raise LiveError(f"{address!r} is not a swarm address (tcp://HOST:PORT, as live up prints)")
    secure = None if keys is None else auth.client(party(keys, "operator"))
    ctx = zmq.Context()
    try:
        ident = f"operator-{os.getpid()}-{time.time_ns()}".encode()
        monitors: list[zmq.Socket] = []

        def before_connect(sock: zmq.Socket) -> None:  # the monitor first, or a handshake
            if secure is not None:  # that fails at once is over before it listens
                secure(sock)
            monitors.append(sock.get_monitor_socket(HANDSHAKE_FAILED))

        sock = sockets.dealer(ctx, address, ident, secure=before_connect)
        failed = monitors[0]
        sockets.send(sock, Message(CONTROL, action, "op", "operator", payload))
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(failed, zmq.POLLIN)
        ready = dict(poller.poll(timeout_s * 1000))
        if sock not in ready:
            event = recv_monitor_message(failed)["event"] if failed in ready else None
            raise LiveError(_silence(address, timeout_s, keys, event))
        _, reply = sockets.recv(sock, routed=False)
    finally:
        ctx.destroy(linger=0)
    if isinstance(reply, ProtocolError):
        raise LiveError(f"{address}: unreadable answer ({reply})")
    body = reply.payload if isinstance(reply.payload, dict) else {}
    if reply.action == "ERROR":
        raise LiveError(str(body.get("error", "refused")))
    return body


def _silence(address: str, timeout_s: float, keys: Path | None, event: int | None) -> str:
    """Why no answer came, in one line (``event``: the handshake's failure, if it failed)."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return f"the swarm at {address} refused the operator key in {keys} (not in its operators/)"
    if event is not None:  # a mechanism mismatch: one side has keys, the other none
        if keys is None:
            return f"the swarm at {address} has keys: give --keys DIR with an operator key"
        return f"the swarm at {address} has no keys: leave out --keys"
    hint = "" if keys is None else f" (is {keys}/coordinator/coordinator.key this swarm's?)"
    return f"no swarm answered at {address} within {timeout_s:g} s{hint}"


def artifact_hash(spec: str) -> str | None:
    """The weights' sha256 an artifact's manifest names, read where the operator runs (the
    coordinator checks it against what it reads itself); None for a registered name."""
    from controllers.store import read_manifest

    ref = spec.split(":")[0]
    return read_manifest(ref).weights_sha256 if Path(ref).is_dir() else None


def controller_hash(controller: Any) -> str | None:
    """The sha256 of the weights a (guarded) learned controller runs; None for heuristics."""
    policy = getattr(controller, "policy", controller)
    return getattr(policy, "artifact_hash", None)


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None

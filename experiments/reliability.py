"""Measure the live runtime's reliability under injected faults (issue 17, items 1-5 and 14):
one stage per guarantee, each printing one flushed line of figures; ``results/reliability.md``
quotes them.

    python -m experiments.reliability [--stages kill,pause,hang,keepalive,restart,links,controllers,
        sim-live] [--links-s 240] [--compare-s 600] [--json FILE]

Every stage starts its own homelab swarm with the scenario's heartbeats (1 s, liveness 3)
and stops every process it started. ``sim-live`` runs one fault schedule in the simulator and
live (emulated stages at the profile's own times) on the same seed's arrivals.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from live import sockets
from live.config import LiveConfig
from live.corpusfiles import write_corpus
from live.faults import agents_of
from live.launcher import LocalLauncher
from live.load import LoadThread
from live.protocol import CONTROL, Message
from live.runner import LiveRun, Swarm, run_live
from live.worker import WorkerSpec
from swarmsim.corpus import scenario_corpus
from swarmsim.faults import parse_fault
from swarmsim.query import AgentState
from swarmsim.scenario_files import load_scenario

FAST = LiveConfig(time_scale=0.05, deadline_s=10.0)  # deadline: 10 s, not homelab's 80 s
COMPARED = ("kill:retriever#1@100", "pause:synth-small@200+30", "partition:worlock@300+20",
            "slow:embedder@400+60=3")  # fmt: skip
STAGES = ("kill", "pause", "hang", "keepalive", "restart", "links", "controllers", "sim-live")
FAULTY = 8  # decisions a faulty controller gets wrong (then it recovers), controllers stage


def _live(rate: float, workers: int, *inject: str) -> LiveRun:
    """Homelab at ``rate`` queries/s on ``workers`` workers, no warm-up, with faults."""
    overrides = (f"rate={rate:g}", "warmup_s=0")
    return LiveRun("homelab", overrides, workers=workers, config=FAST, inject=inject)


def _serve_out(swarm: Swarm, client: LoadThread, limit_s: float) -> dict[str, Any]:
    """Serve until the client is done; the client's counts and the fault section."""
    swarm.serve_until(lambda: not client.is_alive() and not swarm.coord.active, limit_s)
    c = client.stats
    return {
        "sent": c.sent,
        "answered": sum(c.answers.values()) - c.answers.get("unanswered", 0),
        "unanswered": c.answers.get("unanswered", 0),
        "duplicates": c.duplicates,
        "resent": c.resent,
        "outcomes": dict(c.answers),
        "reasons": dict(swarm.coord.metrics.reasons),
    }


def _victim(swarm: Swarm, spec: str) -> Any:
    return swarm.coord.agents[agents_of(swarm.coord, parse_fault(spec).target)[0]]


def kill_stage(_: argparse.Namespace) -> dict[str, Any]:
    """Item 1: kill -9 of a worker of each role under load; ejection delay per role."""
    roles = ("retriever", "evaluator", "synth-small", "embedder")
    kills = [f"kill:{role}@{5 + 5 * i}" for i, role in enumerate(roles)]
    run = _live(4, 8, *kills)
    with Swarm(run) as swarm:
        swarm.coord.restart_clock()
        victims = [_victim(swarm, k) for k in kills]
        client = LoadThread(swarm, 25.0)
        out = _serve_out(swarm, client, 90)
        applied = swarm.injector.summary()["applied"]
        dead_after = swarm.coord.dead_after_s
    ejected = {
        r: round(v.gone - a["at"], 3) for r, v, a in zip(roles, victims, applied, strict=True)
    }
    return {**out, "ejected_after_s": ejected, "bound_s": dead_after}


def pause_stage(_: argparse.Namespace) -> dict[str, Any]:
    """Item 2: a paused worker comes back: late results discarded, re-registration. It is
    slowed first (searches of 0.2 s), so that the pause catches it in the middle of one."""
    run = _live(8, 12, "slow:retriever#1@0+30=100", "pause:retriever#1@8+6")
    with Swarm(run) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        victim = _victim(swarm, "pause:retriever#1@0+1")
        client = LoadThread(swarm, 25.0)
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 20)
        dead_at = coord.now()
        swarm.serve_until(lambda: victim.state == AgentState.RUNNING, 20)
        back_at = coord.now()
        out = _serve_out(swarm, client, 90)
        faults = swarm.injector.summary()
    return {**out, "declared_dead_after_s": round(dead_at - 8, 3),
            "re_registered_after_sigcont_s": round(back_at - 14, 3),
            "late_results_discarded": faults["late_results_discarded"]}  # fmt: skip


def hang_stage(_: argparse.Namespace) -> dict[str, Any]:
    """Item 3: a hung worker is declared dead by its silent application heartbeats."""
    run = _live(4, 8, "hang:synth-small@8+6")
    with Swarm(run) as swarm:
        coord = swarm.coord
        coord.restart_clock()
        victim = _victim(swarm, "hang:synth-small@0")
        client = LoadThread(swarm, 25.0)
        swarm.serve_until(lambda: victim.state == AgentState.DEAD, 20)
        dead_at, alive = coord.now(), swarm.launcher.alive(victim.id)
        swarm.serve_until(lambda: victim.state == AgentState.RUNNING, 20)
        back_at = coord.now()
        out = _serve_out(swarm, client, 90)
    return {**out, "declared_dead_after_s": round(dead_at - 8, 3), "process_alive": alive,
            "re_registered_after_hang_s": round(back_at - 14, 3)}  # fmt: skip


def keepalive_stage(_: argparse.Namespace) -> dict[str, Any]:
    """Item 3: ZMTP heartbeats (100 ms, timeout 1 s) against a hung and a frozen worker."""
    with tempfile.TemporaryDirectory(prefix="swarmsim-reliability-") as name:
        tmp = Path(name)
        write_corpus(scenario_corpus(load_scenario("homelab").corpus), tmp)
        ctx, launcher = zmq.Context(), LocalLauncher()
        try:
            router = ctx.socket(zmq.ROUTER)
            for opt, value in ((zmq.LINGER, 0), (zmq.HEARTBEAT_IVL, 100),
                               (zmq.HEARTBEAT_TIMEOUT, 1000)):  # fmt: skip
                router.setsockopt(opt, value)
            router.bind("tcp://127.0.0.1:0")
            monitor = router.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            launcher.start(WorkerSpec(0, sockets.endpoint(router), "embedder", "embedder",
                                      "rtx3080", str(tmp)))  # fmt: skip
            _beats(router, 60, first=True)
            sockets.send(router, Message(CONTROL, "FAULT", "", "c", {"kind": "hang"}), b"w0")
            _beats(router, 1.0)
            hung_beats = _beats(router, 10.0)
            hung_drops = _disconnects(monitor, 0.1)
            os.kill(launcher.pid(0), signal.SIGSTOP)
            t0 = time.monotonic()
            frozen_drops = _disconnects(monitor, 5.0, first=True)
            seen_after = time.monotonic() - t0
            os.kill(launcher.pid(0), signal.SIGCONT)
        finally:
            launcher.close()
            ctx.destroy(linger=0)
    return {"hung_10s_app_heartbeats": hung_beats, "hung_10s_transport_disconnects": hung_drops,
            "frozen_transport_disconnects": frozen_drops,
            "frozen_seen_after_s": round(seen_after, 2)}  # fmt: skip


def restart_stage(_: argparse.Namespace) -> dict[str, Any]:
    """Item 4: the coordinator restarted under load: rejoin, resume, no silent loss."""
    run = _live(6, 8, "coordinator:restart@10")
    with Swarm(run) as swarm:
        first = swarm.coord
        first.restart_clock()
        retry = FAST.deadline_s + first.dead_after_s
        client = LoadThread(swarm, 30.0, retry_s=retry)
        swarm.serve_until(lambda: swarm.coord is not first, 20)
        second, t0 = swarm.coord, time.monotonic()
        done = second.metrics.completed
        swarm.serve_until(lambda: second.roster.running() == len(second.agents), 20)
        rejoined = time.monotonic() - t0
        swarm.serve_until(lambda: second.metrics.completed > done, 20)
        resumed = time.monotonic() - t0
        out = _serve_out(swarm, client, 150)
        lost = second.metrics.reasons.get("coordinator_restart", 0)
    return {**out, "rejoined_after_s": round(rejoined, 2), "resumed_after_s": round(resumed, 2),
            "in_flight_at_crash": lost}  # fmt: skip


def links_stage(args: argparse.Namespace) -> dict[str, Any]:
    """Item 5: 200 ms ± 50 ms and 5% loss on every link: false deaths per heartbeat period."""
    links = (f"delay:*@0+{args.links_s * 2:g}=200±50", f"drop:*@0+{args.links_s * 2:g}=0.05")
    run = _live(4, 8, *links)
    with Swarm(run) as swarm:
        swarm.coord.restart_clock()
        client = LoadThread(swarm, args.links_s)
        out = _serve_out(swarm, client, args.links_s + 120)
        coord, faults = swarm.coord, swarm.injector.summary()
        periods = len(coord.agents) * coord.now() / swarm.scenario.failures.heartbeat_interval_s
    return {"heartbeat_periods": round(periods), "false_deaths": faults["false_deaths"],
            "false_death_rate": faults["false_deaths"] / periods,
            "heartbeats_lost": faults["heartbeats_lost"],
            "messages_dropped": faults["messages_dropped"],
            "availability": faults["availability"], "client": out}  # fmt: skip


def controllers_stage(_: argparse.Namespace) -> dict[str, Any]:
    """Item 10: a routing controller that raises, returns invalid or NaN actions, or hangs, for
    FAULTY decisions: each is replaced by the heuristic's in the same decision; the policy is
    benched at the next heartbeat and acts again after ``recover_after`` valid decisions."""
    out: dict[str, Any] = {}
    for mode in ("raise", "invalid", "nan", "hang"):
        spec = f"shard-routing=faulty:mode={mode}:after=5:lasting={FAULTY}"
        run = LiveRun("homelab", ("rate=6", "warmup_s=0"), controllers=(spec,), workers=8,
                      config=FAST)  # fmt: skip
        with Swarm(run) as swarm:
            coord = swarm.coord
            coord.restart_clock()
            slot, client = coord.slots["shard-routing"], LoadThread(swarm, 30.0)
            first = benched = back = None
            end = time.monotonic() + 120
            while (client.is_alive() or coord.active) and time.monotonic() < end:
                coord.step(0.05)
                entry = slot.acting
                failed = sum(entry.guard.fallbacks[r] for r in ("raised", "deadline", "invalid"))
                if first is None and failed:
                    first = coord.now()
                if benched is None and entry.benched:
                    benched = coord.now()
                if benched is not None and back is None and not entry.benched:
                    back = coord.now()
            beat = swarm.scenario.failures.heartbeat_interval_s
            stats = client.stats
            asked = entry.guard.policy.decisions  # the faulty controller's, probes included
            out[mode] = {
                "faulty_answers": min(max(asked - 5, 0), FAULTY),
                "replaced_by_heuristic": failed,
                "benched_after_heartbeats": None if benched is None else (benched - first) / beat,
                "reinstated_after_s": None if back is None else back - benched,
                "decide_ms_max": max(slot.decide_us) / 1e3,
                "acting_at_end": slot.acting.label if not slot.acting.benched else "benched",
                "sent": stats.sent,
                "completed": stats.answers.get("completed", 0),
            }
    return out


def sim_live_stage(args: argparse.Namespace) -> dict[str, Any]:
    """Item 14: one schedule (kill, pause, partition, slow) in the simulator and live, on the
    same seed's arrivals: availability and p99 side by side."""
    inject = [x for spec in COMPARED for x in ("--inject", spec)]
    cmd = [sys.executable, "-m", "experiments.cli", "simulate", "homelab", "--seed", "3",
           "--duration", f"{args.compare_s:g}", "--json", *inject]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"skipped": done.stderr.strip().splitlines()[-1:]}
    sim = json.loads(done.stdout)
    live = run_live(LiveRun("homelab", duration_s=args.compare_s, seed=3, inject=COMPARED))
    side = {name: {"availability": s["faults"]["availability"], "p99_s": s["latency_s"]["p99"],
                   "completed": s["queries"]["completed"], "submitted": s["queries"]["submitted"]}
            for name, s in (("sim", sim), ("live", live))}  # fmt: skip
    p99 = side["sim"]["p99_s"], side["live"]["p99_s"]
    return {**side, "availability_gap_pp": 100 * (side["live"]["availability"]
                                                 - side["sim"]["availability"]),
            "p99_ratio": p99[1] / p99[0] if p99[0] else None}  # fmt: skip


def _beats(sock: zmq.Socket, seconds: float, first: bool = False) -> int:
    """HEARTBEATs w0 sends within ``seconds`` (or until the ``first``), heartbeating to it."""
    count, end, beat = 0, time.monotonic() + seconds, 0.0
    while (left := end - time.monotonic()) > 0 and not (first and count):
        if time.monotonic() >= beat:
            sockets.send(sock, Message(CONTROL, "HEARTBEAT", "", "c"), b"w0")
            beat = time.monotonic() + 1.0
        if sock.poll(min(left, 0.2) * 1000):
            _, msg = sockets.recv(sock, routed=True)
            count += getattr(msg, "action", "") == "HEARTBEAT"
    return count


def _disconnects(monitor: zmq.Socket, seconds: float, first: bool = False) -> int:
    """DISCONNECTED events a socket monitor reports within ``seconds`` (or the ``first``)."""
    count, end = 0, time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0 and not (first and count):
        if monitor.poll(left * 1000):
            count += recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED
    return count


RUNNERS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "kill": kill_stage,
    "pause": pause_stage,
    "hang": hang_stage,
    "keepalive": keepalive_stage,
    "restart": restart_stage,
    "links": links_stage,
    "controllers": controllers_stage,
    "sim-live": sim_live_stage,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.reliability")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated stages")
    parser.add_argument("--links-s", type=float, default=240.0, help="seconds of lossy load")
    parser.add_argument("--compare-s", type=float, default=600.0, help="sim-live duration")
    parser.add_argument("--json", type=Path, help="write every stage's figures here")
    args = parser.parse_args(argv)
    stages = args.stages.split(",")
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        print(f"reliability: error: unknown stage {unknown[0]!r} ({', '.join(STAGES)})",
              file=sys.stderr)  # fmt: skip
        return 2
    results = {}
    for stage in stages:
        t0 = time.monotonic()
        results[stage] = RUNNERS[stage](args)
        print(f"{stage} ({time.monotonic() - t0:.0f} s): {json.dumps(results[stage])}", flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Workers started through node supervisors (``live.supervisor``): a ``Launcher`` that
starts one supervisor per scenario node, each with that node's workers.

The scenario's node groups (``count`` identical nodes each) hold the agents; a group's
workers are dealt to its nodes in plan order, ``per_node`` at a time (the group's agents per
node), so agi-1000's 10,000 workers are 125 supervisors of 80. Workers asked for after the
supervisors started (a scale-out) run as flat processes of a ``LocalLauncher``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from swarmsim.scenario import Scenario

from .config import LiveConfig
from .launcher import SINGLE_THREAD_ENV, LocalLauncher, _terminate
from .supervisor import NodeSpec
from .worker import WorkerSpec


def node_of(scenario: Scenario, plan: list[tuple[str, str, int, int]]) -> list[int]:
    """Per planned worker, the index of the node (one of a group's ``count``) it runs on."""
    first: list[int] = []
    per_node: list[int] = []
    for group in scenario.nodes:
        first.append(sum(g.count for g in scenario.nodes[: len(first)]))
        per_node.append(max(sum(a.count for a in group.agents), 1))
    seen: dict[int, int] = {}
    out = []
    for _, _, g, _ in plan:
        k = seen.get(g, 0)
        seen[g] = k + 1
        out.append(first[g] + min(k // per_node[g], scenario.nodes[g].count - 1))
    return out


class SupervisedLauncher:
    """Supervisor processes, one per node (EMULATED: ``hosts`` processes hold them all)."""

    def __init__(
        self,
        nodes: dict[int, int],
        heartbeat_interval_s: float,
        emulated: bool = False,
        hosts: int = 1,
        aggregate: bool = True,
        grace_s: float = 4.0,  # longer than a supervisor's own grace for its workers
    ) -> None:
        self.nodes, self.interval = nodes, heartbeat_interval_s  # worker id -> node index
        self.emulated, self.hosts, self.aggregate = emulated, hosts, aggregate
        self.grace_s = grace_s
        self.pending: list[WorkerSpec] = []
        self.procs: list[subprocess.Popen] = []
        self.host_of: dict[int, subprocess.Popen] = {}  # worker id -> its host process
        self.flat = LocalLauncher(grace_s)
        self.dir = tempfile.TemporaryDirectory(prefix="swarmsim-nodes-")

    def start(self, spec: WorkerSpec) -> None:
        """Before ``launch``: wait for it; after: a flat process (a scale-out)."""
        if self.procs:
            self.flat.start(spec)
        else:
            self.pending.append(spec)

    def launch(self) -> None:
        """Start the supervisors of every worker asked for so far."""
        by_node: dict[int, list[WorkerSpec]] = {}
        for spec in self.pending:
            by_node.setdefault(self.nodes.get(spec.id, 0), []).append(spec)
        specs = [
            NodeSpec(
                n,
                ws[0].address,
                tuple(ws),
                self.interval,
                self.emulated,
                self.aggregate,
                self.dir.name,
            )
            for n, ws in sorted(by_node.items())
        ]
        groups = _split(specs, self.hosts if self.emulated else len(specs))
        for i, group in enumerate(groups):
            path = Path(self.dir.name, f"host{i}.json")
            path.write_text(json.dumps([n.to_dict() for n in group]))
            cmd = [sys.executable, "-m", "live.supervisor", "--spec", str(path)]
            proc = subprocess.Popen(cmd, env={**os.environ, **SINGLE_THREAD_ENV},
                                    stdin=subprocess.DEVNULL)  # fmt: skip
            self.procs.append(proc)
            for n in group:
                for w in n.workers:
                    self.host_of[w.id] = proc
        self.pending = []

    def alive(self, worker_id: int) -> bool:
        """Its supervisor lives (a real worker between restarts counts as alive)."""
        proc = self.host_of.get(worker_id)
        return self.flat.alive(worker_id) if proc is None else proc.poll() is None

    def stop(self, worker_id: int) -> None:
        """A supervised worker exits on the coordinator's STOP (its supervisor lets it go)."""
        if worker_id not in self.host_of:
            self.flat.stop(worker_id)

    def pid(self, worker_id: int) -> int:
        """A real supervised worker's current process id (from its supervisor's pid file)."""
        if worker_id not in self.host_of:
            return self.flat.pid(worker_id)
        path = Path(self.dir.name, f"w{worker_id}.pid")
        if self.emulated or not path.exists():
            raise ValueError(f"worker {worker_id} has no process of its own (EMULATED or not up)")
        return int(path.read_text())

    def kill(self, worker_id: int) -> None:
        """SIGKILL a worker (failure injection); its supervisor restarts it."""
        if worker_id not in self.host_of:
            self.flat.kill(worker_id)
            return
        with contextlib.suppress(ProcessLookupError, ValueError):  # gone, or not yet up
            os.kill(self.pid(worker_id), signal.SIGKILL)

    def close(self) -> None:
        try:
            self.flat.close()
            _terminate(self.procs, self.grace_s)  # each supervisor stops its workers first
        finally:
            self.procs = []
            self.dir.cleanup()


def launcher_for(
    scenario: Scenario, plan: list[tuple[str, str, int, int]], cfg: LiveConfig, grace_s: float
) -> LocalLauncher | SupervisedLauncher:
    """The launcher asked for: flat worker processes, or node supervisors (``cfg.supervisors``
    or the scenario's ``failures.supervisors``, the simulator's model of the same hierarchy)."""
    if not (cfg.supervisors or scenario.failures.supervisors):
        return LocalLauncher(grace_s=grace_s)
    nodes = dict(enumerate(node_of(scenario, plan)))
    interval = scenario.failures.heartbeat_interval_s
    return SupervisedLauncher(nodes, interval, cfg.emulated_hosts > 0, cfg.emulated_hosts)


def _split(specs: list[NodeSpec], n: int) -> list[list[NodeSpec]]:
    if not specs:
        return []
    n = max(1, min(n, len(specs)))
    return [specs[i::n] for i in range(n)]

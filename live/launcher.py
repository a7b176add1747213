"""Where worker processes come from. ``Launcher`` is the interface scaling goes through;
``LocalLauncher`` starts local subprocesses. A cluster-scheduler launcher implements the same
four methods and passes the same ``WorkerSpec`` (its ``address`` then names a reachable
coordinator endpoint instead of loopback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Protocol

from .worker import WorkerSpec

SINGLE_THREAD_ENV = {  # one thread per runtime per worker process (REFERENCE.md, Threads)
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


class Launcher(Protocol):
    """Starts and stops worker processes wherever they run."""

    def start(self, spec: WorkerSpec) -> None:
        """Start a worker playing ``spec``; it reports READY to the coordinator itself."""

    def stop(self, worker_id: int) -> None:
        """Ask a worker to exit (after the coordinator has sent it STOP); kill if it lingers."""

    def alive(self, worker_id: int) -> bool:
        """Whether the worker's process still exists (as far as the launcher can tell)."""

    def close(self) -> None:
        """Stop every worker this launcher started, on every path."""


class FaultLauncher(Launcher, Protocol):
    """A launcher failure injection can act through (``live.faults``)."""

    def pid(self, worker_id: int) -> int:
        """The worker's process id (signals reach it on this machine only)."""

    def kill(self, worker_id: int) -> None:
        """Kill the worker at once, as SIGKILL would."""


class LocalLauncher:
    """Workers as subprocesses of this process (``python -m live.worker``)."""

    def __init__(self, grace_s: float = 2.0) -> None:
        self.grace_s = grace_s
        self.procs: dict[int, subprocess.Popen] = {}
        self.stopping: list[subprocess.Popen] = []

    def start(self, spec: WorkerSpec) -> None:
        if spec.id in self.procs and self.procs[spec.id].poll() is None:
            raise ValueError(f"worker {spec.id} is already running")
        cmd = [sys.executable, "-m", "live.worker", "--spec", spec.to_json()]
        self.procs[spec.id] = subprocess.Popen(
            cmd, env={**os.environ, **SINGLE_THREAD_ENV}, stdin=subprocess.DEVNULL
        )

    def pid(self, worker_id: int) -> int:
        return self.procs[worker_id].pid

    def alive(self, worker_id: int) -> bool:
        proc = self.procs.get(worker_id)
        return proc is not None and proc.poll() is None

    def stop(self, worker_id: int) -> None:
        """SIGTERM without waiting (the coordinator's loop must not block); reaped later."""
        proc = self.procs.pop(worker_id, None)
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            self.stopping.append(proc)
        self.stopping = [p for p in self.stopping if p.poll() is None]

    def kill(self, worker_id: int) -> None:
        """SIGKILL a worker at once (failure injection)."""
        proc = self.procs.get(worker_id)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        procs, self.procs = [*self.procs.values(), *self.stopping], {}
        self.stopping = []
        _terminate(procs, self.grace_s)


def _terminate(procs: list[subprocess.Popen], grace_s: float) -> None:
    """SIGTERM, wait up to ``grace_s`` in total, then SIGKILL; always reaps."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    end = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(end - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

"""Process checks for tests that start worker processes: who is a child, who is gone, and
how long a process group takes to go once signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie awaiting its reap counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (a swarm started in its own session:
    its coordinator, workers and load generator), zombies excluded."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()  # after "pid (comm)"
        except OSError:  # exited while listed
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@dataclass(frozen=True)
class Stopped:
    """How a signalled process and its group went."""

    exit_s: float  # from the signal until the process and every member of its group were gone
    orphans: list[int]  # members still running when the process had exited (their parent)
    returncode: int
    out: str  # its stdout


def stop_group(proc: subprocess.Popen, sig: int, whole_group: bool, timeout_s: float = 30):
    """Send ``sig`` to ``proc`` (started with ``start_new_session``), or to its whole group as
    Ctrl-C in a terminal does, and time its going; whatever is left at ``timeout_s`` is
    killed (and reported: as orphans if ``proc`` itself exited)."""
    start = time.monotonic()
    (os.killpg if whole_group else os.kill)(proc.pid, sig)
    orphans: list[int] | None = None
    while time.monotonic() < start + timeout_s:
        if orphans is None and proc.poll() is not None:
            orphans = group(proc.pid)
        if orphans is not None and not group(proc.pid):
            break
        time.sleep(0.005)
    exit_s = time.monotonic() - start
    left = group(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    out = proc.stdout.read() if proc.stdout is not None else ""
    proc.wait()
    return Stopped(exit_s, left if orphans is None else orphans, proc.returncode, out)

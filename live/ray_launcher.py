"""Workers as Ray actors (issue 19, "workers on other hosts"): ``RayLauncher`` implements
``Launcher`` on a Ray cluster, or on a local Ray instance it starts.

Each worker is one actor whose process *is* the worker: ``run`` calls ``Worker(spec).run()``
in the actor, so the actor's death (``ray.kill``, a SIGKILL, its node lost) is the worker's,
and ``alive`` is whether the actor's ``run`` call is still unfinished (``ray.wait`` with
timeout 0: a local check, microseconds). A worker that exits by itself (STOP) finishes
``run``. No process stands between actor and worker, so none can be orphaned or outlive the
other (an actor that ran ``python -m live.worker`` as a subprocess could be killed and leave
its worker serving). A host without the coordinator's corpus directory gets a copy through
the object store (``materialise``); the key directory must be at the same path on each host.

Resources each actor asks for (``RayResources``; name a node's with ``ray start --resources``):

- ``CPU``: ``cpus`` (default 1);
- ``GPU``: ``gpu_share`` (default 0.5) for a worker on a ``gpu``-kind device profile, so two
  workers share one card as homelab's calisota puts synth-large and the embedder on its one;
  an accelerator (Grayskull) is no CUDA device Ray knows: it asks for none;
- ``swarmsim-node:<node>``: 1, where ``<node>`` is the scenario's node group the worker is
  placed on (``WorkerSpec.node``, e.g. ``swarmsim-node:calisota``): give each Ray node as many
  units of its group's resource as workers it may host.

Ray is imported lazily (``init_ray``), so ``pip install -e .`` without the ``.[ray]`` extra
works and ``--help`` never imports it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from swarmsim.errors import SwarmError
from swarmsim.profiles import load_profiles

from .auth import is_loopback
from .launcher import SINGLE_THREAD_ENV
from .worker import WorkerSpec

OBJECT_STORE_BYTES = 200 * 1024**2  # a local instance's cap: only corpus files and small rows
CHECKOUT = Path(__file__).resolve().parents[1]  # the local instance's workers import this tree
NODE_RESOURCE = "swarmsim-node:"  # + a scenario node's name: the custom resource of its workers


def init_ray(address: str | None, num_cpus: int | None = None, **local: Any) -> bool:
    """Join the cluster at ``address``, or start a local instance (``num_cpus`` and ``local``
    resources, a capped object store, this checkout on its workers' path). False, and nothing
    done, if this process runs Ray already (a notebook's, a test's: used as it is). SwarmError
    in one line if Ray is not installed or the address does not answer."""
    try:
        import ray
    except ImportError:
        raise SwarmError("Ray is not installed: pip install -e '.[ray]'") from None
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                              "logging_level": logging.ERROR}  # fmt: skip
    if address is None:  # "local": a new instance, even where `ray start` left a cluster file
        kwargs |= {"address": "local", "num_cpus": num_cpus,
                   "object_store_memory": OBJECT_STORE_BYTES,
                   "runtime_env": {"env_vars": {"PYTHONPATH": str(CHECKOUT)}}, **local}  # fmt: skip
    else:
        probe_address(address)
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SwarmError(f"Ray at {address or 'local'}: {first}") from None
    return True


def probe_address(address: str, timeout_s: float = 5.0) -> None:
    """SwarmError unless ``address`` (HOST:PORT or ray://HOST:PORT; ``auto`` is Ray's to find)
    accepts a TCP connection: ``ray.init`` retries an unreachable one for minutes."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise SwarmError(f"--ray-address: expected HOST:PORT or ray://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as err:
        raise SwarmError(f"--ray-address {address}: cannot connect ({err})") from None


@dataclass(frozen=True)
class RayResources:
    """What one worker actor asks the Ray scheduler for."""

    cpus: float = 1.0
    gpu_share: float = 0.5  # a gpu-device worker's share of one card

    def of(self, spec: WorkerSpec) -> dict[str, Any]:
        """The actor options for ``spec``: num_cpus, num_gpus, its node group's resource."""
        return self._asks(spec.device, spec.node)

    def _asks(self, device: str, node: str) -> dict[str, Any]:
        kind = load_profiles().device(device).kind
        return {
            "num_cpus": self.cpus,
            "num_gpus": self.gpu_share if kind == "gpu" else 0,
            "resources": {f"{NODE_RESOURCE}{node}": 1} if node else {},
        }

    def local(self, placed: list[tuple[str, str]], spare: int) -> dict[str, Any]:
        """A local instance's ``num_cpus``, ``num_gpus`` and ``resources`` (logical: this
        machine plays every node) for workers on ``placed`` (device, node), ``spare`` times
        over."""
        asks = [self._asks(device, node) for device, node in placed]
        nodes: dict[str, float] = {}
        for ask in asks:
            for name, amount in ask["resources"].items():
                nodes[name] = nodes.get(name, 0) + amount * spare
        return {
            "num_cpus": math.ceil(sum(a["num_cpus"] for a in asks) * spare),
            "num_gpus": math.ceil(sum(a["num_gpus"] for a in asks) * spare),
            "resources": nodes,
        }


class WorkerActor:
    """A worker in a Ray actor's process (made a Ray actor class by ``_actor_class``)."""

    def where(self) -> tuple[str, int]:
        """This actor's node IP address and process id."""
        import ray

        return ray.util.get_node_ip_address(), os.getpid()

    def run(self, spec_json: str, corpus: dict[str, bytes]) -> int:
        """Serve as ``live.worker`` does until STOP; the corpus from ``corpus`` if this host
        lacks the coordinator's directory."""
        from .worker import Worker

        spec = WorkerSpec.from_json(spec_json)
        spec = replace(spec, corpus_dir=str(materialise(Path(spec.corpus_dir), corpus)))
        return Worker(spec).run()


def materialise(directory: Path, files: dict[str, bytes], base: Path | None = None) -> Path:
    """``directory`` if it holds the corpus ``files`` describe (the coordinator's host, or a
    shared file system), else a copy written once per host under ``base`` (the temporary
    directory), named by the corpus's fingerprint and shared by the workers there."""
    meta = json.loads(files["corpus.json"])
    here = directory / "corpus.json"
    if here.exists() and json.loads(here.read_text())["fingerprint"] == meta["fingerprint"]:
        return directory
    base = Path(tempfile.gettempdir()) if base is None else base
    target = base / f"swarmsim-corpus-{meta['fingerprint']}"
    if not (target / "corpus.json").exists():
        tmp = Path(tempfile.mkdtemp(prefix="swarmsim-corpus-", dir=base))
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        try:
            tmp.rename(target)  # atomic: a worker beside this one may have won the race
        except OSError:
            for path in tmp.iterdir():
                path.unlink()
            tmp.rmdir()
    return target


def _actor_class() -> Any:
    import ray

    return ray.remote(max_restarts=0, max_task_retries=0)(WorkerActor)


class RayLauncher:
    """Workers as Ray actors, placed by their resource requests (``RayResources``)."""

    def __init__(
        self,
        address: str | None = None,
        asks: RayResources | None = None,
        grace_s: float = 10.0,
        **local: Any,
    ) -> None:
        """Join ``address`` or start a local instance (``local``: its ``num_cpus``, ``num_gpus``,
        ``resources``), unless this process runs Ray already."""
        self.owns = init_ray(address, **local)
        import ray

        self.ray: Any = ray
        self.asks, self.grace_s = asks or RayResources(), grace_s
        try:
            self.actor_cls = _actor_class()
        except BaseException:
            if self.owns:
                ray.shutdown()
            raise
        self.actors: dict[int, Any] = {}
        self.runs: dict[int, Any] = {}  # worker id -> its actor's run() ObjectRef
        self.pids: dict[int, Any] = {}  # worker id -> its actor's where() ObjectRef
        self.corpora: dict[str, Any] = {}  # corpus_dir -> the ObjectRef of its files
        self.closed = False

    def start(self, spec: WorkerSpec) -> None:
        if self.alive(spec.id):
            raise ValueError(f"worker {spec.id} is already running")
        options = self.asks.of(spec)
        self._check_fits(spec, options)
        spec = replace(spec, address=self.reachable(spec.address))
        env = dict(SINGLE_THREAD_ENV)  # merged with the job's (a local instance's PYTHONPATH)
        actor = self.actor_cls.options(runtime_env={"env_vars": env}, **options).remote()
        self.actors[spec.id] = actor
        self.pids[spec.id] = actor.where.remote()
        self.runs[spec.id] = actor.run.remote(spec.to_json(), self._corpus(spec.corpus_dir))

    def reachable(self, address: str) -> str:
        """The coordinator endpoint a worker on any node can connect to: a wildcard bind's
        host replaced by this node's IP address. SwarmError for a loopback endpoint when the
        cluster has nodes on other hosts (bind --worker-bind tcp://0.0.0.0:PORT, with keys)."""
        scheme, _, rest = address.partition("://")
        host, _, port = rest.rpartition(":")
        if host in ("0.0.0.0", "*", "[::]"):
            return f"{scheme}://{self.ray.util.get_node_ip_address()}:{port}"
        if is_loopback(address):
            hosts = {n["NodeManagerAddress"] for n in self.ray.nodes() if n["Alive"]}
            if len(hosts) > 1:
                raise SwarmError(f"the workers' endpoint {address} is loopback, but the Ray "
                                 f"cluster spans {len(hosts)} hosts: give --worker-bind "
                                 "tcp://0.0.0.0:PORT (with --keys)")  # fmt: skip
        return address

    def _check_fits(self, spec: WorkerSpec, options: dict[str, Any]) -> None:
        """SwarmError if the cluster has none of a resource the worker asks for (it would
        wait unplaced for ever)."""
        total = self.ray.cluster_resources()
        asks = {"CPU": options["num_cpus"], "GPU": options["num_gpus"], **options["resources"]}
        for name, amount in asks.items():
            if amount > total.get(name, 0.0):
                raise SwarmError(f"worker {spec.id} ({spec.layer} on {spec.device}) asks Ray "
                                 f"for {amount:g} {name}; the cluster has "
                                 f"{total.get(name, 0.0):g}")  # fmt: skip

    def _corpus(self, directory: str) -> Any:
        """The corpus files in the object store (put once per directory)."""
        if directory not in self.corpora:
            files = {p.name: p.read_bytes() for p in Path(directory).iterdir() if p.is_file()}
            self.corpora[directory] = self.ray.put(files)
        return self.corpora[directory]

    def pid(self, worker_id: int) -> int:
        """The worker's process id on its host (meaningful for signals on this host only)."""
        return int(self.ray.get(self.pids[worker_id], timeout=60)[1])

    def alive(self, worker_id: int) -> bool:
        run = self.runs.get(worker_id)
        if run is None:
            return False
        ready, _ = self.ray.wait([run], timeout=0, fetch_local=False)
        return not ready

    def stop(self, worker_id: int) -> None:
        """The worker was sent STOP: its actor is killed without waiting (the coordinator's
        loop must not block; as the local launcher's SIGTERM follows STOP), freeing its
        resources."""
        actor = self.actors.pop(worker_id, None)
        self.runs.pop(worker_id, None)
        if actor is not None:
            self.ray.kill(actor, no_restart=True)

    def kill(self, worker_id: int) -> None:
        """Kill the worker's actor now (failure injection) and wait until Ray has seen it
        die, so ``alive`` is false on return (as a SIGKILLed subprocess is reaped)."""
        actor, run = self.actors.get(worker_id), self.runs.get(worker_id)
        if actor is not None and run is not None and self.alive(worker_id):
            self.ray.kill(actor, no_restart=True)
            self.ray.wait([run], timeout=10, fetch_local=False)

    def close(self) -> None:
        """Kill every actor this launcher started and wait (up to ``grace_s``) until each is
        dead: Ray has seen it die and, on this host, its process has exited (Ray reports the
        death a little before). Shut Ray down if this launcher started or joined it."""
        if self.closed:
            return
        self.closed = True
        runs, here = list(self.runs.values()), self._pids_here()
        end = time.monotonic() + self.grace_s
        try:
            for worker_id in list(self.actors):
                self.stop(worker_id)
            if runs:
                self.ray.wait(runs, num_returns=len(runs), timeout=self.grace_s,
                              fetch_local=False)  # fmt: skip
            while any(_running(pid) for pid in here) and time.monotonic() < end:
                time.sleep(0.02)
        finally:
            if self.owns:
                self.ray.shutdown()

    def _pids_here(self) -> list[int]:
        """The process ids of this launcher's live actors on this host (known by now)."""
        ip = self.ray.util.get_node_ip_address()
        refs = [self.pids[i] for i in self.actors if i in self.pids]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=1.0) if refs else ([], [])
        found = []
        for ref in ready:
            with contextlib.suppress(self.ray.exceptions.RayError):
                host, pid = self.ray.get(ref)
                if host == ip:
                    found.append(pid)
        return found


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is no zombie (Linux /proc; elsewhere: exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:  # exited meanwhile, or a system without /proc: it existed
        return not Path("/proc/self").exists()

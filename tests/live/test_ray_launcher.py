"""Workers as Ray actors (issue 19, item 2): a homelab swarm on one machine's local Ray
instance, its workers placed by CPU, GPU and swarmsim-node resources, serving; a worker actor
killed (``ray.kill``) and another SIGKILLed, both noticed and re-placed; every actor and
worker process gone at the end. One Ray instance serves the module (declared resources are
logical: this machine plays every node). Not tested: Ray nodes on other hosts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from procs import children, gone

from live.config import LiveConfig
from live.keys import make_keys
from live.load import LoadThread
from live.ray_launcher import NODE_RESOURCE, RayLauncher, init_ray, materialise
from live.runner import LiveRun, Swarm
from swarmsim.query import AgentState

ray = pytest.importorskip("ray")

CPUS, GPUS = 8, 2
NODES = {"worlock": 2, "spinoza": 6, "calisota": 4}  # workers each node may host
HEARTBEAT = ("failures.heartbeat_interval_s=0.2", "failures.heartbeat_liveness=3")
ZERO = LiveConfig(time_scale=0, deadline_s=5.0, reconnect_initial_s=0.2)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = init_ray(None, num_cpus=CPUS, num_gpus=GPUS,
                       resources={NODE_RESOURCE + n: k for n, k in NODES.items()})  # fmt: skip
    yield
    if started:
        ray.shutdown()


def _run(**kw) -> LiveRun:
    """Homelab on two shards, seven workers (three retrievers, one of each other layer)."""
    overrides = ("rate=4", "corpus.n_shards=2", *HEARTBEAT)
    return LiveRun("homelab", overrides, workers=6, config=ZERO, launcher="ray", **kw)


def _serve(swarm: Swarm, seconds: float) -> LoadThread:
    client = LoadThread(swarm, seconds, 10)
    swarm.serve_until(lambda: not client.is_alive() and not swarm.coord.active, 30)
    assert not client.is_alive()
    return client


def _free(expected: dict[str, float], limit_s: float = 10) -> dict[str, float]:
    """Ray's available resources once they match ``expected`` (its view lags a little)."""
    end = time.monotonic() + limit_s
    while True:
        free = ray.available_resources()
        if all(abs(free.get(k, 0) - v) < 1e-6 for k, v in expected.items()):
            return free
        if time.monotonic() > end:
            return free
        time.sleep(0.1)


def _asked(swarm: Swarm) -> dict[str, float]:
    """What the swarm's running workers ask Ray for, summed."""
    total: dict[str, float] = {}
    for agent in swarm.coord.agents.values():
        if agent.state != AgentState.RUNNING:
            continue
        ask = swarm.launcher.asks.of(swarm.coord.roster.specs[agent.id])
        for name, amount in {"CPU": ask["num_cpus"], "GPU": ask["num_gpus"],
                             **ask["resources"]}.items():  # fmt: skip
            total[name] = total.get(name, 0) + amount
    return total


def test_a_ray_swarm_serves_re_places_killed_workers_and_leaves_nothing_behind():
    totals = {"CPU": CPUS, "GPU": GPUS, **{NODE_RESOURCE + n: k for n, k in NODES.items()}}
    with Swarm(_run(replace_dead=True)) as swarm:
        coord, launcher = swarm.coord, swarm.launcher
        assert isinstance(launcher, RayLauncher)
        asked = _asked(swarm)  # 3 gpu-device workers at half a card; grayskull asks none
        assert asked["CPU"] == 7 and asked["GPU"] == 1.5
        assert asked[NODE_RESOURCE + "spinoza"] == 4  # three retrievers and the evaluator
        assert asked[NODE_RESOURCE + "calisota"] == 2  # synth-large and the embedder
        free = _free({k: totals[k] - asked.get(k, 0) for k in totals})
        assert {k: free.get(k, 0) for k in totals} == {k: totals[k] - asked.get(k, 0)
                                                       for k in totals}  # fmt: skip
        pids = {a: launcher.pid(a) for a in coord.agents}
        assert all(not gone(p) and p not in children(os.getpid()) for p in pids.values())  # Ray's
        coord.restart_clock()
        first = _serve(swarm, 2.0)
        assert first.stats.sent > 0 and first.stats.answers == {"completed": first.stats.sent}

        by_layer = {a.layer: a.id for a in coord.agents.values()}
        killed, shot = by_layer["evaluator"], by_layer["embedder"]  # each its layer's only one
        struck = time.monotonic()
        launcher.kill(killed)  # ray.kill of the actor
        os.kill(pids[shot], signal.SIGKILL)  # the actor's process, from outside Ray
        assert not launcher.alive(killed)
        swarm.serve_until(lambda: coord.roster.running() == 7 and len(coord.agents) == 9, 30)
        replaced_s = time.monotonic() - struck
        assert coord.agents[killed].state == coord.agents[shot].state == AgentState.DEAD
        assert swarm.replaced == {killed, shot} and coord.roster.running() == 7
        new = [a for a in coord.agents.values() if a.id not in pids]
        assert sorted(a.layer for a in new) == ["embedder", "evaluator"]
        assert all(a.state == AgentState.RUNNING for a in new)
        pids |= {a.id: launcher.pid(a.id) for a in new}
        second = _serve(swarm, 2.0)  # the swarm serves again, every query completed
        assert second.stats.answers == {"completed": second.stats.sent} and second.stats.sent
        assert replaced_s < 15  # noticed at once (alive() is false), started, READY
    assert all(gone(p) for p in pids.values())
    assert _free(totals) == ray.available_resources()
    assert {k: ray.available_resources().get(k, 0) for k in totals} == totals  # no actor holds


def test_workers_join_with_curve_keys_through_a_wildcard_bind(tmp_path):
    make_keys(tmp_path, {"worker": 1, "client": 1, "operator": 1})
    run = _run(keys=tmp_path, worker_bind="tcp://0.0.0.0:0")
    with Swarm(run) as swarm:  # started: every worker reported READY over CURVE
        specs = swarm.coord.roster.specs
        assert swarm.coord.roster.running() == 7
        assert swarm.coord.worker_address.startswith("tcp://0.0.0.0:")
        ip = ray.util.get_node_ip_address()
        assert swarm.launcher.reachable(swarm.coord.worker_address).startswith(f"tcp://{ip}:")
        assert all(s.keys == str(tmp_path.resolve()) for s in specs.values())
        pids = [swarm.launcher.pid(i) for i in specs]
    assert all(gone(p) for p in pids)


def test_a_worker_asking_for_a_resource_the_cluster_lacks_is_refused_at_start(tmp_path):
    from live.worker import WorkerSpec
    from swarmsim.errors import SwarmError

    launcher = RayLauncher()  # joins this module's instance (and leaves it running)
    spec = WorkerSpec(0, "tcp://127.0.0.1:1", "retriever", "retriever", "cpu-desktop",
                      str(tmp_path), shard=0, node="nowhere")  # fmt: skip
    with pytest.raises(SwarmError, match="1 swarmsim-node:nowhere; the cluster has 0"):
        launcher.start(spec)
    assert not launcher.actors and not launcher.alive(0)
    launcher.close()
    assert ray.is_initialized()


def test_a_host_without_the_corpus_gets_a_copy_named_by_its_fingerprint(tmp_path):
    from live.corpusfiles import write_corpus
    from swarmsim.corpus import scenario_corpus
    from swarmsim.scenario_files import load_scenario

    src = write_corpus(scenario_corpus(load_scenario("homelab").corpus), tmp_path / "c")
    files = {p.name: p.read_bytes() for p in src.iterdir()}
    assert materialise(src, files) == src  # the coordinator's host: used where it is
    copy = materialise(tmp_path / "elsewhere", files, tmp_path)
    assert copy != src and materialise(tmp_path / "elsewhere", files, tmp_path) == copy
    assert {p.name: p.read_bytes() for p in copy.iterdir()} == files


def test_an_unreachable_ray_address_is_one_line_exit_2():
    cmd = [sys.executable, "-m", "experiments.cli", "live", "run", "homelab", "--duration",
           "1", "--launcher", "ray", "--ray-address", "127.0.0.1:1", "--no-progress"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "127.0.0.1:1" in out.stderr
    assert "cannot connect" in out.stderr and "Traceback" not in out.stderr

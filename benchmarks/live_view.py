"""The live ClusterView kept incrementally against rebuilding it per decision, at 100 to
10,000 agents, in the same run (a benchmark, not a test).

A homelab coordinator with no worker processes (its agents are entered into its roster and
marked running) takes one message per decision (an agent's load report), then builds a view
of all agents and one of the retrievers (the routing Task's). The baseline rebuilds the
agent table and node health from the agent objects, as the view did before
``live.columns``: one Python pass over every agent per decision.

Run: ``python benchmarks/live_view.py [--out results/live_view.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from live.coordinator import Coordinator
from live.corpusfiles import CorpusFiles, write_corpus
from live.state import Agent
from live.worker import WorkerSpec
from swarmsim import load_scenario
from swarmsim.corpus import scenario_corpus
from swarmsim.query import GONE, AgentState
from swarmsim.view import AgentTable


class Absent:
    """A launcher whose workers never start (the agents live in the roster only)."""

    def start(self, spec: object) -> None: ...

    def stop(self, worker_id: int) -> None: ...

    def alive(self, worker_id: int) -> bool:
        return False

    def close(self) -> None: ...


def rebuilt(coord: Coordinator, roles: tuple[str, ...] | None) -> tuple[AgentTable, np.ndarray]:
    """The agent table and node health from the agent objects (the view before columns)."""
    now, dead_after = coord.now(), coord.roster.dead_after_s
    index = {n: i for i, n in enumerate(coord.scenario.layers)}
    agents: list[Agent] = sorted(
        (a for a in coord.agents.values()
         if a.state != AgentState.STOPPED and (roles is None or a.role in roles)),
        key=lambda a: a.id,
    )  # fmt: skip
    table = AgentTable(
        id=np.array([a.id for a in agents], dtype=np.int64),
        node=np.array([a.node for a in agents], dtype=np.int64),
        layer=np.array([index[a.layer] for a in agents], dtype=np.int64),
        shard=np.array([a.shard for a in agents], dtype=np.int64),
        state=np.array([int(a.state) for a in agents], dtype=np.int64),
        healthy=np.array(
            [a.state != AgentState.DEAD and now - a.last_seen <= dead_after for a in agents]
        ),
        queue=np.array([a.queue for a in agents], dtype=np.int64),
        in_flight=np.array([len(a.jobs) for a in agents], dtype=np.int64),
        latency_s=np.array([a.latency_s for a in agents], dtype=np.float64),
        utilisation=np.array([min(a.busy_s / max(now - a.born, 1e-9), 1.0) for a in agents]),
        kv_util=np.array([a.kv_util for a in agents], dtype=np.float64),
        training=np.zeros(len(agents), dtype=bool),
    )
    n_nodes = len(coord.node_names)
    up, placed = np.ones(n_nodes, dtype=bool), np.zeros(n_nodes, dtype=bool)
    for a in coord.agents.values():
        if 0 <= a.node < n_nodes and a.state != AgentState.STOPPED:
            if not placed[a.node]:
                placed[a.node], up[a.node] = True, False
            alive = a.state not in GONE and (
                a.state == AgentState.STARTING or now - a.last_seen <= dead_after
            )
            up[a.node] |= alive
    return table, up


def measure(n_agents: int, files: CorpusFiles, rounds: int) -> dict[str, float]:
    scenario = load_scenario("homelab")
    coord = Coordinator(scenario, files, Absent())
    try:
        layers = list(scenario.layers)
        for i in range(n_agents):
            layer = layers[i % len(layers)]
            role = scenario.layers[layer].role
            shard = i % files.n_shards if role == "retriever" else -1
            spec = WorkerSpec(i, "", layer, role, "cpu-desktop", "", shard=shard)
            agent = coord.roster.launch(spec, node=i % len(scenario.nodes))
            coord.roster.ready(agent, layer, role, shard)
        out: dict[str, float] = {"agents": n_agents}
        for label, roles in (("all", None), ("retrievers", ("retriever",))):
            kept, again = [], []
            for i in range(rounds):
                coord.agents[i * 7919 % n_agents].report({"queue": i % 5})  # a message
                t = time.perf_counter()
                coord.view(None, roles, False)
                kept.append(time.perf_counter() - t)
                t = time.perf_counter()
                rebuilt(coord, roles)
                again.append(time.perf_counter() - t)
            out[f"{label}_kept_us_p50"] = float(np.median(kept) * 1e6)
            out[f"{label}_rebuilt_us_p50"] = float(np.median(again) * 1e6)
            out[f"{label}_speedup"] = float(np.median(again) / np.median(kept))
        return out
    finally:
        coord.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(scenario_corpus(load_scenario("homelab").corpus), Path(tmp))
        files = CorpusFiles.load(Path(tmp))
        rows = []
        for n in (100, 1_000, 10_000):
            print(f"[live_view] {n} agents", file=sys.stderr, flush=True)
            rows.append(measure(n, files, args.rounds))
    result = {
        "rows": rows,
        "load_average": os.getloadavg(),
        "command": "python benchmarks/live_view.py --out results/live_view.json",
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

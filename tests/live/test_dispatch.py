"""The coordinator's dispatch rule, without processes: the simulator's tie-break."""

from __future__ import annotations

from live.coordinator import Coordinator
from live.corpusfiles import CorpusFiles, write_corpus
from live.state import RUNNING, Job
from live.worker import WorkerSpec
from swarmsim.corpus import scenario_corpus
from swarmsim.scenario_files import load_scenario


class NoLauncher:
    """Starts nothing: the agents exist only in the coordinator's tables."""

    def start(self, spec: WorkerSpec) -> None: ...
    def stop(self, worker_id: int) -> None: ...
    def alive(self, worker_id: int) -> bool:
        return True

    def close(self) -> None: ...


def test_ties_go_to_the_agent_whose_load_changed_longest_ago(tmp_path):
    """As the simulator's pool does: two idle synthesizers alternate instead of the lower id
    taking every job (on homelab they are a fast and a slow GPU, so the rule shows in p50)."""
    scenario = load_scenario("homelab")
    write_corpus(scenario_corpus(scenario.corpus), tmp_path)
    coord = Coordinator(scenario, CorpusFiles.load(tmp_path), NoLauncher())
    try:
        for wid in (0, 1):
            coord.launch(WorkerSpec(wid, "", "synth-small", "synthesizer", "rtx-3080", ""))
            coord.agents[wid].state = RUNNING
            coord.agents[wid].load_mark = next(coord.ticks)
        picks = []
        for n in range(4):
            agent = coord._least_loaded("synth-small")
            picks.append(agent.id)
            job = Job(f"j{n}", None, "synth-small", "SYNTH", None)
            agent.jobs[job.id] = job
            agent.load_mark = next(coord.ticks)
            agent.jobs.pop(job.id)  # answered at once: idle again, its load just changed
            agent.load_mark = next(coord.ticks)
        assert picks == [0, 1, 0, 1]
    finally:
        coord.close()

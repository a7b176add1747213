"""The coordinator's dispatch rule, without processes: the simulator's tie-break."""

from __future__ import annotations

from live.state import Job
from live.worker import WorkerSpec


def test_ties_go_to_the_agent_whose_load_changed_longest_ago(offline):
    """As the simulator's pool does: two idle synthesizers alternate instead of the lower id
    taking every job (on homelab they are a fast and a slow GPU, so the rule shows in p50)."""
    coord, roster = offline, offline.roster
    for wid in (0, 1):
        roster.launch(WorkerSpec(wid, "", "synth-small", "synthesizer", "rtx3080", ""))
        roster.ready(coord.agents[wid], "synth-small", "synthesizer", -1)
    picks = []
    for n in range(4):
        agent = coord.dispatch.least_loaded("synth-small")
        picks.append(agent.id)
        job = Job(f"j{n}", None, "synth-small", "SYNTH", None)
        roster.add_job(agent, job)
        roster.pop_job(agent, job.id)  # answered at once: idle again, its load just changed
    assert picks == [0, 1, 0, 1]


def test_a_busy_agent_is_passed_over_and_a_full_one_is_not_picked(offline):
    coord, roster = offline, offline.roster
    for wid in (0, 1):
        roster.launch(WorkerSpec(wid, "", "synth-small", "synthesizer", "rtx3080", ""))
        roster.ready(coord.agents[wid], "synth-small", "synthesizer", -1)
    first = coord.agents[0]
    roster.add_job(first, Job("a", None, "synth-small", "SYNTH", None))
    assert coord.dispatch.least_loaded("synth-small").id == 1
    for n in range(coord.cfg.worker_credit):
        roster.add_job(coord.agents[1], Job(f"b{n}", None, "synth-small", "SYNTH", None))
    for n in range(coord.cfg.worker_credit - 1):
        roster.add_job(first, Job(f"c{n}", None, "synth-small", "SYNTH", None))
    assert coord.dispatch.least_loaded("synth-small") is None  # both at their credit

"""The fault-spec language: every kind parses to what it says, bad specs name the field."""

from __future__ import annotations

import pytest

from swarmsim.errors import ConfigError
from swarmsim.faults import ALL, Target, check_targets, parse_fault, parse_faults


@pytest.mark.parametrize(
    ("text", "kind", "target", "at", "dur", "value", "jitter"),
    [
        ("kill:retriever#1@60", "kill", Target("retriever", 1), 60.0, None, None, 0.0),
        ("kill:retrieval@1m", "kill", Target("retrieval", 0), 60.0, None, None, 0.0),
        ("pause:synthesizer#*@30+5", "pause", Target("synthesizer", ALL), 30.0, 5.0, None, 0.0),
        ("hang:embedder@10", "hang", Target("embedder"), 10.0, None, None, 0.0),
        ("hang:embedder@10+20s", "hang", Target("embedder"), 10.0, 20.0, None, 0.0),
        ("slow:synthesizer#2@5+500ms=3", "slow", Target("synthesizer", 2), 5.0, 0.5, 3.0, 0.0),
        ("delay:*@0+10m=200±50", "delay", Target("*", ALL), 0.0, 600.0, 200.0, 50.0),
        ("delay:retriever#0@0+10=200+-50", "delay", Target("retriever"), 0.0, 10.0, 200.0, 50.0),
        ("drop:*@0+1h=0.05", "drop", Target("*", ALL), 0.0, 3600.0, 0.05, 0.0),
        ("partition:node-2@100+30", "partition", Target("node-2"), 100.0, 30.0, None, 0.0),
        ("coordinator:restart@120", "coordinator", Target("restart"), 120.0, None, None, 0.0),
        ("controller:nan@50+10", "controller", Target("nan"), 50.0, 10.0, None, 0.0),
    ],
)
def test_every_kind_parses(text, kind, target, at, dur, value, jitter):
    fault = parse_fault(text)
    assert (fault.kind, fault.target, fault.at_s, fault.duration_s) == (kind, target, at, dur)
    assert (fault.value, fault.jitter_ms, fault.text) == (value, jitter, text)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("kill retriever", "KIND:TARGET@T"),
        ("explode:retriever@1", "a fault kind"),
        ("pause:retriever@1", "a duration for pause"),
        ("kill:retriever@1+5", "no duration for kill"),
        ("slow:retriever@1+5", "a value for slow"),
        ("slow:retriever@1+5=0.5", "factor >= 1"),
        ("drop:*@1+5=1.5", "probability in [0, 1]"),
        ("delay:*@1+5=50±80", "jitter no larger"),
        ("delay:*@1+5=fast", "MS or MS±J"),
        ("kill:*@1", "* is for links"),
        ("partition:node#1@1+5", "no #index"),
        ("coordinator:crash@1", "coordinator:restart@T"),
        ("controller:explode@1", "a controller fault"),
        ("kill:retriever@1=3", "no =VALUE"),
        ("pause:retriever@1+0=", "KIND:TARGET@T"),
    ],
)
def test_bad_specs_say_what_is_wrong(text, says):
    with pytest.raises(ConfigError, match="faults") as err:
        parse_fault(text)
    assert says in str(err.value)


def test_schedule_is_time_ordered_and_errors_name_the_entry():
    faults = parse_faults(["kill:retriever@60", "pause:embedder@10+5", "slow:synthesizer@10+5=2"])
    assert [f.kind for f in faults] == ["pause", "slow", "kill"]
    with pytest.raises(ConfigError, match=r"faults\[1\]"):
        parse_faults(["kill:retriever@60", "kill:retriever"])
    with pytest.raises(ConfigError, match=r"faults\[0\]: expected a fault spec string"):
        parse_faults([12])


def test_targets_are_checked_against_the_run():
    names, nodes = {"retrieval": 2, "retriever": 2}, ["node-0", "node-1"]
    check_targets(parse_faults(["kill:retriever#1@1", "partition:node-1@1+1", "drop:*@0+1=0.1"]),
                  names, nodes)  # fmt: skip
    with pytest.raises(ConfigError, match="an index below 2"):
        check_targets(parse_faults(["kill:retriever#2@1"]), names, nodes)
    with pytest.raises(ConfigError, match="a layer or role name"):
        check_targets(parse_faults(["slow:gpu@1+1=2"]), names, nodes)
    with pytest.raises(ConfigError, match="a node name"):
        check_targets(parse_faults(["partition:node-9@1+1"]), names, nodes)


def test_a_scenario_carries_its_fault_schedule():
    from swarmsim.scenario_files import load_scenario

    s = load_scenario("homelab", ["faults=[kill:retriever#0@60, pause:synthesizer@30+5]"])
    assert [f.kind for f in s.fault_schedule] == ["pause", "kill"]
    assert s.agent_counts["retriever"] >= 1
    with pytest.raises(ConfigError, match="an index below"):
        load_scenario("homelab", ["faults=[kill:retriever#99@60]"])
    with pytest.raises(ConfigError, match=r"faults\[0\]"):
        load_scenario("homelab", ["faults=[kill:retriever]"])

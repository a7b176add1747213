"""Shared fixtures: tiny scenarios written to ``tmp_path`` for story-style simulator tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from fakes import write_trace

from swarmsim import Scenario, load_scenario

StoryFactory = Callable[..., Scenario]


@pytest.fixture
def story(tmp_path: Path) -> StoryFactory:
    """Build a scenario from YAML text (without a workload) driven by a tiny trace.

    ``story(yaml_text, arrivals=[0, 0.5], duration_s=100, overrides=())``: queries arrive at
    exactly the given times. Trace replay re-bases times on the first row, so the first
    arrival must be 0.
    """

    def build(
        body: str,
        arrivals: Sequence[float] = (0.0,),
        duration_s: float = 100.0,
        overrides: Sequence[str] = (),
        input_tokens: int = 100,
    ) -> Scenario:
        assert arrivals[0] == 0, "trace replay starts at the first row: make it t=0"
        trace = write_trace(tmp_path / "trace.csv", arrivals, input_tokens)
        head = f"duration_s: {duration_s}\nworkload: {{kind: trace, trace: {{path: '{trace}'}}}}\n"
        path = tmp_path / "story.yaml"
        path.write_text(head + body)
        return load_scenario(path, overrides)

    return build

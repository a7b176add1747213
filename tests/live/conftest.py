"""An offline coordinator: the homelab scenario's tables and sockets, no worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fakes import NoLauncher

from live.coordinator import Coordinator
from live.corpusfiles import CorpusFiles, write_corpus
from swarmsim.corpus import scenario_corpus
from swarmsim.scenario_files import load_scenario


@pytest.fixture
def launcher() -> NoLauncher:
    return NoLauncher()


@pytest.fixture
def offline(tmp_path) -> Iterator[Coordinator]:
    """A homelab coordinator whose agents are launched into its tables only."""
    scenario = load_scenario("homelab")
    write_corpus(scenario_corpus(scenario.corpus), tmp_path)
    coord = Coordinator(scenario, CorpusFiles.load(tmp_path), NoLauncher())
    try:
        yield coord
    finally:
        coord.close()

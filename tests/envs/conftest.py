"""Fixtures for the Task tests."""

from __future__ import annotations

import pytest
from fakes import RecordingPlane


@pytest.fixture
def plane() -> RecordingPlane:
    return RecordingPlane()

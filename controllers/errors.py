"""Errors the controllers raise on purpose."""

from __future__ import annotations

from pathlib import Path

from swarmsim.errors import SwarmError


class ArtifactError(SwarmError, ValueError):
    """A policy artifact is missing, malformed, tampered with or made for another Task."""

    def __init__(self, path: Path | str, message: str, field: str | None = None) -> None:
        self.path, self.field = str(path), field
        super().__init__(f"{path}: {field}: {message}" if field else f"{path}: {message}")

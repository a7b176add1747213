"""Errors raised by the simulation core.

A small hierarchy: every error the user can cause is a :class:`SwarmError`, and each also
inherits the built-in a caller would naturally catch (``ValueError``, ``KeyError``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class SwarmError(Exception):
    """Base of every error swarmsim raises on purpose."""


class ConfigError(SwarmError, ValueError):
    """A configuration or scenario value is invalid.

    ``field`` is the dotted path of the offending field (``workload.rate``), ``value`` the value
    found and ``expected`` what was wanted. ``source`` names the file, once known.
    """

    def __init__(self, field: str, value: Any, expected: str, source: str | None = None) -> None:
        self.field = field
        self.value = value
        self.expected = expected
        self.source = source
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.field}: expected {self.expected}, got {self.value!r}"

    def within(self, prefix: str) -> ConfigError:
        """The same error with ``prefix`` prepended to its field path."""
        field = f"{prefix}.{self.field}" if self.field else prefix
        return ConfigError(field, self.value, self.expected, self.source)

    def in_file(self, source: str) -> ConfigError:
        """The same error naming the file it came from."""
        return ConfigError(self.field, self.value, self.expected, source)


class TraceError(SwarmError, ValueError):
    """A trace file cannot be read: names the file and, where known, the line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")


class UnknownNameError(SwarmError, KeyError):
    """A registry lookup failed; the message suggests the nearest known names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
        self.message = f"unknown {kind} {name!r}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def check(ok: bool, field: str, value: Any, expected: str) -> None:
    """Raise :class:`ConfigError` for ``field`` unless ``ok``; used in ``__post_init__``."""
    if not ok:
        raise ConfigError(field, value, expected)

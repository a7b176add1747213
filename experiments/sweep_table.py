"""A sweep's cells and its result table: one JSON row per finished cell, keyed by a hash of
the cell's run and arguments, appended (and flushed) as each cell finishes, so that an
interrupted sweep resumes by skipping the keys already there."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sweep_runs import Metrics

Row = dict[str, Any]


@dataclass(frozen=True, eq=False)
class Cell:
    """One run of a sweep: ``run`` with ``args``; ``trial``: the search trial it belongs to."""

    run: str
    args: dict[str, Any]
    trial: int | None = None

    @property
    def key(self) -> str:
        """Stable across processes, machines and backends: the hash of what the cell is."""
        ident: dict[str, Any] = {"run": self.run, "args": self.args}
        if self.trial is not None:
            ident["trial"] = self.trial
        text = json.dumps(ident, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def row(self, metrics: Metrics) -> Row:
        """The table's row of this cell with its ``metrics`` (no timings: see sweep_runs)."""
        row: Row = {"key": self.key, "run": self.run, "args": self.args, "metrics": metrics}
        if self.trial is not None:
            row["trial"] = self.trial
        return row

    def label(self, names: Iterable[str]) -> str:
        """The cell's varied arguments ``names`` as ``k=v`` words (for the progress lines)."""
        return " ".join(f"{n}={self.args[n]}" for n in names if n in self.args)


def cell_of(row: Row) -> Cell:
    """The cell a stored row is of."""
    return Cell(row["run"], dict(row["args"]), row.get("trial"))


class Table:
    """``results/sweeps/<name>.jsonl``: the rows by key, read at open (a line cut short by a
    kill is dropped), appended one flushed line per finished cell."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, Row] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                row = _parsed(line)
                if row is not None:
                    self.rows[row["key"]] = row

    def add(self, row: Row) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as out:
            out.write(("\n" if _cut(self.path) else "") + _line(row))
            out.flush()
            os.fsync(out.fileno())
        self.rows[row["key"]] = row

    def rewrite(self, order: Iterable[str]) -> None:
        """The table in ``order`` of keys (rows of other keys after them, as they were), so
        that a finished sweep's file is the same whichever order its cells finished in."""
        keys = [k for k in order if k in self.rows]
        rest = [k for k in self.rows if k not in set(keys)]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(_line(self.rows[k]) for k in [*keys, *rest]))
        tmp.replace(self.path)


def _cut(path: Path) -> bool:
    """Whether ``path`` ends in a line without its newline (a write cut short)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def _line(row: Row) -> str:
    return json.dumps(row, sort_keys=True) + "\n"


def _parsed(line: str) -> Row | None:
    try:
        row = json.loads(line)
    except json.JSONDecodeError:
        return None
    return row if isinstance(row, dict) and "key" in row else None

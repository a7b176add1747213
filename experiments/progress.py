"""Progress of a long command's stages on stderr: a bar per stage on a terminal, otherwise a
line as each stage starts and one as it ends, each flushed at once (a log or a pipe then shows
where the command is, not only its final output)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Stage:
    """One running stage: ``update(fraction)`` moves its bar, ``say(line)`` prints a line
    above it (or on its own), ``result`` is what its closing line reports."""

    def __init__(self, stream: TextIO, bar: Any = None, task: Any = None) -> None:
        self.stream, self.bar, self.task = stream, bar, task
        self.result = "done"

    def update(self, fraction: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=min(max(fraction, 0.0), 1.0))

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, highlight=False, markup=False)
        else:
            print(line, file=self.stream, flush=True)


class Stages:
    """``total`` numbered stages; ``bar``: draw a bar (rich) for each stage that asks for one."""

    def __init__(self, total: int, bar: bool, stream: TextIO | None = None) -> None:
        self.total, self.bar, self.n = total, bar, 0
        self.stream = sys.stderr if stream is None else stream

    @contextmanager
    def stage(self, title: str, bar: bool = True) -> Iterator[Stage]:
        """Run one stage; ``bar=False`` for a stage that draws its own (SB3's training bar)."""
        self.n += 1
        head = f"[{self.n}/{self.total}] {title}"
        start = time.perf_counter()
        if self.bar and bar:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            columns = (TextColumn(head.replace("[", r"\[")), BarColumn(),
                       TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn())  # fmt: skip
            with Progress(*columns, console=Console(file=self.stream), transient=True) as p:
                stage = Stage(self.stream, p, p.add_task(title, total=1.0))
                yield stage
        else:
            print(f"{head} ...", file=self.stream, flush=True)
            stage = Stage(self.stream)
            yield stage
        wall = time.perf_counter() - start
        print(f"{head}: {stage.result} ({wall:.0f} s)", file=self.stream, flush=True)

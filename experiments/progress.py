"""Progress of a long command's stages on stderr: a bar per stage on a terminal, otherwise a
line as each stage starts and one as it ends, each flushed at once (a log or a pipe then shows
where the command is, not only its final output)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Stage:
    """One running stage: ``update(fraction, note)`` moves its bar (off a terminal, with
    ``ticks``, prints a line at each 1/ticks of the way), ``say(line)`` prints a line above
    the bar (or on its own), ``result`` is what its closing line reports."""

    def __init__(self, stream: TextIO, bar: Any = None, task: Any = None, ticks: int = 0,
                 indent: str = "") -> None:  # fmt: skip
        self.stream, self.bar, self.task = stream, bar, task
        self.ticks, self.shown, self.indent = ticks, 0, indent
        self.result = "done"

    def update(self, fraction: float, note: str = "") -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if self.bar is not None:
            self.bar.update(self.task, completed=fraction, note=note)
            return
        tick = math.floor(fraction * self.ticks + 1e-9)
        if self.shown < tick < self.ticks:  # the last one: the closing line says it
            self.shown = tick
            self.say(f"  {fraction:4.0%}" + (f"  {note}" if note else ""))

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(f"{self.indent}{line}", highlight=False, markup=False)
        else:
            print(f"{self.indent}{line}", file=self.stream, flush=True)


class Stages:
    """``total`` numbered stages (unnumbered if one); ``bar``: draw a bar (rich) for each
    stage that asks for one; ``indent``: stages nested in another command's stage."""

    def __init__(
        self, total: int, bar: bool, stream: TextIO | None = None, indent: str = ""
    ) -> None:
        self.total, self.bar, self.n, self.indent = total, bar, 0, indent
        self.stream = sys.stderr if stream is None else stream

    @contextmanager
    def stage(
        self, title: str, bar: bool = True, ticks: int = 0, announce: bool = True
    ) -> Iterator[Stage]:
        """Run one stage; ``bar=False`` for a stage whose inner stages draw their own bars;
        ``ticks``: lines off a terminal as it moves (see ``Stage``); ``announce=False``: no
        opening or closing line without a bar (its own lines say enough: tune's trials)."""
        self.n += 1
        number = "" if self.total == 1 else f"[{self.n}/{self.total}] "
        head = f"{self.indent}{number}{title}"
        start = time.perf_counter()
        drawn = self.bar and bar
        if drawn:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            from rich.table import Column

            def fixed(width: int) -> Column:  # kept whole; the note gets what is left
                return Column(no_wrap=True, min_width=width)

            columns = (TextColumn(head.replace("[", r"\["), table_column=fixed(len(head))),
                       BarColumn(20, table_column=fixed(20)),
                       TextColumn("{task.percentage:>3.0f}%", table_column=fixed(4)),
                       TimeElapsedColumn(table_column=fixed(7)),
                       TextColumn("{task.fields[note]}", markup=False,
                                  table_column=Column(no_wrap=True, ratio=1)))  # fmt: skip
            console = Console(file=self.stream)
            with Progress(*columns, console=console, transient=True, expand=True) as p:
                stage = Stage(self.stream, p, p.add_task(title, total=1.0, note=""),
                              indent=self.indent)  # fmt: skip
                yield stage
        else:
            if announce:
                print(f"{head} ...", file=self.stream, flush=True)
            stage = Stage(self.stream, ticks=ticks, indent=self.indent)
            yield stage
        wall = time.perf_counter() - start
        if drawn or announce:
            print(f"{head}: {stage.result} ({wall:.0f} s)", file=self.stream, flush=True)

"""Tables for the terminal, laid out by rich and returned as plain text (no colour, no markup
parsing), so that piped output and tests see the same characters a terminal shows."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table

WIDTH = 160  # the widest a table may grow; narrower tables take only what they need


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1) -> Table:
    """A table of ``rows`` under ``headers``: the first ``left`` columns left-aligned (names),
    the rest right-aligned (figures)."""
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for i, header in enumerate(headers):
        t.add_column(header, justify="left" if i < left else "right", no_wrap=True)
    for row in rows:
        t.add_row(*(str(cell) for cell in row))
    return t


def text(t: Table, width: int = WIDTH) -> str:
    """``t`` rendered through a Console writing to a string, trailing blanks trimmed."""
    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, markup=False, emoji=False,
                      highlight=False)  # fmt: skip
    console.print(t)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()).strip("\n")

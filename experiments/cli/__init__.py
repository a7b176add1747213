"""The ``swarmsim`` command: the parser built from one module per command group.

User errors (a bad scenario file, an unknown name, a bad ``--set``) end with one line on
stderr naming the cause and exit code 2, never a traceback. Each command imports what it
needs when it runs, so ``swarmsim --help`` and the listings load no torch.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from swarmsim.errors import SwarmError

from . import calibrate, completion, learn, live, sim, sweep, tune

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The ``swarmsim`` parser with every command; each sets ``func`` to run it."""
    parser = argparse.ArgumentParser(
        prog="swarmsim",
        description="Simulate a distributed RAG agent swarm; train and deploy its controllers.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sim.add_parsers(sub)
    learn.add_parsers(sub)
    live.add_parsers(sub)
    calibrate.add_parsers(sub)
    learn.add_quickstart(sub)
    tune.add_parsers(sub)
    sweep.add_parsers(sub)
    completion.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``swarmsim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except SwarmError as err:
        print(f"swarmsim: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:
        print(f"swarmsim: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("swarmsim: interrupted", file=sys.stderr)
        return 130
    if argv is None and getattr(args, "exit_at_once", False):  # this process is the command
        _exit_at_once(code)
    return code


def _exit_at_once(code: int) -> None:
    """End the process without the interpreter's teardown. For live run and live up: their
    processes are reaped and their files closed by then, and freeing some 1,500 modules took
    0.4-1.4 s on a loaded 2-core machine, past the 2 s a stopped swarm has to be gone in."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

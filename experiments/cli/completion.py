"""``swarmsim completion SHELL``: a shell completion script for every command, option and
built-in scenario name, generated from the parser itself by shtab (so it never drifts)."""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh", "tcsh")
SCENARIO_DESTS = ("scenario", "scenarios")  # positionals that name a scenario


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description="Print a completion script for commands, options and built-in scenario "
        "names. bash: `source <(swarmsim completion bash)` (or save it under "
        "~/.local/share/bash-completion/completions/swarmsim); zsh: save it as _swarmsim on "
        "your $fpath.",
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    from swarmsim.scenario_files import builtin_scenarios

    from . import build_parser

    names = list(builtin_scenarios())
    parser = build_parser()
    words = " ".join(names)
    complete = {
        "bash": "_swarmsim_scenarios",
        "zsh": f"(({' '.join(names)}))",
        "tcsh": f"({words})",
    }
    for action in _actions(parser):
        if action.dest in SCENARIO_DESTS and not action.option_strings:
            action.complete = complete  # type: ignore[attr-defined]
    preamble = {
        "bash": f'_swarmsim_scenarios() {{ compgen -W "{words}" -f -- "$1"; }}',
    }
    print(shtab.complete(parser, shell=args.shell, preamble=preamble.get(args.shell, "")))
    return 0


def _actions(parser: argparse.ArgumentParser) -> list[Any]:
    """Every action of ``parser`` and of its sub-commands, recursively."""
    out = []
    for action in parser._actions:
        out.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _actions(sub)
    return out

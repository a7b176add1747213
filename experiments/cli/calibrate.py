"""``swarmsim calibrate`` and ``compare``: fit the simulator to a recording, and judge it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from swarmsim.errors import SwarmError

from .options import add_overrides


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``calibrate`` (a recording to a scenario) and ``compare`` (two timelines)."""
    cal = sub.add_parser("calibrate", help="fit the simulator's service models to a recording")
    cal.add_argument("recording", type=Path, help="a timeline (live run --record) as JSONL")
    cal.add_argument("-o", "--out", type=Path, required=True, metavar="SCENARIO.yaml",
                     help="where the calibrated scenario goes")  # fmt: skip
    cal.add_argument("--scenario", default="homelab", help="the scenario the recording ran")
    add_overrides(cal)
    cal.set_defaults(func=cmd_calibrate)
    cmp = sub.add_parser(
        "compare", help="fidelity report of timeline B against timeline A (per stage, CDFs)"
    )
    cmp.add_argument("reference", type=Path, help="A: the reference timeline (JSONL)")
    cmp.add_argument("candidate", type=Path, help="B: the timeline judged against A (JSONL)")
    cmp.add_argument(
        "-o", "--out", type=Path, metavar="DIR", help="write fidelity.{json,md} and CDF plots"
    )
    cmp.add_argument(
        "--warmup", type=float, default=0.0, metavar="S", help="leave out arrivals before S"
    )
    cmp.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp.set_defaults(func=cmd_compare)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from ..calibrate import calibrate, write_scenario

    if not args.out.parent.is_dir():
        raise SwarmError(f"--out: directory {args.out.parent} does not exist")
    result = calibrate(args.recording, args.scenario, tuple(args.overrides))
    sets = [f"--set {o}" for o in args.overrides]
    command = " ".join(["swarmsim calibrate", str(args.recording), "-o", str(args.out),
                        "--scenario", args.scenario, *sets])  # fmt: skip
    write_scenario(result, args.out, command)
    print(_fits_table(result))
    for name, kinds in result["lifecycle"].items():
        text = ", ".join(f"{k} {v['median_s']:.3g} s (n={v['n']})" for k, v in kinds.items())
        print(f"{name} ready after {text}")
    print(f"scenario: {args.out}")
    return 0


def _fits_table(result: dict[str, Any]) -> str:
    """One row per fitted layer: records, base, slopes (or profile scale), residual, overhead."""
    from ..tables import table, text

    rows = []
    for name, fit in result["fits"].items():
        slopes = f"+{fit['per_input_token_s']:.3g}/in +{fit['per_output_token_s']:.3g}/out"
        if fit["model"] == "profile":
            slopes = f"x{fit['scale']:.4g} profile"
        rows.append([name, fit["records"], f"{fit['base_s']:.4g}", slopes,
                     f"{fit['residual_sigma']:.3f}", f"{fit['overhead_s']:.4g}"])  # fmt: skip
    return text(table(["layer", "n", "base s", "per token", "sigma", "overhead s"], rows))


def cmd_compare(args: argparse.Namespace) -> int:
    from ..fidelity import compare, read_recording, render_table, write_report

    a = read_recording(args.reference, args.warmup)
    b = read_recording(args.candidate, args.warmup)
    result = compare(a, b) if args.out is None else write_report(a, b, args.out)
    print(json.dumps(result, indent=2) if args.json else render_table(result), end="")
    if args.out is not None and not args.json:
        print(f"report: {args.out / 'fidelity.md'}")
    return 0

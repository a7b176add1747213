"""The command line starts light: listing and small simulations import no torch, SB3,
matplotlib (nor faiss, without retrieval), and shell completion covers commands and
scenario names. Start-up time itself is measured by benchmarks/cli_startup.py, not here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "stable_baselines3", "sb3_contrib", "matplotlib", "faiss", "optuna", "ray")
PROBE = """
import contextlib, io, sys
from experiments.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(" ".join(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_imports(*argv: str) -> set[str]:
    code = PROBE.format(heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True)  # fmt: skip
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("scenarios",), ("controllers",), ("simulate", "mmc", "--duration", "60")],
)
def test_the_light_commands_import_nothing_heavy(argv):
    assert heavy_imports(*argv) == set()


def test_scenarios_imports_no_simulator():
    code = "import sys\nfrom experiments.cli import main\nmain(['scenarios'])\n" \
           "print('numpy' in sys.modules, 'simpy' in sys.modules)"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.split()[-2:] == ["False", "False"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_offers_commands_and_scenario_names(tmp_path):
    script = tmp_path / "swarmsim.bash"
    with script.open("w") as out:
        cmd = [sys.executable, "-m", "experiments.cli", "completion", "bash"]
        assert subprocess.run(cmd, cwd=ROOT, stdout=out, timeout=60).returncode == 0

    def complete(*words: str) -> list[str]:
        line = " ".join(["swarmsim", *words])
        shell = (f"source {script}; COMP_WORDS=(swarmsim {' '.join(words)}); "
                 f"COMP_CWORD={len(words)}; COMP_LINE='{line}'; COMP_POINT={len(line)}; "
                 '_shtab_swarmsim; echo "${COMPREPLY[@]}"')  # fmt: skip
        return subprocess.run(["bash", "-c", shell], capture_output=True, text=True,
                              timeout=30).stdout.split()  # fmt: skip

    assert complete("sim") == ["simulate"]
    assert complete("simulate", "prefix-ca") == ["prefix-cache", "prefix-cache-control"]
    assert "homelab" in complete("live", "run", "home")


def test_the_parsers_written_out_names_agree_with_their_sources():
    from experiments.cli import build_parser
    from experiments.cli.options import TRACE_FORMATS
    from experiments.learned import COMPARISONS
    from swarmsim.traces import FORMATS

    assert TRACE_FORMATS == FORMATS
    versus = build_parser()._subparsers._group_actions[0].choices["versus"]
    assert all(task in versus.format_help() for task in COMPARISONS)


def test_live_admission_and_client_rate_reach_the_swarms_config():
    from experiments.cli import build_parser
    from experiments.cli.live import _live_run

    argv = ["live", "run", "homelab", "--admission", "slo", "--client-rate", "50"]
    args = build_parser().parse_args(argv)
    cfg = _live_run(args, [], None).config
    assert cfg.admission.objective == "slo"
    assert (cfg.guard.rate_qps, cfg.guard.burst) == (50, 50)
    default = _live_run(build_parser().parse_args(["live", "run", "homelab"]), [], None).config
    assert default.admission.objective == "deadline" and default.guard.rate_qps == 10_000

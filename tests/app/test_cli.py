"""The CLI surface: every subcommand listed; unbuilt ones exit 2 with one honest line."""

import subprocess
import sys

from typer.testing import CliRunner

from app.cli import app

SUBCOMMANDS = ("generate", "train", "evaluate", "replay", "quickstart", "demo", "sim-report")


def test_help_lists_every_subcommand():
    out = CliRunner().invoke(app, ["--help"]).output
    for cmd in SUBCOMMANDS:
        assert cmd in out


def test_console_script_runs():
    r = subprocess.run([sys.executable, "-m", "app.cli", "--help"], capture_output=True, text=True, check=True)
    assert "sim-report" in r.stdout


def test_sim_imports_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "import sim.catalog, sim.records, agent.metrics\n"
            "print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

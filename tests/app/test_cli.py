"""The CLI surface: every subcommand listed; bad input exits non-zero with one line naming it."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from app.cli import app

SUBCOMMANDS = ("generate", "validate", "import-log", "import-ha", "train", "evaluate", "replay", "recommend", "quickstart",
               "reproduce", "demo", "sim-report")


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


def test_evaluate_names_a_missing_dataset_and_run(tmp_path):
    r = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "rep")])
    assert r.exit_code == 1 and "not a dataset directory" in r.output
    (tmp_path / "d" / "data").mkdir(parents=True)
    r = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "d"), "--runs", str(tmp_path / "norun"),
                                 "--out", str(tmp_path / "rep")])
    assert r.exit_code == 1 and "not a training run directory" in r.output
    assert not (tmp_path / "rep").exists()  # nothing written on bad input


def test_choice_options_match_their_packages_and_name_the_option_when_wrong():
    from app.cli import DataPreset, Device, Engine, Format, ModelPreset, Order, ReplayMode, Split
    from app.recommend import FORMATS
    from sim.dataset.build import ENGINES, PRESETS
    from sim.dataset.schema import SPLITS
    from sim.records import ORDERS
    from training.models import PRESETS as MODEL_PRESETS

    assert [e.value for e in DataPreset] == list(PRESETS) and [e.value for e in Engine] == list(ENGINES)
    assert [e.value for e in ModelPreset] == list(MODEL_PRESETS) and [e.value for e in Order] == list(ORDERS)
    assert {e.value for e in Split} == set(SPLITS) and {e.value for e in Device} == {"auto", "cpu", "cuda"}
    assert {e.value for e in ReplayMode} == {"replay", "live"} and [e.value for e in Format] == list(FORMATS)
    err = CliRunner().invoke(app, ["generate", "--preset", "huge", "--out", "x"], standalone_mode=False).exception
    assert err.param.name == "preset" and err.exit_code == 2
    assert "'huge' is not one of 'tiny', 'quickstart', 'paper'" in err.format_message()


def test_evaluate_names_a_run_that_never_finished_a_stage(tmp_path):
    (tmp_path / "d" / "data").mkdir(parents=True)
    run = tmp_path / "run"
    (run / "pretrain" / "checkpoint-6").mkdir(parents=True)  # killed during pre-training
    (run / "config.json").write_text(json.dumps({"stages": ["pretrain", "sft", "dpo"], "stages_run": []}))
    r = CliRunner().invoke(app, ["evaluate", "--data", str(tmp_path / "d"), "--runs", str(run), "--out",
                                 str(tmp_path / "rep")])
    assert r.exit_code == 1
    assert f"homepilot evaluate: --runs {run}: stage pretrain never finished" in r.output
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("command", [["evaluate", "--data", "D"], ["sim-report", "--homes", "1", "--days", "1"],
                                     ["quickstart"]])
def test_writing_commands_refuse_a_folder_they_did_not_make(tmp_path, command):
    (tmp_path / "D" / "data").mkdir(parents=True)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    args = [a if a != "D" else str(tmp_path / "D") for a in command]
    r = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert r.exit_code == 1
    assert f"output directory {out} is not empty and HomePilot did not make it (it holds notes.md)" in r.output
    assert [p.name for p in out.iterdir()] == ["notes.md"] and (out / "notes.md").read_text() == "mine"


def test_reproduce_names_bad_options_before_any_work(tmp_path):
    err = CliRunner().invoke(app, ["reproduce", "--out", str(tmp_path / "o"), "--seeds", "0,x"],
                             standalone_mode=False).exception
    assert err.exit_code == 2 and "seeds must be comma-separated integers" in err.format_message()
    err = CliRunner().invoke(app, ["reproduce", "--out", str(tmp_path / "o"), "--seeds", "1,1"],
                             standalone_mode=False).exception
    assert err.exit_code == 2 and "distinct" in err.format_message()
    assert not (tmp_path / "o").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my own file")
    r = CliRunner().invoke(app, ["reproduce", "--out", str(mine), "--seeds", "0", "--data-preset", "tiny"])
    assert r.exit_code == 1 and "HomePilot did not make it" in r.output and (mine / "notes.txt").is_file()

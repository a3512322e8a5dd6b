"""``homepilot train`` at the CLI edge: option errors and dataset errors name what is wrong."""

from __future__ import annotations

from typer.testing import CliRunner

from app.cli import app


def usage_error(args):
    """The usage error a command raises, as an exception (not the box rich draws at the terminal
    width): ``standalone_mode=False`` hands it back instead of printing it."""
    r = CliRunner().invoke(app, args, standalone_mode=False)
    assert r.exception is not None and hasattr(r.exception, "format_message"), r.output
    return r.exception


def test_missing_dataset_names_the_directory(tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 1
    assert "no pretrain train split" in res.output and "nowhere/data/pretrain" in res.output


def test_bad_preset_is_a_usage_error(tmp_path):
    err = usage_error(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--preset", "huge"])
    assert err.param.name == "preset" and err.exit_code == 2
    assert "'huge' is not one of 'tiny', 'small', 'base'" in err.format_message()


def test_bad_stage_is_a_usage_error(tmp_path):
    err = usage_error(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--stages", "pretrain,rlhf"])
    assert err.exit_code == 2 and "stages must be a non-empty subset of pretrain, sft, dpo" in err.format_message()

"""``homepilot train`` at the CLI edge: option errors and dataset errors name what is wrong."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from app.cli import app


def test_missing_dataset_names_the_directory(tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert res.exit_code == 1
    assert "missing dataset config directory" in res.output and "nowhere/data/pretrain" in res.output


def test_bad_preset_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                   "--preset", "huge"])
    assert res.exit_code == 2 and all(w in res.output for w in ("--preset", "huge", "tiny", "small", "base"))


def test_bad_stage_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                   "--stages", "pretrain,rlhf"])
    # the error box wraps at the terminal width: compare the words, not the layout
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", res.output).split())
    assert res.exit_code == 2 and "stages must be a non-empty subset of pretrain, sft, dpo" in words

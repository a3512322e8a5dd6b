"""``homepilot train`` at the CLI edge: option errors and dataset errors name what is wrong, and are
found before the run directory is made or any stage runs."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from app.cli import app
from sim.dataset.schema import SCHEMAS
from tests.training.conftest import write_dataset


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


# ---------------------------------------------------------------- inputs checked before any work


def _dataset(root: Path, empty: tuple[str, ...] = ()) -> Path:
    """The tiny training dataset, with the configs in ``empty`` holding one empty shard each."""
    write_dataset(root)
    for config in empty:
        for f in (root / "data" / config).glob("*.parquet"):
            f.unlink()
        pq.write_table(SCHEMAS[config].empty_table(), root / "data" / config / "train-00000-of-00001.parquet")
    return root


def train(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def test_empty_dataset_is_named_and_leaves_no_run(tmp_path):
    data, out = _dataset(tmp_path / "d", empty=("pretrain", "sft", "dpo")), tmp_path / "run"
    res = train("--data", str(data), "--out", str(out))
    assert res.exit_code == 1
    assert f"error: {data / 'data' / 'pretrain'}: no pretrain train rows" in res.output
    assert not out.exists()  # nothing half-made blocks the rerun


def test_empty_sft_split_is_named_before_pretraining(tmp_path):
    data, out = _dataset(tmp_path / "d", empty=("sft",)), tmp_path / "run"
    res = train("--data", str(data), "--out", str(out))
    assert res.exit_code == 1 and f"error: {data / 'data' / 'sft'}: no sft train rows to train on" in res.output
    assert not out.exists()


def test_corrupt_sft_shard_is_found_before_pretraining(tmp_path):
    data, out = _dataset(tmp_path / "d"), tmp_path / "run"
    shard = data / "data" / "sft" / "train-00000-of-00001.parquet"
    shard.write_bytes(shard.read_bytes()[:200])  # truncated
    res = train("--data", str(data), "--out", str(out), "--stages", "pretrain,sft")
    assert res.exit_code == 1 and f"error: malformed parquet file {shard}" in res.output
    assert not out.exists()


def test_base_model_without_safetensors_is_named(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    (base / "pytorch_model.bin").write_bytes(b"pickled weights are not loaded")
    res = train("--data", str(_dataset(tmp_path / "d")), "--out", str(tmp_path / "run"), "--base-model", str(base))
    assert res.exit_code == 1 and f"error: --base-model {base}: no model.safetensors" in res.output
    assert not (tmp_path / "run").exists()


def test_out_holding_other_files_is_refused_untouched(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("mine")
    res = train("--data", str(_dataset(tmp_path / "d")), "--out", str(out))
    assert res.exit_code == 1
    assert f"error: output directory {out} is not empty and HomePilot did not make it (it holds notes.md)" in res.output
    assert [p.name for p in out.iterdir()] == ["notes.md"] and (out / "notes.md").read_text() == "mine"

"""``--out`` safety of ``generate`` and ``import-log``: a folder HomePilot did not make, or made for the
other kind, is refused with one line naming it and left byte for byte as it was; ``--overwrite``
and the temp-file cleanup touch only HomePilot's own files. Plain output lines (never wrapped by
rich), so the checks hold at any terminal width."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.dataset.build import DatasetConfig, build

EVENTS = """timestamp,room,device,device_type,field,value,source
2026-01-05T07:00:10,bedroom,curtain,curtain,action,open,app
2026-01-05T21:00:00,living_room,ac,ac,power,off,physical
2026-01-06T07:05:00,bedroom,curtain,curtain,action,open,app
2026-01-06T21:03:00,living_room,ac,ac,power,on,app
2026-01-07T07:02:00,bedroom,curtain,curtain,action,open,app
2026-01-07T19:00:00,living_room,ac,ac,target_temperature,26,app
"""
TINY = ["--preset", "tiny", "--homes", "3", "--days", "2", "--workers", "1"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` -> sha256 of its bytes ('dir' for folders)."""
    return {str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture()
def user_dir(tmp_path) -> Path:
    """A folder of the user's: raw data, their own README, stats and a file that looks like a temp file."""
    d = tmp_path / "mine"
    (d / "data" / "raw").mkdir(parents=True)
    (d / "data" / "raw" / "m.csv").write_text("timestamp,value\n2026-01-05,1\n")
    (d / "README.md").write_text("# my notes\n")
    (d / "stats").mkdir()
    (d / "stats" / "ops_per_hour.png").write_bytes(b"\x89PNG mine")
    (d / "data" / "raw" / "m.csv.tmp-42").write_bytes(b"half a download")
    return d


@pytest.mark.parametrize("overwrite", [False, True])
def test_generate_refuses_a_users_folder_and_touches_nothing(user_dir, overwrite):
    before = snapshot(user_dir)
    res = cli("generate", *TINY, "--out", str(user_dir), *(["--overwrite"] if overwrite else []))
    assert res.exit_code == 1
    assert f"error: output directory {user_dir} is not empty and HomePilot did not make it" in res.output
    assert "README.md, data/, stats/" in res.output
    assert snapshot(user_dir) == before


def test_import_log_and_generate_refuse_each_others_datasets(tmp_path):
    events = tmp_path / "home.csv"
    events.write_text(EVENTS)
    gen, imp = tmp_path / "gen", tmp_path / "imp"
    assert cli("generate", *TINY, "--out", str(gen)).exit_code == 0
    assert cli("import-log", str(events), "--out", str(imp)).exit_code == 0
    before = {d: snapshot(d) for d in (gen, imp)}
    res = cli("import-log", str(events), "--out", str(gen))
    assert res.exit_code == 1
    assert f"error: output directory {gen} holds a generated dataset, not an imported dataset" in res.output
    res = cli("generate", *TINY, "--out", str(imp), "--overwrite")
    assert res.exit_code == 1
    assert f"error: output directory {imp} holds an imported dataset, not a generated dataset" in res.output
    assert {d: snapshot(d) for d in (gen, imp)} == before


def test_import_log_replaces_an_earlier_import_only_with_overwrite(tmp_path):
    events = tmp_path / "home.csv"
    events.write_text(EVENTS)
    out = tmp_path / "imp"
    assert cli("import-log", str(events), "--out", str(out)).exit_code == 0
    (out / "data" / "notes.txt").write_text("mine")  # the user's file next to the import's folders
    before = snapshot(out)
    res = cli("import-log", str(events), "--out", str(out))
    assert res.exit_code == 1 and f"error: --out {out} holds an earlier import; pass --overwrite" in res.output
    assert snapshot(out) == before
    res = cli("import-log", str(events), "--out", str(out), "--burst-s", "0", "--overwrite")
    assert res.exit_code == 0, res.output
    assert (out / "data" / "notes.txt").read_text() == "mine" and (out / "data" / "sft").is_dir()


def test_overwrite_and_temp_cleanup_touch_only_homepilots_files(tmp_path):
    out = tmp_path / "D"
    build(DatasetConfig(out=str(out), preset="tiny", homes=3, days=2, workers=1))
    mine = {out / "data" / "raw" / "m.csv": b"user data", out / "notes.tmp-1": b"user temp",
            out / "data" / "sft" / "mine.parquet.tmp-7": b"user temp in a data folder"}
    for p, b in mine.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b)
    debris = out / "data" / "sft" / "train-00000-of-00001.parquet.tmp-999"  # a killed writer's
    debris.write_bytes(b"partial")
    build(DatasetConfig(out=str(out), preset="tiny", homes=3, days=2, workers=1))  # resume: cleans its own debris
    assert not debris.exists()
    build(DatasetConfig(out=str(out), preset="tiny", homes=3, days=3, workers=1, overwrite=True))
    assert {p: p.read_bytes() for p in mine} == mine
    assert len(list((out / "data" / "sft").glob("train-*.parquet"))) == 1  # the new dataset, nothing stale


def test_generate_names_a_file_given_as_out(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    res = cli("generate", *TINY, "--out", str(f))
    assert res.exit_code == 1 and f"error: output directory {f} is a file, not a directory" in res.output
    res = cli("generate", *TINY, "--out", str(f / "sub"))
    assert res.exit_code == 1 and f"error: cannot create output directory {f / 'sub'}: {f} is a file" in res.output
    assert f.read_text() == "x"

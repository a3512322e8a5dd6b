"""Output directories: HomePilot writes only into new, empty or its own folders of the same kind, and
deletes only what its manifest lists."""

import json
import re
from pathlib import Path

import pytest

from sim import outdir
from sim.outdir import MANIFEST, OutDirError, check, claim, owned, remove_owned, remove_temp


def test_new_and_empty_folders_are_claimed_with_their_paths(tmp_path):
    root = claim(tmp_path / "a" / "b", "run", ["config.json", "model"])
    assert json.loads((root / MANIFEST).read_text()) == {"kind": "run", "paths": ["config.json", "model"]}
    (tmp_path / "empty").mkdir()
    claim(tmp_path / "empty", "report")
    claim(tmp_path / "empty", "report", ["report.md"])  # same kind: reused, paths added
    assert owned(tmp_path / "empty") == ["report.md"]


def test_foreign_or_other_kind_folders_are_refused_untouched(tmp_path):
    user = tmp_path / "user"
    (user / "data" / "raw").mkdir(parents=True)
    (user / "data" / "raw" / "m.csv").write_bytes(b"t,v\n1,2\n")
    (user / "README.md").write_bytes(b"mine")
    with pytest.raises(OutDirError) as e:
        claim(user, "dataset")
    assert str(user) in str(e.value) and "README.md, data/" in str(e.value) and "HomePilot did not make it" in str(e.value)
    assert sorted(p.name for p in user.rglob("*")) == ["README.md", "data", "m.csv", "raw"]  # no manifest written
    claim(tmp_path / "run", "run")
    with pytest.raises(OutDirError, match=r"holds a training run, not an evaluation report"):
        check(tmp_path / "run", "report")


def test_files_and_unwritable_places_are_named(tmp_path, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutDirError, match=re.escape(f"output directory {f} is a file")):
        check(f, "dataset")
    with pytest.raises(OutDirError, match=re.escape(f"cannot create output directory {f / 'sub'}: {f} is a file")):
        check(f / "sub", "dataset")

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(outdir.Path, "mkdir", refuse)  # a read-only place, also when the tests run as root
    with pytest.raises(OutDirError, match=re.escape(f"cannot write output directory {tmp_path / 'ro'}: Permission denied")):
        claim(tmp_path / "ro", "dataset")


def test_read_only_folder_is_named(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    # os.access answers as for a user without write permission (root may write anywhere)
    monkeypatch.setattr(outdir.os, "access", lambda path, mode: Path(path) != ro)
    with pytest.raises(OutDirError, match=re.escape(f"cannot create output directory {ro / 'out'}: {ro} is not writable")):
        check(ro / "out", "dataset")
    with pytest.raises(OutDirError, match=re.escape(f"output directory {ro} is not writable")):
        check(ro, "dataset")


def test_remove_owned_deletes_only_listed_paths(tmp_path):
    root = claim(tmp_path / "d", "dataset", ["data/sft/train-00000-of-00001.parquet", ".shards", "README.md"])
    (root / "data" / "sft").mkdir(parents=True)
    (root / "data" / "sft" / "train-00000-of-00001.parquet").write_bytes(b"ours")
    (root / ".shards").mkdir()
    (root / ".shards" / "seen-00000.done").write_text("{}")
    (root / "README.md").write_text("card")
    (root / "data" / "raw").mkdir()
    (root / "data" / "raw" / "m.csv").write_bytes(b"user")  # added by the user later
    remove_owned(root)
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [MANIFEST, "data", "data/raw", "data/raw/m.csv"]
    assert (root / "data" / "raw" / "m.csv").read_bytes() == b"user" and owned(root) == []


def test_remove_temp_deletes_only_homepilots_temp_files(tmp_path):
    root = claim(tmp_path / "d", "dataset", ["data/sft/train-00000-of-00001.parquet", ".shards"])
    (root / "data" / "sft").mkdir(parents=True)
    (root / ".shards").mkdir()
    ours = [root / "data" / "sft" / "train-00000-of-00001.parquet.tmp-123", root / ".shards" / "x.done.tmp-9"]
    theirs = [root / "data" / "sft" / "notes.txt.tmp-1", root / "data" / "sft" / "train-00000-of-00001.parquet.tmp-x",
              root / "backup.tmp-7"]
    for p in ours + theirs:
        p.write_bytes(b"t")
    assert sorted(remove_temp(root)) == sorted(ours)
    assert all(p.read_bytes() == b"t" for p in theirs)


def test_outputs_from_before_manifests_are_taken_over(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"stages_run": ["sft"]}))
    claim(tmp_path / "run", "run", ["model"])
    assert owned(tmp_path / "run") == ["model"]
    with pytest.raises(OutDirError, match="holds a training run"):
        check(tmp_path / "run", "dataset")


def test_a_broken_manifest_is_named(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(OutDirError, match=re.escape(f"{tmp_path / MANIFEST} is not a HomePilot manifest")):
        check(tmp_path, "run")

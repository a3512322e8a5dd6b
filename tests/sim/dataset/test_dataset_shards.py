"""Shards: identical bytes for 1 or 2 workers and local or ray; resume after an interruption;
atomic writes; a directory holding another config is refused; pool workers die with a killed parent."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

import sim.dataset.build as build_module
from sim.dataset.build import DatasetConfig, build
from sim.dataset.shards import MARKERS_DIR, file_hashes, plan_shards, shard_path, write_atomic

pytestmark = pytest.mark.timeout(300)


def cfg(out, **kw) -> DatasetConfig:
    return DatasetConfig(out=str(out), preset="tiny", **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "D"
    result = build(cfg(out, workers=1))
    assert result.skipped == [] and len(result.ran) == len(cfg(out).shards())
    return file_hashes(out)


def test_plan_is_fixed_by_the_home_lists():
    shards = plan_shards([0, 1, 3, 4, 6], [2, 5], 2)
    assert [(s.key, s.count, s.homes) for s in shards] == [
        ("seen-00000", 3, (0, 1)), ("seen-00001", 3, (3, 4)), ("seen-00002", 3, (6,)),
        ("unseen-00000", 1, (2, 5))]
    assert shard_path(Path("D"), "sft", "train", 1, 3).as_posix() == "D/data/sft/train-00001-of-00003.parquet"


def test_two_workers_give_identical_files(reference, tmp_path):
    build(cfg(tmp_path / "D", workers=2))
    hashes = file_hashes(tmp_path / "D")
    assert hashes == reference
    assert any(k.startswith("data/events/") for k in hashes) and "README.md" in hashes


def test_ray_engine_gives_identical_files(reference, tmp_path):
    build(cfg(tmp_path / "D", workers=2, engine="ray"))
    assert file_hashes(tmp_path / "D") == reference


def test_interrupted_run_resumes_to_the_same_files(reference, tmp_path, monkeypatch):
    out = tmp_path / "D"
    real = build_module.home_rows
    calls = []

    def crash_on_third_home(log, spec):
        calls.append(log.home.index)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed mid-way")
        return real(log, spec)

    monkeypatch.setattr(build_module, "home_rows", crash_on_third_home)
    with pytest.raises(KeyboardInterrupt):
        build(cfg(out, workers=1))
    done = sorted(p.name for p in (out / MARKERS_DIR).glob("*.done"))
    assert done == ["seen-00000.done"]  # the first shard (2 homes) finished, the second did not
    # debris of a killed writer: a temp file, and a half-written shard without its marker
    (out / "data" / "sft" / "train-00001-of-00002.parquet.tmp-999").write_bytes(b"partial")
    (out / "data" / "sft" / "train-00001-of-00002.parquet").write_bytes(b"garbage")
    monkeypatch.setattr(build_module, "home_rows", real)
    result = build(cfg(out, workers=2))
    assert result.skipped == ["seen-00000"] and "seen-00001" in result.ran
    hashes = file_hashes(out)
    assert hashes == reference
    # a re-run of a finished dataset runs nothing and changes nothing
    again = build(cfg(out, workers=2))
    assert again.ran == [] and file_hashes(out) == reference
    assert not list(out.rglob("*.tmp-*"))  # debris of killed writers is cleaned up


def test_other_config_in_the_same_directory_is_refused(tmp_path):
    out = tmp_path / "D"
    build(cfg(out, workers=1, homes=3, days=2))
    with pytest.raises(ValueError, match=r"different config \(fields \['days'\]\)"):
        build(cfg(out, workers=1, homes=3, days=3))
    result = build(cfg(out, workers=1, homes=3, days=3, overwrite=True))
    assert result.skipped == [] and result.rows["sft/train"] > 0


def test_atomic_write_leaves_no_temp_and_is_deterministic(tmp_path):
    t = pa.table({"a": [1, 2, 3]})
    write_atomic(t, tmp_path / "x.parquet")
    write_atomic(t, tmp_path / "y.parquet")
    assert (tmp_path / "x.parquet").read_bytes() == (tmp_path / "y.parquet").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet", "y.parquet"]


@pytest.mark.parametrize("bad", [dict(preset="huge"), dict(homes=0), dict(days=2, test_days=2),
                                 dict(engine="spark"), dict(workers=0), dict(sft_rate=1.5)])
def test_config_errors_name_the_field(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key if key != "days" else "test_days"):
        DatasetConfig(**bad)


def test_killed_subprocess_resumes_to_the_same_files(tmp_path):
    """A real kill: SIGKILL the CLI right after its first shard lands, then re-run the same command."""
    import signal
    import subprocess
    import sys
    import time

    args = ["--preset", "tiny", "--homes", "12", "--days", "4", "--workers", "1"]
    ref, out = tmp_path / "ref", tmp_path / "D"
    build(DatasetConfig(out=str(ref), preset="tiny", homes=12, days=4, workers=2))
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "generate", *args, "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((out / MARKERS_DIR).glob("*.done")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_done = len(list((out / MARKERS_DIR).glob("*.done")))
    n_shards = len(DatasetConfig(preset="tiny", homes=12, days=4).shards())
    assert 1 <= n_done < n_shards
    r = subprocess.run([sys.executable, "-m", "app.cli", "generate", *args, "--out", str(out), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)  # structured output: independent of terminal width and path length
    assert summary["shards_resumed"] == n_done and summary["shards_run"] + n_done == n_shards, summary
    a, b = file_hashes(out), file_hashes(ref)
    assert [k for k in a.keys() | b.keys() if a.get(k) != b.get(k)] == [], (n_done, sorted(a))


def _children(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_pool_workers_die_with_a_killed_generate(tmp_path):
    """kill -9 of ``generate --workers 2`` takes its pool workers with it (they would wait on the task
    pipe forever)."""
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "generate", "--preset", "tiny", "--homes", "40",
                             "--days", "4", "--workers", "2", "--out", str(tmp_path / "D")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            workers = _children(proc.pid)
            time.sleep(0.01)
        assert len(workers) == 2, "the pool did not start"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them behind when the test fails
        os.kill(w, signal.SIGKILL)
    assert left == []

"""Output directories HomePilot owns: it only ever deletes or replaces files it wrote itself.

Every writing command claims its ``--out`` before its first write (``claim(root, kind, paths)``):

- an absent directory is created (with its parents), an empty one is taken;
- a directory whose ``.homepilot.json`` names the same kind is reused;
- anything else raises ``OutDirError`` naming the directory and what it holds: a file, a place
  that cannot be written, a HomePilot output of another kind, a non-empty folder HomePilot did
  not make.

``.homepilot.json`` = ``{"kind": KIND, "paths": [...]}``: the paths (relative, POSIX) HomePilot
writes there, each a file or a folder it makes whole (a run's ``pretrain/``). Paths are recorded
before they are written, so a killed command leaves a manifest that covers its partial files.
``remove_owned`` (``--overwrite``) deletes exactly those paths, then the folders they leave empty;
``remove_temp`` deletes the temp files of interrupted atomic writes (``NAME.tmp-PID``) next to
listed files and inside listed folders. A user's own file in the directory is never touched.

Kinds: ``dataset`` (generate), ``imported-dataset`` (import-log), ``run`` (train), ``report``
(evaluate), ``replay``, ``sim-report``, ``quickstart`` (a folder of the other kinds), ``reproduce``
(a folder of quickstart folders, one per seed, with the sensitivity runs and the combined report).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

MANIFEST = ".homepilot.json"

KINDS: dict[str, str] = {
    "dataset": "a generated dataset", "imported-dataset": "an imported dataset", "run": "a training run",
    "report": "an evaluation report", "replay": "a replay report", "sim-report": "a simulator report",
    "quickstart": "a quickstart folder", "reproduce": "a reproduce folder",
}

# Outputs written before HomePilot kept a manifest are recognised by one JSON file of the kind
# holding one key, and taken over as that kind (so a resume of an older run or dataset still works).
LEGACY: dict[str, tuple[str, str]] = {
    "dataset": (".shards/generation.json", "generator_version"), "run": ("config.json", "stages_run"),
    "report": ("report.json", "whole"), "replay": ("replay.json", "n_boot"),
    "sim-report": ("sim_report.json", "ops_per_home_day"), "quickstart": ("data/.shards/generation.json", "generator_version"),
}

_TEMP = re.compile(r".+\.tmp-\d+")  # NAME.tmp-PID: sim.dataset.shards.write_atomic and this module


class OutDirError(ValueError):
    """An output directory HomePilot may not write into; the message names it and what it holds."""


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def manifest(root: str | Path) -> dict | None:
    """The manifest of ``root`` (None when it has none); ``OutDirError`` when it is unreadable."""
    path = Path(root) / MANIFEST
    if not path.exists():
        return None
    data = _json(path)
    if data is None or data.get("kind") not in KINDS or not isinstance(data.get("paths"), list):
        raise OutDirError(f"{path} is not a HomePilot manifest (expected {{\"kind\": one of {', '.join(KINDS)}, "
                          "\"paths\": [...]}); remove it or choose another directory")
    return data


def _legacy_kind(root: Path) -> str | None:
    for kind, (name, key) in LEGACY.items():
        data = _json(root / name)
        if data is not None and key in data:
            return kind
    return None


def _listing(root: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def check(root: str | Path, kind: str) -> None:
    """Raise ``OutDirError`` unless HomePilot may write ``kind`` output into ``root``; writes nothing."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise OutDirError(f"output directory {root} is a file, not a directory")
    if not root.exists():
        parent = next(p for p in root.absolute().parents if p.exists())
        if not parent.is_dir():
            raise OutDirError(f"cannot create output directory {root}: {parent} is a file, not a directory")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise OutDirError(f"cannot create output directory {root}: {parent} is not writable")
        return
    if not os.access(root, os.W_OK | os.X_OK):
        raise OutDirError(f"output directory {root} is not writable")
    have = manifest(root)
    found = have["kind"] if have else _legacy_kind(root)
    if found == kind:
        return
    if found is not None:
        raise OutDirError(f"output directory {root} holds {KINDS[found]}, not {KINDS[kind]}: choose another directory")
    if any(root.iterdir()):
        raise OutDirError(f"output directory {root} is not empty and HomePilot did not make it (it holds "
                          f"{_listing(root)}): choose a new or empty directory")


def _normal(path: str) -> str:
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"owned paths are relative and stay inside the directory, got {path!r}")
    return p.as_posix()


def _write(root: Path, kind: str, paths: Iterable[str]) -> None:
    path = root / MANIFEST
    tmp = path.with_name(f"{MANIFEST}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"kind": kind, "paths": sorted(set(paths))}, indent=1) + "\n")
    os.replace(tmp, path)


def claim(root: str | Path, kind: str, paths: Iterable[str] = ()) -> Path:
    """``check``, create ``root`` and record ``paths`` (relative) as HomePilot's, before they are
    written; returns ``root``. Paths recorded earlier stay recorded."""
    check(root, kind)
    root = Path(root)
    new = {_normal(p) for p in paths}
    try:
        root.mkdir(parents=True, exist_ok=True)
        have = manifest(root)
        old = set(have["paths"]) if have else set()
        if have is None or not new <= old:
            _write(root, kind, old | new)
    except OSError as e:
        raise OutDirError(f"cannot write output directory {root}: {e.strerror or e}") from None
    return root


def owned(root: str | Path) -> list[str]:
    """The paths the manifest of ``root`` lists (``[]`` without one)."""
    have = manifest(root)
    return list(have["paths"]) if have else []


def remove_owned(root: str | Path) -> None:
    """``--overwrite``: delete every path the manifest lists, then the folders they leave empty;
    the manifest stays, listing nothing. Anything else in ``root`` is left as it is."""
    root = Path(root)
    have = manifest(root)
    if have is None:
        return
    for rel in have["paths"]:
        path = root / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        for parent in path.parents:  # folders the removal emptied, up to (not including) root
            if parent == root or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    _write(root, have["kind"], [])


def remove_temp(root: str | Path) -> list[Path]:
    """Delete the temp files of interrupted atomic writes (``NAME.tmp-PID``) next to the listed
    files and inside the listed folders; returns what was deleted."""
    root = Path(root)
    gone = []
    for rel in [*owned(root), MANIFEST]:
        path = root / rel
        found = path.rglob("*.tmp-*") if path.is_dir() else path.parent.glob(glob.escape(path.name) + ".tmp-*")
        for t in found:
            if _TEMP.fullmatch(t.name) and t.is_file() and not t.is_symlink():
                t.unlink()
                gone.append(t)
    return gone

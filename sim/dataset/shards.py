"""Parquet shards: names, deterministic bytes, atomic writes, resume.

A dataset directory holds ``data/<config>/<split>-NNNNN-of-MMMMM.parquet``. A *shard* is a
fixed group of homes (``ShardPlan``); shard ``j`` of a split group writes one file per
(config, split) it feeds, ``NNNNN = j`` and ``MMMMM`` = the number of shards in that group, a
number fixed by the generation config (homes, unseen homes, homes per shard), so names never
change between a first run and its resume.

Bytes are deterministic: fixed row order, fixed schema (``sim.dataset.schema``), zstd level 3, fixed
row-group size, no timestamps or uuids in metadata. A file is written to ``<name>.tmp-<pid>``
in the same folder and moved into place with ``os.replace``, so a reader (or a resume) never
sees half a file. Each shard's files are written data first and a ``.done`` marker last; a
shard whose marker exists is skipped on resume.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sim.dataset.schema import SCHEMAS
from sim.outdir import MANIFEST

ROW_GROUP = 10_000  # rows per parquet row group
COMPRESSION = "zstd"
MARKERS_DIR = ".shards"  # <out>/.shards/<group>-NNNNN.done (not part of the published dataset)


@dataclass(frozen=True)
class Shard:
    """One unit of work: a group (``seen`` | ``unseen``), its position and its homes."""

    group: str
    index: int
    count: int
    homes: tuple[int, ...]  # home indices, ascending

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test") if self.group == "seen" else ("test_unseen",)

    @property
    def key(self) -> str:
        return f"{self.group}-{self.index:05d}"


def plan_shards(seen: Sequence[int], unseen: Sequence[int], homes_per_shard: int) -> list[Shard]:
    """Fixed groups of ``homes_per_shard`` homes, seen homes first; the plan depends on nothing else."""
    if homes_per_shard < 1:
        raise ValueError(f"homes_per_shard must be >= 1, got {homes_per_shard}")
    out: list[Shard] = []
    for group, homes in (("seen", sorted(seen)), ("unseen", sorted(unseen))):
        chunks = [tuple(homes[i:i + homes_per_shard]) for i in range(0, len(homes), homes_per_shard)]
        out += [Shard(group, j, len(chunks), c) for j, c in enumerate(chunks)]
    return out


def shard_path(root: Path, config: str, split: str, index: int, count: int) -> Path:
    return root / "data" / config / f"{split}-{index:05d}-of-{count:05d}.parquet"


def to_table(config: str, rows: Mapping[str, list]) -> pa.Table:
    """Columns -> a table with exactly the config's schema (missing columns are an error)."""
    schema = SCHEMAS[config]
    missing = [n for n in schema.names if n not in rows]
    if missing:
        raise ValueError(f"config {config!r}: rows lack columns {missing}")
    return pa.Table.from_pydict({n: rows[n] for n in schema.names}, schema=schema)


def write_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` via a temp file and ``os.replace`` (deterministic bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp, compression=COMPRESSION, compression_level=3, row_group_size=ROW_GROUP,
                       write_statistics=True, store_schema=True)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(text: str | bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(text.encode() if isinstance(text, str) else text)
    os.replace(tmp, path)


def marker_path(root: Path, shard: Shard) -> Path:
    return root / MARKERS_DIR / f"{shard.key}.done"


def is_done(root: Path, shard: Shard, configs: Iterable[str]) -> bool:
    """A shard is finished when its marker and every file it owns exist."""
    if not marker_path(root, shard).exists():
        return False
    info = json.loads(marker_path(root, shard).read_text())
    return all((root / p).exists() for p in info["files"]) and set(info["configs"]) >= set(configs)


def write_shard(root: Path, shard: Shard, tables: Mapping[tuple[str, str], Sequence[pa.Table]],
                configs: Sequence[str], splits_by_config: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Write every (config, split) file of a shard (empty splits as empty files), then its marker.

    ``tables`` maps (config, split) to the tables of the shard's homes, in home order.
    ``splits_by_config`` names the splits each config has in this shard's group, so every shard
    writes the same set of file names. Returns rows written per ``config/split``.
    """
    counts: dict[str, int] = {}
    files = []
    for config in configs:
        for split in splits_by_config[config]:
            parts = list(tables.get((config, split), ()))
            table = pa.concat_tables(parts) if parts else SCHEMAS[config].empty_table()
            path = shard_path(root, config, split, shard.index, shard.count)
            write_atomic(table, path)
            files.append(str(path.relative_to(root)))
            counts[f"{config}/{split}"] = table.num_rows
    write_text_atomic(json.dumps({"files": files, "configs": list(configs), "rows": counts}, sort_keys=True),
                      marker_path(root, shard))
    return counts


def shard_counts(root: Path, shard: Shard) -> dict[str, int]:
    return json.loads(marker_path(root, shard).read_text())["rows"]


def file_hashes(root: Path) -> dict[str, str]:
    """sha256 of every published file (data and card), by relative path: for determinism checks.
    Not published: the shard markers, temp files and HomePilot's manifest (``sim.outdir``)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and MARKERS_DIR not in p.parts and ".tmp-" not in p.name and p.name != MANIFEST:
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out

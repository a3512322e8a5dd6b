"""Reading a dataset directory: the one reader that training, evaluation, the envs and the app use.

A dataset directory holds ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` (``sim.dataset.shards``
writes them; ``sim.dataset.schema`` fixes the columns). Missing configs or splits are errors that name
the path, unless the caller says the split may be absent.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sim.dataset.schema import SPLITS
from sim.records import Operation, parse_operation

#: One sft/dpo train prompt in this many is held out of training: the validation slice on which a
#: trained run's confidence is calibrated and its answers checked for collapse (``agent.calibrate``).
HELD_OUT_EVERY = 10


def is_held_out(prompt: str) -> bool:
    """True for the train prompts kept out of training (a fixed 1 in ``HELD_OUT_EVERY``, by a CRC32
    of the prompt text: the same rows whatever the row order, shard layout or process)."""
    return zlib.crc32(prompt.encode("utf-8")) % HELD_OUT_EVERY == 0


def split_files(root: str | Path, config: str, split: str) -> list[Path]:
    """The shards of one config/split in shard order (empty when there are none)."""
    return sorted((Path(root) / "data" / config).glob(f"{split}-*.parquet"))


def read_table(root: str | Path, config: str, split: str, columns: Sequence[str] | None = None,
               required: bool = True) -> pa.Table | None:
    """One config/split as a pyarrow Table; ``required=False`` returns None when it has no shards."""
    cdir = Path(root) / "data" / config
    if not cdir.is_dir():
        if not required:
            return None
        raise FileNotFoundError(f"no {config} {split} split in {root}: the '{config}' config folder {cdir} is missing")
    files = split_files(root, config, split)
    if not files:
        if not required:
            return None
        raise FileNotFoundError(f"no {config} {split} split in {root}: nothing matches {cdir / f'{split}-*.parquet'}")
    return pa.concat_tables([pq.read_table(f, columns=list(columns) if columns else None) for f in files])


def read_rows(root: str | Path, config: str, split: str, columns: Sequence[str] | None = None,
              required: bool = True) -> list[dict]:
    """One config/split as a list of row dicts (``[]`` for an absent split with ``required=False``)."""
    t = read_table(root, config, split, columns, required)
    return [] if t is None else t.to_pylist()


def logged_operations(root: str | Path, splits: Iterable[str] = SPLITS) -> dict[str, list[Operation]]:
    """Every home's logged operations in ``splits``, by time: what a deployed recommender has seen."""
    by_home: dict[str, list[Operation]] = {}
    for split in splits:
        for r in read_rows(root, "operations", split, ["home_id", "user", "source", "logged", "text"], required=False):
            if r["logged"]:
                op = parse_operation(r["text"])
                by_home.setdefault(r["home_id"], []).append(
                    Operation(op.time, op.actions, op.environment, op.description, home=r["home_id"],
                              user=r["user"] or "", source=r["source"], logged=True))
    for ops in by_home.values():
        ops.sort(key=lambda o: o.time)
    return by_home

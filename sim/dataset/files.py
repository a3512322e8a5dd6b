"""Reading a dataset directory: the one reader that training, evaluation, the envs and the app use.

A dataset directory holds ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` (``sim.dataset.shards``
writes them; ``sim.dataset.schema`` fixes the columns). Every reader here is strict: a missing
config or split (unless the caller says it may be absent), a missing shard of an ``-of-MMMMM`` set,
an unreadable file or a missing column raise ``DatasetError`` naming the path. Only
``sim.dataset.validate`` opens shards on its own: it checks each file, including badly named ones.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.dataset.schema import SCHEMAS, SPLITS
from sim.log import DeviceSpec, Event, HomeLog, HomeSpec
from sim.records import GrammarError, Operation, parse_operation, prompt_time

#: The validation slice: the sft/dpo train prompts of the train period's last days, kept out of every
#: training stage (pre-training too), on which a trained run's confidence is calibrated, its gate and
#: candidate pool fitted and its answers checked for collapse (``agent.calibrate``). ``HELD_OUT_SHARE``
#: of the period's days, at least one; a period of one day has no slice. A slice of the last days reads
#: like the test split (later days): a random 1 in 10 of every day did not (the first days' usual lists
#: are short on history: 47% of its labels were none of the usual operations, 41% on test, 38% on the
#: last 2 days; README, item (11) of the training notes).
HELD_OUT_SHARE = 0.1

def held_out_since(root: str | Path) -> datetime | None:
    """Midnight of the first day of the validation slice: the last ``ceil(HELD_OUT_SHARE x days)``
    (at least 1) of the days the ``sft`` train split spans; None for a train period of one day."""
    import math
    from datetime import timedelta

    times = read_table(root, "sft", "train", ["time"]).column("time").to_pylist()
    days = sorted({datetime.fromisoformat(str(t)).date() for t in times})
    if len(days) < 2:
        return None
    span = (days[-1] - days[0]).days + 1
    first = days[-1] - timedelta(days=max(1, math.ceil(HELD_OUT_SHARE * span)) - 1)
    return datetime.combine(first, datetime.min.time())


def validation_rule(root: str | Path) -> str:
    """The validation slice of ``root`` in words (``held_out_since``), what a training run records
    beside its inputs' digests: a run resumed under another rule would mix two slices. A dataset
    without an sft train split has none (a pre-training-only run; ``train`` names a missing split
    its stages need)."""
    if not split_files(root, "sft", "train", required=False):
        return "none (no sft train split)"
    since = held_out_since(root)
    if since is None:
        return "none (the sft train split spans one day)"
    return f"the sft train days from {since.date().isoformat()} (the last {HELD_OUT_SHARE:.0%} of its days, rounded up)"


def is_held_out(prompt: str, since: datetime | None) -> bool:
    """True for a train prompt of the validation slice: decided at or after ``since``
    (``held_out_since``; None: no slice)."""
    if since is None:
        return False
    try:
        return prompt_time(prompt) >= since
    except GrammarError as e:
        raise DatasetError(f"not a prompt with a decision time ({e})") from None


class DatasetError(ValueError):
    """A dataset directory or file that cannot be read as ``sim.dataset.schema`` lays it out; the
    message names the path (and the row or column) and what was expected."""


SHARD_RE = re.compile(r"^(?P<split>[a-z_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")


def split_files(root: str | Path, config: str, split: str, required: bool = True) -> list[Path]:
    """The complete, ordered shard list of ``config``/``split``.

    Raises ``DatasetError`` for an unknown config or split, a missing config folder or split
    (unless ``required=False``: then ``[]``), a badly named shard, shards that disagree on their
    total, or a missing shard of the ``-of-MMMMM`` set (a partly generated split is never read as
    if it were whole).
    """
    if config not in SCHEMAS:
        raise DatasetError(f"unknown dataset config {config!r}; allowed: {', '.join(SCHEMAS)}")
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    root = Path(root)
    cdir = root / "data" / config
    if not cdir.is_dir():
        if not required:
            return []
        raise DatasetError(f"no {config} {split} split in {root}: the config folder {cdir} is missing"
                           f" (is {root} a dataset made by `homepilot generate`?)")
    files = sorted(cdir.glob(f"{split}-*.parquet"))
    if not files:
        if not required:
            return []
        raise DatasetError(f"no {config} {split} split in {root}: no files named {split}-00000-of-NNNNN.parquet"
                           f" in {cdir}")
    totals = set()
    for p in files:
        m = SHARD_RE.match(p.name)
        if not m or m["split"] != split:
            raise DatasetError(f"bad shard file name {p}: expected {split}-NNNNN-of-MMMMM.parquet")
        totals.add(int(m["n"]))
    if len(totals) != 1:
        raise DatasetError(f"shards of {config} {split} in {cdir} disagree on their total (-of-MMMMM): {sorted(totals)}")
    n = totals.pop()
    have = {int(SHARD_RE.match(p.name)["i"]) for p in files}
    missing = [i for i in range(n) if i not in have]
    if missing:
        raise DatasetError(f"missing shard file {cdir / f'{split}-{missing[0]:05d}-of-{n:05d}.parquet'}"
                           f" ({len(missing)} of {n} missing: the split is incomplete; resume `homepilot generate`)")
    return files


#: The held-out splits, in report order (``homepilot evaluate`` and ``replay`` default to those that exist).
TEST_SPLITS: tuple[str, ...] = ("test", "test_unseen")


def existing_splits(root: str | Path, config: str, candidates: Sequence[str] = TEST_SPLITS) -> tuple[str, ...]:
    """The ``candidates`` for which ``config`` has shards (an import has no ``test_unseen``)."""
    return tuple(s for s in candidates if split_files(root, config, s, required=False))


def parse_splits(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``--splits``: a comma-separated list (``test,test_unseen``) or a sequence of split names,
    each one of ``SPLITS``, without repeats; None or empty -> None (the caller's default)."""
    if text is None:
        return None
    items = [s.strip() for part in ([text] if isinstance(text, str) else text) for s in part.split(",") if s.strip()]
    bad = [s for s in items if s not in SPLITS]
    if bad:
        raise ValueError(f"--splits: unknown split {bad[0]!r}; allowed: {', '.join(SPLITS)}")
    return tuple(dict.fromkeys(items)) or None


def dataset_digest(root: str | Path, configs: Sequence[str], split: str = "train") -> str:
    """sha256 over the names and bytes of the ``split`` shards of ``configs`` (absent ones count as
    empty): whether two dataset directories hold the same training input."""
    h = hashlib.sha256()
    for config in configs:
        for p in split_files(root, config, split, required=False):
            h.update(f"{config}/{p.name}\n".encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def read_file(path: Path, columns: Sequence[str] | None = None, home_id: str | None = None) -> pa.Table:
    """One shard (``columns`` only; the rows of ``home_id`` only, when given: row groups of other
    homes are skipped by their statistics); ``DatasetError`` naming the file when it is not readable
    parquet or lacks a column."""
    try:
        table = pq.read_table(path, filters=None if home_id is None else [("home_id", "=", home_id)])
    except (pa.ArrowException, OSError) as e:
        raise DatasetError(f"malformed parquet file {path}: {e}") from None
    if columns:
        absent = [c for c in columns if c not in table.column_names]
        if absent:
            raise DatasetError(f"file {path} lacks column {absent[0]!r} (has: {', '.join(table.column_names)})")
        table = table.select(list(columns))
    return table


def read_table(root: str | Path, config: str, split: str, columns: Sequence[str] | None = None,
               required: bool = True, home_id: str | None = None) -> pa.Table | None:
    """One config/split as a pyarrow Table (every shard, checked by ``split_files`` and
    ``read_file``; one home's rows with ``home_id``); ``required=False`` returns None when the split
    has no shards."""
    files = split_files(root, config, split, required)
    if not files:
        return None
    return pa.concat_tables([read_file(f, columns, home_id) for f in files])


def read_rows(root: str | Path, config: str, split: str, columns: Sequence[str] | None = None,
              required: bool = True) -> list[dict]:
    """One config/split as a list of row dicts (``[]`` for an absent split with ``required=False``)."""
    t = read_table(root, config, split, columns, required)
    return [] if t is None else t.to_pylist()


_OP_COLUMNS = ["home_id", "user", "source", "logged", "text"]


def _operation(r: dict) -> Operation:
    """An ``operations`` row as the ``Operation`` the simulator logged (home, user, source, logged)."""
    op = parse_operation(r["text"])
    return Operation(op.time, op.actions, op.environment, op.description, home=r["home_id"], user=r["user"] or "",
                     source=r["source"], logged=bool(r["logged"]))


def logged_operations(root: str | Path, splits: Iterable[str] = SPLITS) -> dict[str, list[Operation]]:
    """Every home's logged operations in ``splits``, by time: what a deployed recommender has seen."""
    by_home: dict[str, list[Operation]] = {}
    for split in splits:
        for r in read_rows(root, "operations", split, _OP_COLUMNS, required=False):
            if r["logged"]:
                by_home.setdefault(r["home_id"], []).append(_operation(r))
    for ops in by_home.values():
        ops.sort(key=lambda o: o.time)
    return by_home


def read_homes(root: str | Path, splits: Iterable[str] = SPLITS) -> dict[str, HomeSpec]:
    """Every home of the ``homes`` config in ``splits`` (all by default), in file order, its devices
    with their Home Assistant entity ids (``entities``; none in a ``homes`` file written before
    generator 0.5.1, which lacks the column)."""
    out: dict[str, HomeSpec] = {}
    for split in splits:
        table = read_table(root, "homes", split, required=False)
        for r in [] if table is None else table.to_pylist():
            ids: dict[tuple[str, str], list[str]] = {}
            for e in r.get("entities") or ():
                ids.setdefault((e["room"], e["device"]), []).append(e["entity_id"])
            devices = tuple(DeviceSpec(d["room"], d["device"], d["type"], entity_ids=tuple(ids.get((d["room"], d["device"]), ())))
                            for d in r["devices"])
            out[r["home_id"]] = HomeSpec(r["home_id"], int(r["index"]), tuple(r["rooms"]), devices,
                                         tuple(r["residents"]), r["climate_zone"])
    return out


def read_home_log(root: str | Path, home_id: str, before: datetime | None = None) -> HomeLog:
    """One home as a ``HomeLog`` rebuilt from the dataset: its ``homes`` row, its ``events`` (readings
    and device changes) and ``operations`` (logged and unlogged) of every split, those strictly before
    ``before`` only (everything when None). No exposures and no hidden truth: what a deployed
    recommender knows of the home. ``DatasetError`` naming the homes when ``home_id`` is not one."""
    homes = read_homes(root)
    if home_id not in homes:
        known = ", ".join(list(homes)[:10]) + (", ..." if len(homes) > 10 else "")
        raise DatasetError(f"home {home_id!r} is not in {Path(root) / 'data' / 'homes'} (homes: {known or 'none'})")
    events: list[Event] = []
    ops: list[Operation] = []
    for split in SPLITS:
        t = read_table(root, "events", split, required=False, home_id=home_id)
        if t is not None and before is not None:
            t = t.filter(pc.less(t["time"], pa.scalar(before, t["time"].type)))
        for r in [] if t is None else t.to_pylist():
            events.append(Event(r["time"], r["kind"], r["room"], r["device"], r["field"], r["value"], r["source"],
                                r["user"], r["logged"]))
        t = read_table(root, "operations", split, _OP_COLUMNS, required=False, home_id=home_id)
        ops += [op for op in map(_operation, [] if t is None else t.to_pylist()) if before is None or op.time < before]
    events.sort(key=lambda e: e.time)
    ops.sort(key=lambda o: o.time)
    times = [e.time for e in events[:1] + events[-1:]] + [o.time for o in ops[:1] + ops[-1:]]
    first = min(times, default=before or datetime(2000, 1, 1))
    last = max(times, default=first)
    start = datetime.combine(first.date(), datetime.min.time())
    days = (last.date() - start.date()).days + 1
    return HomeLog(homes[home_id], start, days, events, ops, [], None)


def rewindow_prompts(root: str | Path, home_ids: Sequence[str], prompts: Sequence[str], k: int) -> list[str]:
    """Prompt texts of ``root``'s rows (with their ``home_ids``) rebuilt with a history window of ``k``
    operations from the dataset's logged operations (``sim.prompts.rewindow``): the prompts the
    dataset would hold with ``HISTORY_K = k``. A home without logged operations keeps an empty window."""
    from sim.prompts import rewindow
    from sim.records import parse_prompt, serialize_prompt

    if len(home_ids) != len(prompts):
        raise ValueError(f"{len(home_ids)} home ids but {len(prompts)} prompts")
    ops = logged_operations(root)
    times = {h: [o.time for o in v] for h, v in ops.items()}
    out = []
    for i, (h, text) in enumerate(zip(home_ids, prompts, strict=True)):
        p = parse_prompt(text)
        if p.history and h not in ops:
            raise DatasetError(f"{Path(root) / 'data' / 'operations'}: no logged operations of home {h!r}, whose "
                               f"prompt {i} has a history; rebuilding history windows needs the operations config")
        out.append(serialize_prompt(rewindow(p, ops.get(h, []), k, times.get(h, []))))
    return out

"""``homepilot import-log``: a generic CSV event log of a real home -> the same dataset configs.

Events CSV (header required; extra columns are ignored)::

    timestamp,room,device,device_type,field,value[,source]
    2026-01-05T07:31:12,bedroom,curtain,curtain,action,open,app

- ``timestamp``: ISO 8601 (``2026-01-05T07:31:12``, ``2026-01-05 07:31``, ``...+01:00``, ``...Z``)
  from 2000 to 2099. A time without an offset is the home's wall-clock time; one with an offset
  is converted to the home's time zone (``timezone``, an IANA name; default UTC). Rows are ordered
  by the instant they happened (file order among equal instants), so mixed offsets and a DST
  fall-back keep their order; in the hour a fall-back repeats, a wall-clock time earlier than the
  previous row's is held at that one (the dataset's clock never runs backwards);
- ``room``, ``device``: names of 1..64 printable characters without spaces or brackets
  (``living_room``, ``light_2``; ``sim.dataset.checks.check_name``);
- ``device_type``, ``field``, ``value``: a catalogue type (``sim.catalog.DEVICE_TYPES``), one of
  its fields and a legal value (numbers in canonical spelling: ``26``, ``22.5``);
- ``source`` (optional): app | voice | physical | automation (default app).

Sensors CSV (optional)::

    timestamp,room,indicator,value
    2026-01-05T07:30:00,bedroom,temperature,21.5

``indicator`` is one of ``sim.catalog.INDICATORS`` (a finite value in its range, rounded to the
canonical spelling) or ``weather`` (room ``outdoor``: one of ``sim.catalog.WEATHER``).

Files are UTF-8 (a byte-order mark is accepted), at most ``MAX_LINE`` characters a line (no field
holds a line break) and ``max_rows`` rows. They are read as a stream into columns (interned
names, one ``Action`` per distinct action), so memory grows with the rows kept, not the text.

Rows of the same source within ``burst_s`` seconds of a burst's first row become one
multi-action operation (a later value of the same field replaces the earlier one); its
environment is the latest readings of its rooms and ``outdoor``; its description comes from
``sim.describe``. The last ``test_days`` days *that have operations* form the ``test`` split (a day
without any, e.g. away from home or a logging gap, is not counted: ``test_cutoff``; both sft splits must get
rows). Only configs and splits with rows are written: no recommendations were logged, so there is
no ``feedback`` config. Any bad input raises ``LogFormatError`` naming the file, line and column
and what is allowed.
"""

from __future__ import annotations

import csv
import json
import os
import re
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sim.catalog import INDICATORS, OUTDOOR, CatalogError, device_type
from sim.dataset.checks import MAX_NAME, TIME_MAX, TIME_MIN, InputError, check_name, check_reading, check_time
from sim.dataset.rows import Environment, RowSpec, home_rows
from sim.dataset.schema import SCHEMAS
from sim.dataset.shards import COMPRESSION, ROW_GROUP, Shard, marker_path, plan_shards, shard_path, write_text_atomic
from sim.describe import describe
from sim.log import DeviceSpec, EventTable, HomeLog, HomeSpec
from sim.records import SOURCES, Action, Operation

EVENT_COLUMNS = ("timestamp", "room", "device", "device_type", "field", "value")
SENSOR_COLUMNS = ("timestamp", "room", "indicator", "value")
MAX_LINE = 4096  # characters in one CSV line: every allowed field is far shorter
MAX_ROWS = 10_000_000  # rows per file by default (~550 MB; a year of a busy home is ~1M rows)
PROGRESS_ROWS = 20_000  # rows read between two progress calls
READING_INDICATORS = (*INDICATORS, "weather")
#: Configs an import writes: no recommendations were logged, so no ``feedback``.
IMPORT_SPLITS = {"homes": ("train",), "events": ("train", "test"), "operations": ("train", "test"),
                 "pretrain": ("train",), "sft": ("train", "test"), "dpo": ("train",)}
_EPOCH = datetime(1970, 1, 1)
_UTC = timezone.utc

Progress = Callable[[str, int, int], None]  # (stage, done, total), as app.progress.StageProgress


class LogFormatError(ValueError):
    """A malformed input row: names the file, the 1-based line and the column."""

    def __init__(self, file: str | Path, line: int, column: str, message: str) -> None:
        self.file, self.line, self.column = str(file), line, column
        super().__init__(f"{file}, line {line}, column {column!r}: {message}")


@dataclass
class ImportConfig:
    """Options of ``homepilot import-log``."""

    events: str  # events CSV path
    out: str  # dataset directory to write
    sensors: str | None = None  # optional sensors CSV path
    home_id: str = ""  # home id in every row; default: the events file's stem
    burst_s: int = 60  # rows of one source within this many seconds form one operation
    test_days: int = 1  # the last days with operations form the test split (empty days are not counted)
    timezone: str = "UTC"  # the home's IANA time zone: times with a UTC offset are converted to it
    max_rows: int = MAX_ROWS  # rows per file at most
    seed: int = 0  # seed of the row sampler (DPO time negatives)
    sft_rate: float = 1.0  # share of train-period operations that become sft rows
    dpo_rate: float = 1.0  # share of sft train rows mined for a dpo pair

    def __post_init__(self) -> None:
        if not Path(self.events).is_file():
            raise ValueError(f"events: no such file {self.events!r}")
        if self.sensors is not None and not Path(self.sensors).is_file():
            raise ValueError(f"sensors: no such file {self.sensors!r}")
        if self.burst_s < 0 or self.test_days < 1:
            raise ValueError(f"need burst_s >= 0 and test_days >= 1, got {self.burst_s}, {self.test_days}")
        if self.max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {self.max_rows}")
        self.home_id = check_home(self.home_id, self.events, self.timezone)


def check_home(home_id: str, source: str | Path, timezone: str) -> str:
    """The home id of an import (default: the source file's name, made a legal name) after checking
    it and the IANA ``timezone``; ``ValueError`` naming the option otherwise. Shared by the
    importers (CSV here, Home Assistant in ``sim.dataset.ha``)."""
    home_id = home_id or re.sub(r"[^A-Za-z0-9_-]", "_", Path(source).stem)[:MAX_NAME] or "home"
    try:
        check_name(home_id)
    except InputError as e:
        raise ValueError(f"home_id: {e}") from None
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone: unknown time zone {timezone!r}; give an IANA name such as UTC, "
                         "Europe/Berlin or America/New_York") from None
    return home_id


# ---------------------------------------------------------------- reading CSV as a stream


class _Lines:
    """Physical lines of a CSV file for ``csv.reader``: UTF-8 (a leading BOM dropped), at most
    ``MAX_LINE`` characters, and never a second line for one record (no field holds a line break)."""

    def __init__(self, path: Path, f) -> None:
        self.path, self.f = path, f
        self.n = self.bytes = 0  # lines and bytes read
        self.text = ""  # the latest line
        self.pending = False  # a line was handed to csv.reader and its record is not finished
        self.header: tuple[str, ...] = ("timestamp",)

    def __iter__(self) -> Iterator[str]:
        return self

    def column(self, at: int) -> str:
        """The header name of the field holding character ``at`` of the latest line."""
        return self.header[min(self.text[:at].count(","), len(self.header) - 1)]

    def __next__(self) -> str:
        raw = self.f.readline(MAX_LINE * 4 + 1)  # a character is at most 4 bytes
        if not raw:
            raise StopIteration
        if self.pending:
            raise LogFormatError(self.path, self.n, self.column(self.text.rfind('"')), "a quoted field runs past the "
                                 "end of its line; fields may not hold line breaks")
        self.n += 1
        self.bytes += len(raw)
        self.pending = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            self.text = raw[:e.start].decode("utf-8", "replace")
            raise LogFormatError(self.path, self.n, self.column(len(self.text)), f"byte {raw[e.start]:#04x} is not "
                                 "UTF-8; the file must be UTF-8 text") from None
        if self.n == 1 and text.startswith("\ufeff"):  # a byte-order mark
            text = text[1:]
        self.text = text
        if len(raw) > MAX_LINE * 4 or len(text.rstrip("\r\n")) > MAX_LINE:
            parts = text.split(",")
            longest = max(range(len(parts)), key=lambda i: len(parts[i]))  # the field to blame
            raise LogFormatError(self.path, self.n, self.header[min(longest, len(self.header) - 1)],
                                 f"the line is longer than {MAX_LINE} characters; names are at most {MAX_NAME} "
                                 "characters, values a few")
        return text


def _records(path: Path, f, columns: tuple[str, ...], optional: tuple[str, ...], max_rows: int,
             progress: Callable[[int], None] | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line, stripped fields of ``columns + optional``; "" where an optional column is absent)."""
    lines = _Lines(path, f)
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader, [])]
        lines.pending = False
        lines.header = tuple(header) or lines.header
        for col in columns:
            if col not in header:
                raise LogFormatError(path, 1, col, f"missing column; the header needs {', '.join(columns)}")
        pick = [header.index(c) if c in header else -1 for c in (*columns, *optional)]
        width, rows = len(header), 0
        for fields in reader:
            lines.pending = False
            if not fields:
                continue
            rows += 1
            if rows > max_rows:
                raise LogFormatError(path, lines.n, header[0], f"more than {max_rows:,} rows; split the log "
                                     "or raise the limit (--max-rows)")
            if len(fields) != width:
                col = header[min(len(fields), width - 1)]
                raise LogFormatError(path, lines.n, col, f"found {len(fields)} fields; the header has {width}")
            if progress is not None and rows % PROGRESS_ROWS == 0:
                progress(lines.bytes)
            yield lines.n, [fields[i].strip() if i >= 0 else "" for i in pick]
    except csv.Error as e:
        cr = lines.text.rstrip("\r\n").find("\r")
        raise LogFormatError(path, lines.n, lines.column(cr if cr >= 0 else len(lines.text)),
                             f"not CSV ({e}); write one record per line, ending in \\n or \\r\\n") from None
    if progress is not None:
        progress(lines.bytes)


class _Clock:
    """ISO 8601 text -> (instant, wall clock) as whole seconds since 1970: the instant orders rows,
    the wall clock in the home's zone is what the dataset stores."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone, self.utc = zone, str(zone) == "UTC"

    def __call__(self, text: str) -> tuple[int, int]:
        try:
            t = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)  # Z: Python < 3.11
        except ValueError:
            if re.match(r"\d{4}-", text) and not TIME_MIN.year <= int(text[:4]) < TIME_MAX.year:  # year 0
                raise InputError(f"{text[:40]!r} is outside {TIME_MIN:%Y-%m-%d}..{TIME_MAX.year - 1}-12-31") from None
            raise InputError(f"{text[:40]!r} is not an ISO 8601 time (2026-01-05T07:31:12, "
                             "2026-01-05 07:31, 2026-01-05T07:31:12+01:00)") from None
        check_time(t)
        t = t.replace(microsecond=0)
        if t.tzinfo is None:
            wall = t
            aware = t.replace(tzinfo=_UTC if self.utc else self.zone)
        else:
            aware = t
            wall = t.astimezone(_UTC if self.utc else self.zone).replace(tzinfo=None)
            check_time(wall)
        return int(aware.timestamp()), int((wall - _EPOCH).total_seconds())


def _wall(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=int(seconds))


@dataclass
class EventRows:
    """The action rows of an events CSV, ordered by instant (file order among equal ones)."""

    instant: np.ndarray  # (n,) int64 seconds since 1970 (UTC)
    wall: np.ndarray  # (n,) int64 wall-clock seconds in the home's zone, non-decreasing
    source: list[str]
    action: list[Action]
    types: dict[tuple[str, str], str]  # (room, device) -> catalogue type, in order of first appearance

    def __len__(self) -> int:
        return len(self.source)


@dataclass
class SensorRows:
    """The rows of a sensors CSV, ordered like ``EventRows``."""

    wall: np.ndarray
    room: list[str]
    indicator: list[str]
    value: list[str]


def _order(instant: array, wall: array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stable order by instant; instants and wall clocks in it, the wall clock held non-decreasing
    (a DST fall-back repeats an hour of wall-clock times)."""
    inst = np.asarray(instant, np.int64)
    order = np.argsort(inst, kind="stable")
    return order, inst[order], np.maximum.accumulate(np.asarray(wall, np.int64)[order])


def _bytes_progress(progress: Progress | None, stage: str, path: Path) -> Callable[[int], None] | None:
    if progress is None:
        return None
    size = path.stat().st_size
    total = max(1, round(size / 1e6))
    progress(stage, 0, total)
    return lambda done: progress(stage, total if done >= size else min(total - 1, done // 1_000_000), total)


def read_events(path: str | Path, timezone: str = "UTC", max_rows: int = MAX_ROWS,
                progress: Progress | None = None) -> EventRows:
    """Every action row, checked (see the module docstring), in instant order."""
    path = Path(path)
    clock = _Clock(ZoneInfo(timezone))
    names: dict[str, str] = {}  # one string object per distinct name
    actions: dict[tuple[str, ...], Action] = {}  # (room, device, type, field, value) -> checked Action
    types: dict[tuple[str, str], str] = {}
    instant, wall, sources, acts = array("q"), array("q"), [], []
    with open(path, "rb") as f:
        tick = _bytes_progress(progress, f"read {path.name} (MB)", path)
        for line, (ts, room, device, type_, field_, value, source) in _records(path, f, EVENT_COLUMNS, ("source",),
                                                                            max_rows, tick):
            try:
                i, w = clock(ts)
            except InputError as e:
                raise LogFormatError(path, line, "timestamp", str(e)) from None
            key = (room, device, type_, field_, value)
            a = actions.get(key)
            if a is None:
                for col, text in (("room", room), ("device", device)):
                    try:
                        check_name(text)
                    except InputError as e:
                        raise LogFormatError(path, line, col, str(e)) from None
                try:
                    dt = device_type(type_)
                except CatalogError as e:
                    raise LogFormatError(path, line, "device_type", str(e)) from None
                if types.setdefault((room, device), type_) != type_:
                    raise LogFormatError(path, line, "device_type", f"{room}/{device} was {types[(room, device)]!r} "
                                         "earlier; a device keeps one type")
                try:
                    spec = dt.field(field_)
                except CatalogError as e:
                    raise LogFormatError(path, line, "field", str(e)) from None
                if not spec.allows(value):
                    raise LogFormatError(path, line, "value", f"{value[:40]!r} not allowed for {type_}.{field_}; "
                                         f"allowed: {spec.describe_allowed()}")
                a = actions[key] = Action(*(names.setdefault(x, x) for x in (room, device, field_, value)))
            source = source or "app"
            if source not in SOURCES:
                raise LogFormatError(path, line, "source", f"{source[:40]!r} not one of {', '.join(SOURCES)}")
            instant.append(i)
            wall.append(w)
            sources.append(names.setdefault(source, source))
            acts.append(a)
    if not acts:
        raise LogFormatError(path, 2, "timestamp", "the log holds no rows")
    order, inst, walls = _order(instant, wall)
    return EventRows(inst, walls, [sources[i] for i in order], [acts[i] for i in order], types)


def read_sensors(path: str | Path, timezone: str = "UTC", max_rows: int = MAX_ROWS,
                 progress: Progress | None = None) -> SensorRows:
    """Every reading, checked against the catalogue's indicator ranges, in instant order."""
    path = Path(path)
    clock = _Clock(ZoneInfo(timezone))
    names: dict[str, str] = {}
    checked: dict[tuple[str, str], str] = {}  # (indicator, value) -> canonical value
    instant, wall, rooms, inds, values = array("q"), array("q"), [], [], []
    with open(path, "rb") as f:
        tick = _bytes_progress(progress, f"read {path.name} (MB)", path)
        for line, (ts, room, ind, value) in _records(path, f, SENSOR_COLUMNS, (), max_rows, tick):
            try:
                i, w = clock(ts)
            except InputError as e:
                raise LogFormatError(path, line, "timestamp", str(e)) from None
            if room not in names:
                try:
                    check_name(room)
                except InputError as e:
                    raise LogFormatError(path, line, "room", str(e)) from None
            v = checked.get((ind, value))
            if v is None:
                if ind not in READING_INDICATORS:
                    raise LogFormatError(path, line, "indicator", f"{ind[:40]!r} not one of {', '.join(READING_INDICATORS)}")
                try:
                    v = checked[(ind, value)] = check_reading(ind, value)
                except InputError as e:
                    raise LogFormatError(path, line, "value", str(e)) from None
            if ind == "weather" and room != OUTDOOR:
                raise LogFormatError(path, line, "room", f"weather is read in room {OUTDOOR!r}, not {room[:40]!r}")
            instant.append(i)
            wall.append(w)
            rooms.append(names.setdefault(room, room))
            inds.append(names.setdefault(ind, ind))
            values.append(names.setdefault(v, v))
    order, _, walls = _order(instant, wall)
    return SensorRows(walls, [rooms[i] for i in order], [inds[i] for i in order], [values[i] for i in order])


# ---------------------------------------------------------------- operations and the home log


def event_table(events: EventRows, sensors: SensorRows | None, start: datetime) -> EventTable:
    """Readings and actions as one ``EventTable`` by wall clock (readings first at equal times)."""
    s_wall = sensors.wall if sensors is not None else np.zeros(0, np.int64)
    n_s = len(s_wall)
    order = np.argsort(np.concatenate([s_wall, events.wall]), kind="stable")
    base = (start - _EPOCH).total_seconds()
    minute = (np.concatenate([s_wall, events.wall])[order] - base) / 60.0
    s_room = sensors.room if sensors is not None else []
    kind = ["weather" if r == OUTDOOR else "sensor" for r in s_room] + ["action"] * len(events)
    room = s_room + [a.room for a in events.action]
    device = [""] * n_s + [a.device for a in events.action]
    field_ = (sensors.indicator if sensors is not None else []) + [a.field for a in events.action]
    value = (sensors.value if sensors is not None else []) + [a.value for a in events.action]
    source = [""] * n_s + events.source
    table = EventTable(start)
    idx = order.tolist()
    table.minute = minute.tolist()
    for name, col in (("kind", kind), ("room", room), ("device", device), ("field", field_), ("value", value),
                      ("source", source)):
        setattr(table, name, [col[i] for i in idx])
    table.user = [""] * len(idx)
    table.logged = [True] * len(idx)
    return table


def group_operations(rows: EventRows, burst_s: int, env: Environment, home_id: str) -> list[Operation]:
    """Bursts of one source within ``burst_s`` seconds (of real time) of the burst's first row ->
    one multi-action operation at the first row's wall-clock time."""
    ops: list[Operation] = []
    start = 0

    def flush(lo: int, hi: int) -> None:
        acts: dict[tuple[str, str, str], Action] = {}
        for a in rows.action[lo:hi]:
            acts.pop((a.room, a.device, a.field), None)  # the later value wins, in its later position
            acts[(a.room, a.device, a.field)] = a
        actions = tuple(acts.values())
        t0 = _wall(rows.wall[lo])
        ops.append(Operation(t0, actions, env.at(t0, [a.room for a in actions]), describe(actions, 0), home_id, "",
                             rows.source[lo], True))

    instant = rows.instant.tolist()
    for i in range(1, len(rows)):
        if rows.source[i] != rows.source[start] or instant[i] - instant[start] > burst_s:
            flush(start, i)
            start = i
    flush(start, len(rows))
    return ops


def home_log(rows: EventRows, sensors: SensorRows | None, home_id: str, burst_s: int,
             entity_ids: Mapping[tuple[str, str], tuple[str, ...]] | None = None) -> HomeLog:
    """The one home's log from checked rows (any reader's: ``read_events``/``read_sensors``, or
    ``sim.dataset.ha``): operations are bursts (``group_operations``), the log starts at midnight of
    the first row's day. ``entity_ids``: (room, device) -> its real Home Assistant entities
    (``import-ha``), kept in the ``homes`` config's ``entities``."""
    first, last = int(rows.wall[0]), int(rows.wall[-1])
    if sensors is not None and len(sensors.wall):
        first, last = min(first, int(sensors.wall[0])), max(last, int(sensors.wall[-1]))
    first, last = _wall(first), _wall(last)
    start = datetime.combine(first.date(), datetime.min.time())
    events = event_table(rows, sensors, start)
    ops = group_operations(rows, burst_s, Environment(events, start), home_id)
    ids = entity_ids or {}
    devices = tuple(DeviceSpec(r, d, t, entity_ids=tuple(ids.get((r, d), ()))) for (r, d), t in rows.types.items())
    home = HomeSpec(home_id, 0, tuple(dict.fromkeys(d.room for d in devices)), devices, ("unknown",))
    return HomeLog(home, start, (last.date() - start.date()).days + 1, events, ops, [], None)


def to_home_log(cfg: ImportConfig, progress: Progress | None = None) -> HomeLog:
    rows = read_events(cfg.events, cfg.timezone, cfg.max_rows, progress)
    sensors = read_sensors(cfg.sensors, cfg.timezone, cfg.max_rows, progress) if cfg.sensors else None
    return home_log(rows, sensors, cfg.home_id, cfg.burst_s)


class ShardSink:
    """Writes the import's one shard as ``home_rows`` hands over its tables (``sink``): one parquet
    file per (config, split) with rows, with the options of ``sim.dataset.shards.write_atomic``,
    through a temp file moved into place by ``close`` (which then writes the shard's marker, as
    ``write_shard`` does); ``abort`` removes the temp files. Memory: one table at a time."""

    def __init__(self, root: Path, shard: Shard) -> None:
        self.root, self.shard = root, shard
        self.writers: dict[tuple[str, str], tuple[pq.ParquetWriter, Path, Path]] = {}
        self.rows: dict[str, int] = {}

    def __call__(self, key: tuple[str, str], table: pa.Table) -> None:
        config, split = key
        if not table.num_rows or split not in IMPORT_SPLITS.get(config, ()):
            return
        if key not in self.writers:
            path = shard_path(self.root, config, split, self.shard.index, self.shard.count)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
            self.writers[key] = (pq.ParquetWriter(tmp, SCHEMAS[config], compression=COMPRESSION, compression_level=3,
                                                  write_statistics=True, store_schema=True), tmp, path)
        self.writers[key][0].write_table(table, row_group_size=ROW_GROUP)
        self.rows[f"{config}/{split}"] = self.rows.get(f"{config}/{split}", 0) + table.num_rows

    def close(self) -> dict[str, int]:
        """Move every file into place, write the marker; rows per ``config/split`` (config order)."""
        keys = sorted(self.writers, key=lambda k: (list(SCHEMAS).index(k[0]), k[1]))
        files = []
        for key in keys:
            writer, tmp, path = self.writers[key]
            writer.close()
            os.replace(tmp, path)
            files.append(str(path.relative_to(self.root)))
        rows = {f"{c}/{s}": self.rows[f"{c}/{s}"] for c, s in keys}
        write_text_atomic(json.dumps({"files": files, "configs": list(dict.fromkeys(c for c, _ in keys)), "rows": rows},
                                     sort_keys=True), marker_path(self.root, self.shard))
        self.writers.clear()
        return rows

    def abort(self) -> None:
        for writer, tmp, _ in self.writers.values():
            writer.close()
            tmp.unlink(missing_ok=True)
        self.writers.clear()


#: The card's licence note of an imported log: the importer cannot know the owner's terms.
LICENSE_NOTE = ("`license: other`: this dataset was imported from someone's own log; the importer cannot know "
                "under which terms it may be shared. Its owner decides; set the licence before publishing it.")
#: The card's tags of an imported log (no ``synthetic``: the operations are real).
IMPORT_TAGS = ("smart-home", "iot", "recommendation", "real-log", "dpo", "devpiolt")


def test_cutoff(operations: list[Operation], test_days: int) -> datetime:
    """Midnight of the ``test_days``-th last day on which the log has an operation: the test split's
    first instant. Days without operations (away, a logging gap) are skipped, so ``test_days`` days
    of data are held out however gappy the log. ``ValueError`` unless more days than that have one."""
    days = sorted({o.time.date() for o in operations})
    if len(days) <= test_days:
        raise ValueError(f"test_days: the log has operations on {len(days)} day(s); need more than "
                         f"test_days={test_days} (the test split is the last test_days days with operations)")
    return datetime.combine(days[-test_days], datetime.min.time())


def write_import(log: HomeLog, out: str | Path, test_days: int, info: dict, seed: int = 0, sft_rate: float = 1.0,
                 dpo_rate: float = 1.0, progress: Progress | None = None) -> dict[str, int]:
    """Write ``out`` (data shards and card) from one imported home's log; returns rows per config/split.
    ``info``: the card's title, summary, settings, how and limits (``license``, ``tags`` and
    ``license_note`` default to an imported log's). Shared by ``import-log`` and ``import-ha``."""
    from sim.dataset.card import write_card

    cutoff = test_cutoff(log.operations, test_days)
    spec = RowSpec(cutoff=cutoff, seed=seed, sft_rate=sft_rate, dpo_rate=dpo_rate)
    asked = [o.time >= cutoff for o in log.operations if o.source in spec.sources]
    for split, n in (("train", asked.count(False)), ("test", asked.count(True))):
        if not n:
            period = f"before {cutoff:%Y-%m-%d}" if split == "train" else f"from {cutoff:%Y-%m-%d} on"
            raise ValueError(f"test_days: the log {period} holds no {', '.join(spec.sources)} operation, so the sft "
                             f"{split} split would be empty (test_days={test_days}: from {cutoff:%Y-%m-%d} on)")
    root = Path(out)
    (shard,) = plan_shards([0], [], 1)
    on_rows = (lambda done, total: progress("rows (operations)", done, total)) if progress else None
    # tables are written as they are made; only splits with rows get a file (the card declares what
    # exists, and `homepilot validate` wants every declared split non-empty)
    sink = ShardSink(root, shard)
    try:
        home_rows(log, spec, on_rows, sink)
        del log
        counts = sink.close()
    finally:
        sink.abort()
    write_card(root, None, {"license": "other", "license_note": LICENSE_NOTE, "tags": list(IMPORT_TAGS), **info})
    return counts


def main(cfg: ImportConfig, progress: Progress | None = None) -> dict[str, int]:
    """Write ``cfg.out`` (data shards and card) from the CSV log; returns rows per config/split.
    ``progress(stage, done, total)``: reading (MB of each file), then the rows (operations)."""
    log = to_home_log(cfg, progress)
    settings = {"source": "imported CSV event log", "events": Path(cfg.events).name,
                "sensors": Path(cfg.sensors).name if cfg.sensors else "-", "home id": cfg.home_id,
                "time zone": cfg.timezone, "burst seconds": cfg.burst_s, "test days": cfg.test_days, "seed": cfg.seed,
                "command": f"homepilot import-log {Path(cfg.events).name}"
                           + (f" --sensors {Path(cfg.sensors).name}" if cfg.sensors else "")
                           + (f" --timezone {cfg.timezone}" if cfg.timezone != "UTC" else "") + " --out DIR"}
    info = {"title": f"HomePilot import of {Path(cfg.events).name}",
            "summary": "A real home's event log in HomePilot's dataset format (operation records, pre-training, "
                       "SFT and DPO configs); there is no feedback config because no recommendations were logged.",
            "settings": settings,
            "how": "Imported with `homepilot import-log` (`sim.dataset.importer`): rows of one source within "
                   f"{cfg.burst_s} s form one operation; descriptions are template text (`sim.describe`); the last "
                   f"{cfg.test_days} day(s) with operations form the test split; DPO negatives follow the paper's rules.",
            "limits": "- One home, no unseen-home split, no logged feedback.\n- Users are unknown (empty).\n"
                      "- Descriptions are generated, not what the user said."}
    return write_import(log, cfg.out, cfg.test_days, info, cfg.seed, cfg.sft_rate, cfg.dpo_rate, progress)

"""``homepilot import-log``: a generic CSV event log of a real home -> the same dataset configs.

Events CSV (header required; extra columns are ignored)::

    timestamp,room,device,device_type,field,value[,source]
    2026-01-05T07:31:12,bedroom,curtain,curtain,action,open,app

- ``timestamp``: ISO 8601 (``2026-01-05T07:31:12`` or ``2026-01-05 07:31``); a UTC offset is
  dropped and the wall-clock time kept (logs are read in the home's local time);
- ``room``, ``device``: names without spaces or brackets (``living_room``, ``light_2``);
- ``device_type``, ``field``, ``value``: a catalogue type (``sim.catalog.DEVICE_TYPES``), one of
  its fields and a legal value (numbers in canonical spelling: ``26``, ``22.5``);
- ``source`` (optional): app | voice | physical | automation (default app).

Sensors CSV (optional)::

    timestamp,room,indicator,value
    2026-01-05T07:30:00,bedroom,temperature,21.5

``indicator`` is one of ``sim.catalog.INDICATORS`` or ``weather`` (room ``outdoor``); numeric
values are rounded to the canonical spelling.

Rows of the same source within ``burst_s`` seconds of a burst's first row become one
multi-action operation (a later value of the same field replaces the earlier one); its
environment is the latest readings of its rooms and ``outdoor``; its description comes from
``sim.describe``. The last ``test_days`` days form the ``test`` split. No feedback is logged, so
the ``feedback`` config is empty. A malformed row raises ``LogFormatError`` naming the file,
line and column.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sim.catalog import INDICATORS, OUTDOOR, WEATHER, CatalogError, device_type, format_value, validate
from sim.dataset.rows import Environment, RowSpec, home_rows
from sim.dataset.schema import CONFIGS
from sim.dataset.shards import plan_shards, write_shard
from sim.describe import describe
from sim.log import DeviceSpec, Event, HomeLog, HomeSpec
from sim.records import SOURCES, Action, Operation

EVENT_COLUMNS = ("timestamp", "room", "device", "device_type", "field", "value")
SENSOR_COLUMNS = ("timestamp", "room", "indicator", "value")
_NAME = re.compile(r"^[^\[\]<>\s]+$")


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
    test_days: int = 1  # last days of the log that form the test split
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
        if not self.home_id:
            self.home_id = re.sub(r"[^A-Za-z0-9_-]", "_", Path(self.events).stem)


def _rows(path: Path, required: tuple[str, ...]):
    """(line number, row dict) of a CSV; the header must hold ``required``."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for col in required:
            if col not in header:
                raise LogFormatError(path, 1, col, f"missing column; the header needs {', '.join(required)}")
        for row in reader:
            if None in row or any(v is None for v in row.values()):
                raise LogFormatError(path, reader.line_num, header[-1], f"expected {len(header)} fields")
            yield reader.line_num, {k: v.strip() for k, v in row.items()}


def _time(path: Path, line: int, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None, microsecond=0)
    except ValueError:
        raise LogFormatError(path, line, "timestamp", f"{text!r} is not an ISO 8601 time (2026-01-05T07:31:12)") from None


def _name(path: Path, line: int, column: str, text: str) -> str:
    if not _NAME.match(text):
        raise LogFormatError(path, line, column, f"{text!r} must be a non-empty name without spaces or brackets")
    return text


def read_events(path: str | Path) -> tuple[list[tuple[datetime, str, Action]], dict[tuple[str, str], str]]:
    """Action rows as (time, source, action), time-sorted (stable), and (room, device) -> type."""
    path = Path(path)
    out, types = [], {}
    for line, r in _rows(path, EVENT_COLUMNS):
        t = _time(path, line, r["timestamp"])
        room, device = _name(path, line, "room", r["room"]), _name(path, line, "device", r["device"])
        try:
            device_type(r["device_type"])
        except CatalogError as e:
            raise LogFormatError(path, line, "device_type", str(e)) from None
        if types.setdefault((room, device), r["device_type"]) != r["device_type"]:
            raise LogFormatError(path, line, "device_type", f"{room}/{device} was {types[(room, device)]!r} earlier")
        try:
            device_type(r["device_type"]).field(r["field"])
        except CatalogError as e:
            raise LogFormatError(path, line, "field", str(e)) from None
        try:
            validate(r["device_type"], r["field"], r["value"])
        except CatalogError as e:
            raise LogFormatError(path, line, "value", str(e)) from None
        source = r.get("source") or "app"
        if source not in SOURCES:
            raise LogFormatError(path, line, "source", f"{source!r} not one of {', '.join(SOURCES)}")
        out.append((t, source, Action(room, device, r["field"], r["value"])))
    if not out:
        raise LogFormatError(path, 2, "timestamp", "the log holds no rows")
    out.sort(key=lambda x: x[0])
    return out, types


def read_sensors(path: str | Path) -> list[Event]:
    path = Path(path)
    out = []
    allowed = (*INDICATORS, "weather")
    for line, r in _rows(path, SENSOR_COLUMNS):
        t = _time(path, line, r["timestamp"])
        room = _name(path, line, "room", r["room"])
        ind = r["indicator"]
        if ind not in allowed:
            raise LogFormatError(path, line, "indicator", f"{ind!r} not one of {', '.join(allowed)}")
        if ind == "weather":
            if r["value"] not in WEATHER:
                raise LogFormatError(path, line, "value", f"{r['value']!r} not one of {', '.join(WEATHER)}")
            value = r["value"]
        else:
            try:
                value = format_value(float(r["value"]))
            except ValueError:
                raise LogFormatError(path, line, "value", f"{r['value']!r} is not a number") from None
        out.append(Event(t, "weather" if room == OUTDOOR else "sensor", room, "", ind, value))
    out.sort(key=lambda e: e.time)
    return out


def group_operations(rows: list[tuple[datetime, str, Action]], burst_s: int, env: Environment,
                     home_id: str) -> list[Operation]:
    """Bursts of one source within ``burst_s`` of the burst's first row -> one multi-action operation."""
    ops: list[Operation] = []
    burst: list[tuple[datetime, str, Action]] = []

    def flush() -> None:
        if not burst:
            return
        acts: dict[tuple[str, str, str], Action] = {}
        for _, _, a in burst:
            acts.pop((a.room, a.device, a.field), None)  # the later value wins, in its later position
            acts[(a.room, a.device, a.field)] = a
        actions = tuple(acts.values())
        t0 = burst[0][0]
        rooms = [a.room for a in actions]
        ops.append(Operation(t0, actions, env.at(t0, rooms), describe(actions, 0), home_id, "", burst[0][1], True))
        burst.clear()

    for t, source, a in rows:
        if burst and (source != burst[0][1] or (t - burst[0][0]).total_seconds() > burst_s):
            flush()
        burst.append((t, source, a))
    flush()
    return ops


def to_home_log(cfg: ImportConfig) -> HomeLog:
    rows, types = read_events(cfg.events)
    sensors = read_sensors(cfg.sensors) if cfg.sensors else []
    first = min([rows[0][0], *(e.time for e in sensors[:1])])
    last = max([rows[-1][0], *(e.time for e in sensors[-1:])])
    start = datetime.combine(first.date(), datetime.min.time())
    ops = group_operations(rows, cfg.burst_s, Environment(sensors, start), cfg.home_id)
    devices = tuple(DeviceSpec(r, d, t) for (r, d), t in types.items())
    home = HomeSpec(cfg.home_id, 0, tuple(dict.fromkeys(d.room for d in devices)), devices, ("unknown",))
    actions = [Event(t, "action", a.room, a.device, a.field, a.value, s) for t, s, a in rows]
    events = sorted(sensors + actions, key=lambda e: e.time)
    return HomeLog(home, start, (last.date() - start.date()).days + 1, events, ops, [], None)


def main(cfg: ImportConfig) -> dict[str, int]:
    """Write ``cfg.out`` (data shards and card) from the CSV log; returns rows per config/split."""
    from sim.dataset.build import SPLITS_BY_GROUP
    from sim.dataset.card import write_card

    log = to_home_log(cfg)
    if log.days <= cfg.test_days:
        raise ValueError(f"test_days: the log spans {log.days} day(s); need more than test_days={cfg.test_days}")
    cutoff = log.start + timedelta(days=log.days - cfg.test_days)
    spec = RowSpec(cutoff=cutoff, seed=cfg.seed, sft_rate=cfg.sft_rate, dpo_rate=cfg.dpo_rate)
    root = Path(cfg.out)
    (shard,) = plan_shards([0], [], 1)
    tables = {k: [t] for k, t in home_rows(log, spec).items()}
    counts = write_shard(root, shard, tables, CONFIGS, SPLITS_BY_GROUP["seen"])
    settings = {"source": "imported CSV event log", "events": Path(cfg.events).name,
                "sensors": Path(cfg.sensors).name if cfg.sensors else "-", "home id": cfg.home_id,
                "burst seconds": cfg.burst_s, "test days": cfg.test_days, "seed": cfg.seed,
                "command": f"homepilot import-log {Path(cfg.events).name}"
                           + (f" --sensors {Path(cfg.sensors).name}" if cfg.sensors else "") + " --out DIR"}
    info = {"title": f"HomePilot import of {Path(cfg.events).name}",
            "summary": "A real home's event log in HomePilot's dataset format (operation records, pre-training, "
                       "SFT and DPO configs); feedback is empty because no recommendations were logged.",
            "settings": settings,
            "how": "Imported with `homepilot import-log` (`sim.dataset.importer`): rows of one source within "
                   f"{cfg.burst_s} s form one operation; descriptions are template text (`sim.describe`); the last "
                   f"{cfg.test_days} day(s) form the test split; DPO negatives follow the paper's rules.",
            "limits": "- One home, no unseen-home split, no logged feedback.\n- Users are unknown (empty).\n"
                      "- Descriptions are generated, not what the user said."}
    write_card(root, None, info)
    return counts

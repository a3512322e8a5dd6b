"""``homepilot import-ha``: a Home Assistant recorder database -> the same dataset configs.

Reads the recorder's SQLite file read-only (``sqlite3``, ``file:...?mode=ro``), recorder schema
``MIN_SCHEMA`` (41, HA 2023.4+ layout) or later: ``states`` rows point at ``states_meta.entity_id``
(``metadata_id``) and ``state_attributes.shared_attrs`` (``attributes_id``, JSON), carry float
``last_updated_ts`` seconds (UTC) and binary context ids. An older schema is refused
(``HAFormatError`` naming the version found).

Each state row of a supported entity is turned into the catalogue settings it shows; a setting
that differs from the entity's last known one is an action (the first state of an entity is its
starting point, not an operation; ``unknown``/``unavailable`` rows, e.g. around a restart, are
skipped and do not reset what is known). Domain -> catalogue type and fields (``DOMAINS``):

- ``light`` -> ``light``: state on/off -> ``power``; ``brightness`` 0-255 -> ``brightness`` percent
  (``round(b / 2.55)``, at least 1); ``color_temp_kelvin`` (or ``color_temp`` mireds) -> ``color_temp``
  on its 100 K grid;
- ``switch`` -> ``smart_plug`` (``power``);
- ``climate`` -> ``ac`` (``heater`` when its ``hvac_modes`` hold no ``cool``): state ``off`` ->
  ``power=off``, else ``power=on`` and the state as ``mode``; ``temperature`` -> ``target_temperature``;
  ``fan_mode`` -> ``fan_speed``;
- ``cover`` -> ``curtain``: ``current_position`` -> ``position``; without one, open/closed -> ``action``;
- ``fan`` -> ``fan``: on/off, ``percentage`` -> ``speed`` (10 % grid), ``oscillating`` -> ``oscillate``;
- ``lock`` -> ``lock``: locked/unlocked;
- ``media_player`` -> ``tv`` (``device_class`` tv) else ``speaker``: off/standby -> ``power=off``, other
  states ``power=on``; ``volume_level`` 0-1 -> ``volume`` percent; a speaker's playing/paused -> ``playback``;
- ``vacuum`` -> ``robot_vacuum``: cleaning/paused/returning|docked -> ``command``; ``fan_speed`` -> ``suction``;
- ``humidifier`` -> ``humidifier`` (``dehumidifier`` by device class): on/off, ``humidity`` -> ``target_humidity``;
- ``water_heater`` -> ``water_heater``: ``off`` -> ``power=off``, else ``on``; ``temperature`` -> ``target_temperature``.

A value outside the catalogue's range or values is skipped (counted), never clamped into it.
``sensor`` entities with ``device_class`` temperature (°F converted), humidity or illuminance and
``binary_sensor`` entities with ``device_class`` occupancy, motion or presence (on -> 1, off -> 0)
become environment readings. Every other entity is unsupported: listed (count per domain) and skipped.

Rooms: the ``rooms`` map (entity_id -> room, or -> {room, device, type}) wins. Otherwise from the
entity's object id: a catalogue room (``sim.catalog.ROOMS``, longest first) or ``outdoor`` at its start,
else its first ``_``-separated word, is the room; the rest is the device (``light.bedroom_ceiling`` ->
room ``bedroom``, device ``ceiling``; ``light.living_room`` -> ``living_room``/``light``). An object
id of one word and not in the map has no room: skipped and listed. Two entities that would share a
device name get ``<device>_<domain>``.

Each imported device keeps the entity it was read from in the ``homes`` config's ``entities``
(``sim.dataset.files.read_homes`` gives them back as ``DeviceSpec.entity_ids``): a recommendation is
exported as service calls on the real entities (``homepilot recommend --format ha``).

Source: a state written in a context with a parent (``context_parent_id_bin``: something -- an
automation or script -- triggered it) -> ``automation``; else one with a user
(``context_user_id_bin``: a person through the app or UI) -> ``app``; else ``physical`` (the device
reported a change nobody in HA asked for: a wall switch, a remote, the device itself).
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sim.catalog import OUTDOOR, ROOMS, CatalogError, device_type, format_value
from sim.dataset.checks import MAX_NAME, InputError, check_name, check_reading, check_time
from sim.dataset.importer import EventRows, Progress, SensorRows, _order, check_home, home_log, write_import
from sim.records import Action

MIN_SCHEMA = 41  # states_meta + *_ts floats + binary context ids
SKIP_STATES = frozenset({"unknown", "unavailable", "", "none"})
#: entity domain -> default catalogue type (``_settings`` knows the fields)
DOMAINS = {"light": "light", "switch": "smart_plug", "climate": "ac", "cover": "curtain", "fan": "fan",
           "lock": "lock", "media_player": "speaker", "vacuum": "robot_vacuum", "humidifier": "humidifier",
           "water_heater": "water_heater"}
SENSOR_CLASSES = {"sensor": ("temperature", "humidity", "illuminance"),
                  "binary_sensor": ("occupancy", "motion", "presence")}
_ROOM_NAMES = sorted((*ROOMS, OUTDOOR), key=len, reverse=True)
_EPOCH = datetime(1970, 1, 1)


class HAFormatError(ValueError):
    """The database is not a recorder database this importer reads (names the file and what is wrong)."""


@dataclass
class HAConfig:
    """Options of ``homepilot import-ha``."""

    db: str  # recorder SQLite file
    out: str  # dataset directory to write
    entities: tuple[str, ...] = ()  # glob patterns of entity ids to import (default: all)
    rooms: str | None = None  # YAML/JSON map entity_id -> room or {room, device, type}
    home_id: str = ""  # default: the database file's stem
    burst_s: int = 60
    test_days: int = 1  # the last days with operations form the test split (empty days are not counted)
    timezone: str = "UTC"
    seed: int = 0
    sft_rate: float = 1.0
    dpo_rate: float = 1.0

    def __post_init__(self) -> None:
        if not Path(self.db).is_file():
            raise ValueError(f"recorder database: no such file {self.db!r}")
        if self.rooms is not None and not Path(self.rooms).is_file():
            raise ValueError(f"rooms: no such file {self.rooms!r}")
        if self.burst_s < 0 or self.test_days < 1:
            raise ValueError(f"need burst_s >= 0 and test_days >= 1, got {self.burst_s}, {self.test_days}")
        self.home_id = check_home(self.home_id, self.db, self.timezone)


@dataclass
class HAImport:
    """What ``read_recorder`` found: rows for the pipeline and what it skipped."""

    events: EventRows
    sensors: SensorRows | None
    entities: dict[str, tuple[str, str, str]]  # imported entity_id -> (room, device, type or indicator)
    unsupported: dict[str, list[str]] = field(default_factory=dict)  # domain -> entity ids skipped
    skipped_values: Counter = field(default_factory=Counter)  # "type.field" -> values outside the catalogue

    def unsupported_line(self) -> str:
        """One line: skipped entities, count per domain (a few ids each)."""
        if not self.unsupported:
            return ""
        n = sum(len(v) for v in self.unsupported.values())
        parts = [f"{d}: {len(ids)} ({', '.join(ids[:3])}{', ...' if len(ids) > 3 else ''})"
                 for d, ids in sorted(self.unsupported.items())]
        return f"skipped {n} unsupported entit{'y' if n == 1 else 'ies'}: " + "; ".join(parts)


# ---------------------------------------------------------------- reading the database


def connect(path: str | Path) -> sqlite3.Connection:
    """Open read-only and check the schema version (>= ``MIN_SCHEMA``)."""
    path = Path(path)
    try:
        con = sqlite3.connect(f"file:{path.resolve().as_posix()}?mode=ro", uri=True)
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as e:
        raise HAFormatError(f"{path}: not an SQLite database ({e})") from None
    if "schema_changes" not in tables or "states" not in tables:
        con.close()
        raise HAFormatError(f"{path}: not a Home Assistant recorder database (no schema_changes/states table)")
    version = con.execute("SELECT MAX(schema_version) FROM schema_changes").fetchone()[0]
    if version is None or int(version) < MIN_SCHEMA or not {"states_meta", "state_attributes"} <= tables:
        con.close()
        raise HAFormatError(f"{path}: recorder schema version {version} is too old; import-ha reads schema "
                            f"{MIN_SCHEMA} or later (Home Assistant 2023.4+): open it once with a current "
                            "Home Assistant to migrate it")
    return con


def _room_device(entity_id: str, rooms: dict) -> tuple[str, str, str | None] | None:
    """(room, device, type override or None) of an entity, or None when no room can be named."""
    domain, _, obj = entity_id.partition(".")
    given = rooms.get(entity_id)
    if isinstance(given, dict):
        room = str(given.get("room", ""))
        device = str(given.get("device") or obj)
        return (room, device, given.get("type")) if room else None
    if isinstance(given, str) and given:
        rest = obj[len(given) + 1:] if obj.startswith(given + "_") else obj
        return given, rest or domain, None
    for room in _ROOM_NAMES:
        if obj == room or obj.startswith(room + "_"):
            return room, obj[len(room) + 1:] or domain, None
    room, sep, rest = obj.partition("_")
    return (room, rest, None) if sep and rest else None


def _num(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v == v and abs(v) != float("inf") else None


def _grid(x: float | None, step: float) -> str | None:
    return None if x is None else format_value(round(x / step) * step)


def _settings(type_: str, domain: str, state: str, attrs: dict) -> list[tuple[str, str | None]]:
    """The catalogue (field, value) pairs a state shows (value None: the attribute is absent)."""
    out: list[tuple[str, str | None]] = []
    if type_ == "light":
        out.append(("power", state if state in ("on", "off") else None))
        if state == "on":
            b = _num(attrs.get("brightness"))
            out.append(("brightness", None if b is None else format_value(max(1, round(b / 2.55)))))
            k = _num(attrs.get("color_temp_kelvin"))
            if k is None and _num(attrs.get("color_temp")):
                k = 1e6 / _num(attrs.get("color_temp"))  # mireds
            out.append(("color_temp", _grid(k, 100)))
    elif type_ in ("smart_plug", "wall_switch"):
        out.append(("power", state if state in ("on", "off") else None))
    elif domain == "climate":
        out.append(("power", "off" if state == "off" else "on"))
        if state != "off":
            out += [("mode", state), ("target_temperature", _grid(_num(attrs.get("temperature")), 1))]
            fan = attrs.get("fan_mode")
            out.append(("fan_speed", str(fan) if fan is not None else None))
    elif type_ == "curtain":
        pos = _num(attrs.get("current_position"))
        if pos is not None:
            out.append(("position", _grid(pos, 1)))
        else:
            out.append(("action", {"open": "open", "closed": "close"}.get(state)))
    elif type_ == "fan":
        out.append(("power", state if state in ("on", "off") else None))
        if state == "on":
            out.append(("speed", _grid(_num(attrs.get("percentage")), 10)))
            osc = attrs.get("oscillating")
            out.append(("oscillate", None if osc is None else ("on" if osc else "off")))
    elif type_ == "lock":
        out.append(("lock", state if state in ("locked", "unlocked") else None))
    elif type_ in ("tv", "speaker"):
        off = state in ("off", "standby")
        out.append(("power", "off" if off else "on"))
        if not off:
            v = _num(attrs.get("volume_level"))
            out.append(("volume", None if v is None else format_value(round(v * 100))))
            if type_ == "speaker":
                out.append(("playback", {"playing": "play", "paused": "pause"}.get(state)))
    elif type_ == "robot_vacuum":
        out.append(("command", {"cleaning": "start", "paused": "pause", "returning": "return_to_base",
                                "docked": "return_to_base"}.get(state)))
        fan = attrs.get("fan_speed")
        out.append(("suction", str(fan).lower() if fan is not None else None))
    elif type_ in ("humidifier", "dehumidifier"):
        out.append(("power", state if state in ("on", "off") else None))
        if state == "on":
            out.append(("target_humidity", _grid(_num(attrs.get("humidity")), 5)))
    elif type_ == "water_heater":
        out.append(("power", "off" if state == "off" else "on"))
        if state != "off":
            out.append(("target_temperature", _grid(_num(attrs.get("temperature")), 1)))
    return out


def _reading(indicator: str, state: str, attrs: dict) -> str | None:
    if indicator in ("occupancy", "motion", "presence"):
        return {"on": "1", "off": "0"}.get(state)
    x = _num(state)
    if x is None:
        return None
    if indicator == "temperature" and str(attrs.get("unit_of_measurement", "")).upper() in ("°F", "F"):
        x = (x - 32) * 5 / 9
    try:
        return check_reading(indicator, format_value(x))
    except InputError:
        return None


def _rows(con: sqlite3.Connection) -> Iterable[tuple[str, str, float, str | None, object, object]]:
    """(entity_id, state, last_updated_ts, shared_attrs, context_user_id_bin, context_parent_id_bin) by time."""
    return con.execute(
        "SELECT m.entity_id, s.state, s.last_updated_ts, a.shared_attrs, s.context_user_id_bin, "
        "s.context_parent_id_bin FROM states s JOIN states_meta m ON s.metadata_id = m.metadata_id "
        "LEFT JOIN state_attributes a ON s.attributes_id = a.attributes_id "
        "WHERE s.last_updated_ts IS NOT NULL ORDER BY s.last_updated_ts, s.state_id")


def read_recorder(cfg: HAConfig) -> HAImport:
    """Every supported entity's actions and readings (see the module docstring), in instant order."""
    rooms: dict = {}
    if cfg.rooms:
        import yaml

        try:
            rooms = yaml.safe_load(Path(cfg.rooms).read_text(encoding="utf-8")) or {}  # JSON is YAML
        except yaml.YAMLError as e:
            raise ValueError(f"rooms: {cfg.rooms}: not YAML/JSON ({str(e).splitlines()[0]})") from None
        if not isinstance(rooms, dict):
            raise ValueError(f"rooms: {cfg.rooms}: need a map entity_id -> room (or -> {{room, device, type}})")
    zone = ZoneInfo(cfg.timezone)
    con = connect(cfg.db)
    try:
        ids = [r[0] for r in con.execute("SELECT entity_id FROM states_meta ORDER BY metadata_id")]
        attrs_cache: dict[str, dict] = {}
        # entity -> (room, device, type, domain) for devices, (room, indicator) for sensors
        devices: dict[str, tuple[str, str, str, str]] = {}
        sensors: dict[str, tuple[str, str]] = {}
        unsupported: dict[str, list[str]] = {}
        taken: dict[tuple[str, str], str] = {}
        pending: dict[str, tuple[str, str, str | None]] = {}  # sensors and devices wait for their class
        for eid in ids:
            if cfg.entities and not any(fnmatch.fnmatchcase(eid, p) for p in cfg.entities):
                continue
            domain = eid.partition(".")[0]
            if domain not in DOMAINS and domain not in SENSOR_CLASSES:
                unsupported.setdefault(domain, []).append(eid)
                continue
            where = _room_device(eid, rooms)
            if where is None:
                unsupported.setdefault(domain, []).append(eid)
                continue
            try:
                check_name(where[0])
                check_name(where[1])
            except InputError:
                unsupported.setdefault(domain, []).append(eid)
                continue
            pending[eid] = where
        # the device class (sensors, media players, humidifiers) and hvac modes are attributes:
        # decide each pending entity's type from its latest attributes
        latest = {}
        for eid, shared in con.execute(
                "SELECT m.entity_id, a.shared_attrs FROM states s JOIN states_meta m ON s.metadata_id = m.metadata_id "
                "JOIN state_attributes a ON s.attributes_id = a.attributes_id ORDER BY s.last_updated_ts"):
            if eid in pending and shared:
                latest[eid] = shared
        for eid, (room, device, override) in pending.items():
            domain = eid.partition(".")[0]
            attrs = _attrs(latest.get(eid), attrs_cache)
            cls = str(attrs.get("device_class", ""))
            if domain in SENSOR_CLASSES:
                if cls in SENSOR_CLASSES[domain]:
                    sensors[eid] = (room, "occupancy" if domain == "binary_sensor" else cls)
                else:
                    unsupported.setdefault(domain, []).append(eid)
                continue
            type_ = override or DOMAINS[domain]
            if override is None:
                if domain == "climate" and "cool" not in (attrs.get("hvac_modes") or ["cool"]):
                    type_ = "heater"
                elif domain == "media_player" and cls == "tv":
                    type_ = "tv"
                elif domain == "humidifier" and cls == "dehumidifier":
                    type_ = "dehumidifier"
            try:
                device_type(type_)
            except CatalogError as e:
                raise ValueError(f"rooms: {eid}: {e}") from None
            if (room, device) in taken:
                device = f"{device}_{domain}"[:MAX_NAME]
                if (room, device) in taken:
                    unsupported.setdefault(domain, []).append(eid)
                    continue
            taken[(room, device)] = eid
            devices[eid] = (room, device, type_, domain)

        known: dict[tuple[str, str], str] = {}  # (entity, field) -> last known value
        seen: set[str] = set()
        skipped: Counter = Counter()
        actions: dict[tuple[str, str, str], Action] = {}
        instant, wall, sources, acts = array("q"), array("q"), [], []
        types: dict[tuple[str, str], str] = {}
        s_instant, s_wall, s_room, s_ind, s_val = array("q"), array("q"), [], [], []
        last_reading: dict[str, str] = {}
        for eid, state, ts, shared, user, parent in _rows(con):
            if eid not in devices and eid not in sensors:
                continue
            state = (state or "").strip()
            if state.lower() in SKIP_STATES:
                continue
            t = datetime.fromtimestamp(ts, zone).replace(tzinfo=None, microsecond=0)
            try:
                check_time(t)
            except InputError as e:
                raise HAFormatError(f"{cfg.db}: {eid}: last_updated_ts {ts}: {e}") from None
            wall_s = int((t - _EPOCH).total_seconds())
            attrs = _attrs(shared, attrs_cache)
            if eid in sensors:
                room, ind = sensors[eid]
                v = _reading(ind, state, attrs)
                if v is not None and last_reading.get(eid) != v:
                    last_reading[eid] = v
                    s_instant.append(int(ts))
                    s_wall.append(wall_s)
                    s_room.append(room)
                    s_ind.append(ind)
                    s_val.append(v)
                continue
            room, device, type_, domain = devices[eid]
            dt = device_type(type_)
            first = eid not in seen
            seen.add(eid)
            source = "automation" if parent else "app" if user else "physical"
            for fname, value in _settings(type_, domain, state, attrs):
                if value is None or fname not in dt.fields:
                    continue
                if not dt.fields[fname].allows(value):
                    skipped[f"{type_}.{fname}"] += 1
                    continue
                if known.get((eid, fname)) == value:
                    continue
                known[(eid, fname)] = value
                if first:
                    continue  # the starting state, not an operation
                a = actions.get((eid, fname, value))
                if a is None:
                    a = actions[(eid, fname, value)] = Action(room, device, fname, value)
                types.setdefault((room, device), type_)
                instant.append(int(ts))
                wall.append(wall_s)
                sources.append(source)
                acts.append(a)
    finally:
        con.close()
    if not acts:
        raise HAFormatError(f"{cfg.db}: no state change of a supported entity to import"
                            + (f" (entities matching {', '.join(cfg.entities)})" if cfg.entities else ""))
    order, inst, walls = _order(instant, wall)
    events = EventRows(inst, walls, [sources[i] for i in order], [acts[i] for i in order], types)
    sensor_rows = None
    if s_val:
        s_order, _, s_walls = _order(s_instant, s_wall)
        sensor_rows = SensorRows(s_walls, [s_room[i] for i in s_order], [s_ind[i] for i in s_order],
                                 [s_val[i] for i in s_order])
    entities = {e: (r, d, t) for e, (r, d, t, _) in devices.items()}
    entities.update({e: (r, "", i) for e, (r, i) in sensors.items()})
    return HAImport(events, sensor_rows, entities, unsupported, skipped)


def _attrs(shared: str | None, cache: dict[str, dict]) -> dict:
    if not shared:
        return {}
    got = cache.get(shared)
    if got is None:
        try:
            got = json.loads(shared)
        except ValueError:
            got = {}
        cache[shared] = got = got if isinstance(got, dict) else {}
    return got


def main(cfg: HAConfig, progress: Progress | None = None) -> tuple[dict[str, int], HAImport]:
    """Write ``cfg.out`` from the recorder database; (rows per config/split, what was read and skipped)."""
    got = read_recorder(cfg)
    entity_ids = {(room, device): (eid,) for eid, (room, device, _) in got.entities.items() if device}
    log = home_log(got.events, got.sensors, cfg.home_id, cfg.burst_s, entity_ids)
    name = Path(cfg.db).name
    settings = {"source": "Home Assistant recorder database", "database": name, "home id": cfg.home_id,
                "entities": " ".join(cfg.entities) or "all", "rooms": Path(cfg.rooms).name if cfg.rooms else "-",
                "time zone": cfg.timezone, "burst seconds": cfg.burst_s, "test days": cfg.test_days, "seed": cfg.seed,
                "command": f"homepilot import-ha {name}" + (f" --rooms {Path(cfg.rooms).name}" if cfg.rooms else "")
                           + (f" --timezone {cfg.timezone}" if cfg.timezone != "UTC" else "") + " --out DIR"}
    skipped = got.unsupported_line() or "no entity was skipped"
    info = {"title": f"HomePilot import of {name}",
            "summary": "A real home's Home Assistant history in HomePilot's dataset format (operation records, "
                       "pre-training, SFT and DPO configs); there is no feedback config because no recommendations "
                       "were logged.",
            "settings": settings,
            "how": "Imported with `homepilot import-ha` (`sim.dataset.ha`): each state change of a supported entity "
                   "becomes the catalogue settings it changed; source from the state's context (parent -> automation, "
                   f"user -> app, else physical); changes of one source within {cfg.burst_s} s form one operation; "
                   f"descriptions are template text (`sim.describe`); the last {cfg.test_days} day(s) with operations "
                   "form the test split; DPO negatives follow the paper's rules.",
            "limits": "- One home, no unseen-home split, no logged feedback.\n- Users are unknown (empty).\n"
                      "- Descriptions are generated, not what the user said.\n"
                      "- Rooms come from entity names or the given map, not HA areas.\n"
                      f"- {skipped}."}
    counts = write_import(log, cfg.out, cfg.test_days, info, cfg.seed, cfg.sft_rate, cfg.dpo_rate, progress)
    return counts, got

"""``homepilot import-ha``: a Home Assistant recorder database (current schema) becomes the dataset configs."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.dataset.ha import HAConfig, HAFormatError, _room_device, read_recorder
from sim.dataset.validate import validate_dir
from sim.records import Action

# The recorder's tables as Home Assistant (schema 48, HA 2025.x) creates them in SQLite; the legacy
# text columns (entity_id, attributes, last_updated, context_id...) are CHAR(0) and stay NULL.
SCHEMA = """
CREATE TABLE schema_changes (change_id INTEGER NOT NULL PRIMARY KEY, schema_version INTEGER, changed DATETIME NOT NULL);
CREATE TABLE recorder_runs (run_id INTEGER NOT NULL PRIMARY KEY, start DATETIME NOT NULL, "end" DATETIME,
  closed_incorrect BOOLEAN NOT NULL, created DATETIME NOT NULL);
CREATE TABLE event_types (event_type_id INTEGER NOT NULL PRIMARY KEY, event_type VARCHAR(64));
CREATE TABLE event_data (data_id INTEGER NOT NULL PRIMARY KEY, hash BIGINT, shared_data TEXT);
CREATE TABLE events (event_id INTEGER NOT NULL PRIMARY KEY, event_type CHAR(0), event_data CHAR(0), origin CHAR(0),
  origin_idx SMALLINT, time_fired CHAR(0), time_fired_ts FLOAT, context_id CHAR(0), context_user_id CHAR(0),
  context_parent_id CHAR(0), data_id INTEGER, context_id_bin BLOB, context_user_id_bin BLOB,
  context_parent_id_bin BLOB, event_type_id INTEGER);
CREATE TABLE states_meta (metadata_id INTEGER NOT NULL PRIMARY KEY, entity_id VARCHAR(255));
CREATE TABLE state_attributes (attributes_id INTEGER NOT NULL PRIMARY KEY, hash BIGINT, shared_attrs TEXT);
CREATE TABLE states (state_id INTEGER NOT NULL PRIMARY KEY, entity_id CHAR(0), state VARCHAR(255), attributes CHAR(0),
  event_id SMALLINT, last_changed CHAR(0), last_changed_ts FLOAT, last_reported_ts FLOAT, last_updated CHAR(0),
  last_updated_ts FLOAT, old_state_id INTEGER REFERENCES states (state_id), attributes_id INTEGER
  REFERENCES state_attributes (attributes_id), context_id CHAR(0), context_user_id CHAR(0),
  context_parent_id CHAR(0), origin_idx SMALLINT, context_id_bin BLOB, context_user_id_bin BLOB,
  context_parent_id_bin BLOB, metadata_id INTEGER REFERENCES states_meta (metadata_id));
CREATE UNIQUE INDEX ix_states_meta_entity_id ON states_meta (entity_id);
CREATE INDEX ix_states_metadata_id_last_updated_ts ON states (metadata_id, last_updated_ts);
"""
START = datetime(2026, 1, 5, tzinfo=timezone.utc)
DAYS = 30
USER = bytes.fromhex("9f3c2a1b0c4d4e5f8a7b6c5d4e3f2a1b")  # a person's user id (16 bytes)
LIGHT = {"supported_color_modes": ["color_temp", "brightness"], "friendly_name": "Bedroom ceiling"}
ATTRS = {
    "light.bedroom_ceiling": LIGHT,
    "light.living_room_lamp": {"supported_color_modes": ["brightness"], "friendly_name": "Lamp"},
    "climate.living_room_ac": {"hvac_modes": ["off", "cool", "heat"], "min_temp": 16, "max_temp": 30},
    "cover.bedroom_curtain": {"device_class": "curtain"},
    "lock.hallway_front_door": {},
    "media_player.living_room_speaker": {"device_class": "speaker"},
    "sensor.bedroom_temperature": {"device_class": "temperature", "unit_of_measurement": "°C"},
    "sensor.outdoor_temperature": {"device_class": "temperature", "unit_of_measurement": "°F"},
    "binary_sensor.living_room_motion": {"device_class": "motion"},
    "sensor.phone_battery": {"device_class": "battery", "unit_of_measurement": "%"},
    "weather.home": {"temperature": 5},
    "input_boolean.guest_mode": {},
    "light.lamp": {},  # one word: no room
}


class Recorder:
    """Writes states the way the recorder does (one states_meta row per entity, deduplicated attributes)."""

    def __init__(self, path: Path, version: int = 48) -> None:
        self.con = sqlite3.connect(path)
        self.con.executescript(SCHEMA)
        self.con.execute("INSERT INTO schema_changes (schema_version, changed) VALUES (?, ?)", (version, "2026-01-01"))
        self.meta: dict[str, int] = {}
        self.attrs: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.n = 0

    def state(self, entity: str, t: datetime, state: str, extra: dict | None = None, cause: str = "physical") -> None:
        if entity not in self.meta:
            self.meta[entity] = self.con.execute("INSERT INTO states_meta (entity_id) VALUES (?)", (entity,)).lastrowid
        shared = json.dumps({**ATTRS[entity], **(extra or {})}, separators=(",", ":"))
        if shared not in self.attrs:
            h = int.from_bytes(hashlib.blake2b(shared.encode(), digest_size=4).digest(), "little")
            self.attrs[shared] = self.con.execute("INSERT INTO state_attributes (hash, shared_attrs) VALUES (?, ?)",
                                                  (h, shared)).lastrowid
        self.n += 1
        ctx = self.n.to_bytes(16, "big")
        user = USER if cause == "user" else None
        parent = (self.n + 10**6).to_bytes(16, "big") if cause == "automation" else None
        ts = t.timestamp()
        self.last[entity] = self.con.execute(
            "INSERT INTO states (state, last_changed_ts, last_updated_ts, old_state_id, attributes_id, origin_idx, "
            "context_id_bin, context_user_id_bin, context_parent_id_bin, metadata_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (state, None, ts, self.last.get(entity), self.attrs[shared], 0, ctx, user, parent, self.meta[entity])).lastrowid

    def close(self) -> None:
        self.con.commit()
        self.con.close()


def make_recorder(path: Path, days: int = DAYS) -> Path:
    """A month of one home: two lights, an AC, a curtain, a lock, a speaker, sensors, an HA restart,
    user-, automation- and device-caused changes, and entities the catalogue does not have."""
    r = Recorder(path)
    at = lambda d, h, m=0, s=0: START + timedelta(days=d, hours=h, minutes=m, seconds=s)  # noqa: E731
    for e, st in (("light.bedroom_ceiling", "off"), ("light.living_room_lamp", "off"), ("climate.living_room_ac", "off"),
                  ("cover.bedroom_curtain", "closed"), ("lock.hallway_front_door", "unlocked"),
                  ("media_player.living_room_speaker", "off"), ("weather.home", "cloudy"),
                  ("input_boolean.guest_mode", "off"), ("light.lamp", "off"), ("sensor.phone_battery", "80")):
        extra = {"current_position": 0} if e.startswith("cover") else None
        r.state(e, at(0, 0), st, extra)
    for d in range(days):
        if d == 14:  # HA restarts at 03:00: everything unavailable, then back as it was -- no operation
            for e in ("light.bedroom_ceiling", "lock.hallway_front_door", "climate.living_room_ac"):
                r.state(e, at(d, 3), "unavailable")
            r.state("light.bedroom_ceiling", at(d, 3, 1), "off")
            r.state("lock.hallway_front_door", at(d, 3, 1), "unlocked")
            r.state("climate.living_room_ac", at(d, 3, 1), "off")
        for h in range(0, 24, 3):
            r.state("sensor.bedroom_temperature", at(d, h), f"{19 + (h % 6) / 4:.2f}")
            r.state("sensor.outdoor_temperature", at(d, h), f"{41 + h / 2:.1f}")
        r.state("light.bedroom_ceiling", at(d, 7), "on", {"brightness": 255, "color_mode": "brightness"}, "user")
        r.state("cover.bedroom_curtain", at(d, 7, 5), "open", {"current_position": 100}, "user")
        r.state("light.bedroom_ceiling", at(d, 7, 30), "on", {"brightness": 128, "color_mode": "brightness"})
        r.state("lock.hallway_front_door", at(d, 8, 30), "locked")
        if d % 2 == 0:
            r.state("climate.living_room_ac", at(d, 13), "cool", {"temperature": 24, "current_temperature": 27}, "user")
            r.state("climate.living_room_ac", at(d, 17), "off", {"temperature": 24}, "automation")
        r.state("lock.hallway_front_door", at(d, 18), "unlocked", None, "user")
        r.state("binary_sensor.living_room_motion", at(d, 18), "on")
        r.state("light.living_room_lamp", at(d, 18, 0, 20), "on", {"brightness": 102})
        r.state("media_player.living_room_speaker", at(d, 19), "playing", {"volume_level": 0.3}, "user")
        r.state("media_player.living_room_speaker", at(d, 21), "paused", {"volume_level": 0.3}, "user")
        r.state("cover.bedroom_curtain", at(d, 21, 0, 30), "closed", {"current_position": 0}, "automation")
        r.state("light.living_room_lamp", at(d, 22, 30), "off", None, "user")
        r.state("binary_sensor.living_room_motion", at(d, 23), "off")
        r.state("light.bedroom_ceiling", at(d, 23), "off", None, "automation")
        r.state("weather.home", at(d, 12), "sunny" if d % 3 else "rainy")
        r.state("input_boolean.guest_mode", at(d, 20), "on" if d % 7 == 5 else "off", None, "user")
        r.state("light.lamp", at(d, 20), "on", {"brightness": 50}, "user")
    r.close()
    return path


@pytest.fixture(scope="module")
def recorder(tmp_path_factory) -> Path:
    return make_recorder(tmp_path_factory.mktemp("ha") / "home-assistant_v2.db")


def day(got, d: int) -> list[tuple[str, str, tuple[Action, ...]]]:
    """(HH:MM:SS, source, actions) of each event row on day ``d``, grouped by time and source."""
    out: list = []
    base = int((START.replace(tzinfo=None) + timedelta(days=d) - datetime(1970, 1, 1)).total_seconds())
    for w, src, a in zip(got.events.wall.tolist(), got.events.source, got.events.action, strict=True):
        if base <= w < base + 86400:
            t = f"{(w - base) // 3600:02d}:{(w - base) // 60 % 60:02d}:{(w - base) % 60:02d}"
            if out and out[-1][:2] == (t, src):
                out[-1] = (t, src, (*out[-1][2], a))
            else:
                out.append((t, src, (a,)))
    return out


def test_a_day_of_state_changes_becomes_these_actions_row_by_row(recorder, tmp_path):
    got = read_recorder(HAConfig(str(recorder), str(tmp_path / "D")))
    A = Action
    assert day(got, 0) == [
        # user in the app turns the light on at brightness 255 -> 100 %
        ("07:00:00", "app", (A("bedroom", "ceiling", "power", "on"), A("bedroom", "ceiling", "brightness", "100"))),
        ("07:05:00", "app", (A("bedroom", "curtain", "position", "100"),)),
        ("07:30:00", "physical", (A("bedroom", "ceiling", "brightness", "50"),)),  # 128 / 2.55 = 50.2
        ("08:30:00", "physical", (A("hallway", "front_door", "lock", "locked"),)),
        ("13:00:00", "app", (A("living_room", "ac", "power", "on"), A("living_room", "ac", "mode", "cool"),
                             A("living_room", "ac", "target_temperature", "24"))),
        ("17:00:00", "automation", (A("living_room", "ac", "power", "off"),)),  # context with a parent
        ("18:00:00", "app", (A("hallway", "front_door", "lock", "unlocked"),)),  # context with a user
        ("18:00:20", "physical", (A("living_room", "lamp", "power", "on"), A("living_room", "lamp", "brightness", "40"))),
        # volume_level 0.3 -> 30 %
        ("19:00:00", "app", (A("living_room", "speaker", "power", "on"), A("living_room", "speaker", "volume", "30"),
                             A("living_room", "speaker", "playback", "play"))),
        ("21:00:00", "app", (A("living_room", "speaker", "playback", "pause"),)),
        ("21:00:30", "automation", (A("bedroom", "curtain", "position", "0"),)),
        ("22:30:00", "app", (A("living_room", "lamp", "power", "off"),)),
        ("23:00:00", "automation", (A("bedroom", "ceiling", "power", "off"),)),
    ]
    # day 2: the light's brightness was last 50, so 255 is a change again; no AC on odd days
    assert day(got, 1)[0] == ("07:00:00", "app", (A("bedroom", "ceiling", "power", "on"),
                                                  A("bedroom", "ceiling", "brightness", "100")))
    assert not any(a.device == "ac" for _, _, acts in day(got, 1) for a in acts)
    # the restart on day 15 (unavailable, then back) is not an operation: the day starts at 07:00
    assert day(got, 14)[0][0] == "07:00:00"
    assert got.unsupported == {"input_boolean": ["input_boolean.guest_mode"], "light": ["light.lamp"],
                               "sensor": ["sensor.phone_battery"], "weather": ["weather.home"]}
    assert got.unsupported_line().startswith("skipped 4 unsupported entities: input_boolean: 1 (input_boolean.guest_mode)")
    assert got.entities["light.bedroom_ceiling"] == ("bedroom", "ceiling", "light")
    assert got.entities["climate.living_room_ac"] == ("living_room", "ac", "ac")
    assert got.events.types[("living_room", "speaker")] == "speaker"
    # readings: temperature as read (°F converted), motion as occupancy 1/0, only changes kept
    s = got.sensors
    first = [(r, i, v) for r, i, v in zip(s.room, s.indicator, s.value, strict=True)][:4]
    assert first == [("bedroom", "temperature", "19"), ("outdoor", "temperature", "5"),  # 41 °F
                     ("bedroom", "temperature", "19.8"), ("outdoor", "temperature", "5.8")]  # 19.75; 42.5 °F
    assert ("living_room", "occupancy", "1") in zip(s.room, s.indicator, s.value, strict=True)


def test_room_rule_map_and_entity_filter(recorder, tmp_path):
    assert _room_device("light.bedroom_ceiling", {}) == ("bedroom", "ceiling", None)
    assert _room_device("light.living_room", {}) == ("living_room", "light", None)
    assert _room_device("light.office_desk_lamp", {}) == ("office", "desk_lamp", None)
    assert _room_device("light.lamp", {}) is None
    rooms = tmp_path / "rooms.yaml"
    rooms.write_text("light.lamp: study\nclimate.living_room_ac: {room: bedroom, device: heater, type: heater}\n")
    got = read_recorder(HAConfig(str(recorder), str(tmp_path / "D"), entities=("light.*", "climate.*"), rooms=str(rooms)))
    assert got.entities == {"light.bedroom_ceiling": ("bedroom", "ceiling", "light"),
                            "light.living_room_lamp": ("living_room", "lamp", "light"),
                            "climate.living_room_ac": ("bedroom", "heater", "heater"), "light.lamp": ("study", "lamp", "light")}
    assert got.unsupported == {} and got.sensors is None
    # a heater has no mode field: the AC's cool mode is not forced onto it
    assert has_action(got, Action("bedroom", "heater", "target_temperature", "24")) and not has_action(got, Action("bedroom", "heater", "mode", "cool"))


def has_action(got, a: Action) -> bool:
    return a in got.events.action


def test_an_old_recorder_schema_is_refused_naming_the_version(tmp_path):
    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript("CREATE TABLE schema_changes (change_id INTEGER PRIMARY KEY, schema_version INTEGER, changed DATETIME);"
                      "CREATE TABLE states (state_id INTEGER PRIMARY KEY, entity_id VARCHAR(255), state VARCHAR(255), "
                      "attributes TEXT, last_changed DATETIME, last_updated DATETIME);"
                      "INSERT INTO schema_changes (schema_version, changed) VALUES (30, '2022-05-01');")
    con.close()
    before = db.read_bytes()
    with pytest.raises(HAFormatError, match="recorder schema version 30 is too old; import-ha reads schema 41 or later"):
        read_recorder(HAConfig(str(db), str(tmp_path / "D")))
    r = CliRunner().invoke(app, ["import-ha", str(db), "--out", str(tmp_path / "D")])
    assert r.exit_code == 1 and "schema version 30 is too old" in r.output and len(r.output.strip().splitlines()) == 1
    assert db.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["old.db"]  # read-only


def test_import_ha_then_validate_exit_0_and_card_is_a_real_logs(recorder, tmp_path):
    out = tmp_path / "D"
    r = CliRunner().invoke(app, ["import-ha", str(recorder), "--out", str(out), "--test-days", "3"])
    assert r.exit_code == 0, r.output
    assert "skipped 4 unsupported entities" in r.output and "sft/test:" in r.output
    v = CliRunner().invoke(app, ["validate", str(out)])
    assert v.exit_code == 0, v.output
    assert validate_dir(out).files > 0
    ops = pq.read_table(out / "data" / "operations" / "train-00000-of-00001.parquet").to_pylist()
    assert ops[0]["source"] == "app" and ops[0]["n_actions"] == 2 and ops[0]["time"] == datetime(2026, 1, 5, 7)
    assert {o["source"] for o in ops} == {"app", "physical", "automation"}
    card = (out / "README.md").read_text()
    front = card.split("\n---", 1)[0]
    assert "license: other" in front and "synthetic" not in front and "cannot know" in card
    assert "homepilot import-ha home-assistant_v2.db --out DIR" in card


def test_each_imported_device_keeps_its_entity_id(recorder, tmp_path):
    """The homes config records the entity each device was read from (what `recommend --format ha` targets)."""
    from sim.dataset.files import read_homes

    out = tmp_path / "D"
    r = CliRunner().invoke(app, ["import-ha", str(recorder), "--out", str(out), "--test-days", "3"])
    assert r.exit_code == 0, r.output
    row = pq.read_table(out / "data" / "homes" / "train-00000-of-00001.parquet").to_pylist()[0]
    assert sorted((e["room"], e["device"], e["entity_id"]) for e in row["entities"]) == [
        ("bedroom", "ceiling", "light.bedroom_ceiling"), ("bedroom", "curtain", "cover.bedroom_curtain"),
        ("hallway", "front_door", "lock.hallway_front_door"), ("living_room", "ac", "climate.living_room_ac"),
        ("living_room", "lamp", "light.living_room_lamp"), ("living_room", "speaker", "media_player.living_room_speaker")]
    (home,) = read_homes(out).values()
    assert {d.target: d.entity_ids for d in home.devices}[("hallway", "front_door")] == ("lock.hallway_front_door",)


def test_import_ha_out_folder_is_claimed_like_import_log(recorder, tmp_path):
    """A folder HomePilot did not make is refused untouched; an earlier import is replaced only with
    --overwrite, which keeps the user's own files."""
    from tests.sim.dataset.test_out_safety import snapshot

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    r = CliRunner().invoke(app, ["import-ha", str(recorder), "--out", str(foreign)])
    assert r.exit_code == 1 and str(foreign) in r.output
    assert sorted(p.name for p in foreign.iterdir()) == ["cat.jpg"]
    out = tmp_path / "D"
    assert CliRunner().invoke(app, ["import-ha", str(recorder), "--out", str(out), "--test-days", "3"]).exit_code == 0
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    r = CliRunner().invoke(app, ["import-ha", str(recorder), "--out", str(out), "--test-days", "3"])
    assert r.exit_code == 1 and f"error: --out {out} holds an earlier import; pass --overwrite" in r.output
    assert snapshot(out) == before
    r = CliRunner().invoke(app, ["import-ha", str(recorder), "--out", str(out), "--test-days", "2", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "data" / "sft").is_dir()

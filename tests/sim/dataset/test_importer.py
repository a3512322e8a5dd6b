"""``homepilot import-log``: a generic CSV event log becomes the same dataset configs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.dataset.importer import ImportConfig, LogFormatError, main, read_events, read_sensors, to_home_log
from sim.dataset.validate import validate_dir
from sim.records import Action, parse_target

EVENTS = """timestamp,room,device,device_type,field,value,source
2026-01-05T07:00:10,bedroom,curtain,curtain,action,open,app
2026-01-05T07:00:40,bedroom,light,light,power,on,app
2026-01-05T07:00:55,bedroom,light,light,brightness,40,app
2026-01-05T07:01:30,bedroom,light,light,brightness,60,app
2026-01-05T07:01:35,bedroom,light,light,power,off,voice
2026-01-05T21:00:00,living_room,ac,ac,power,off,physical
2026-01-06T07:05:00,bedroom,curtain,curtain,action,open,app
2026-01-06T21:03:00,living_room,ac,ac,power,on,app
2026-01-07T07:02:00,bedroom,curtain,curtain,action,open,app
2026-01-07T19:00:00,living_room,ac,ac,target_temperature,26,app
"""
SENSORS = """timestamp,room,indicator,value
2026-01-05T06:00:00,bedroom,temperature,19.43
2026-01-05T06:00:00,outdoor,weather,sunny
2026-01-06T20:00:00,living_room,humidity,41
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_bursts_become_multi_action_operations(tmp_path):
    log = to_home_log(ImportConfig(events=write(tmp_path, "home.csv", EVENTS), out=str(tmp_path / "D"),
                                   sensors=write(tmp_path, "s.csv", SENSORS)))
    ops = log.operations
    # 07:00:10-07:00:55 app burst (the later brightness wins), then 07:01:30 starts a new burst,
    # 07:01:35 is another source (voice)
    assert [o.actions for o in ops[:3]] == [
        (Action("bedroom", "curtain", "action", "open"), Action("bedroom", "light", "power", "on"),
         Action("bedroom", "light", "brightness", "40")),
        (Action("bedroom", "light", "brightness", "60"),),
        (Action("bedroom", "light", "power", "off"),)]
    assert [o.source for o in ops[:3]] == ["app", "app", "voice"] and len(ops) == 8
    assert ops[0].time == datetime(2026, 1, 5, 7, 0)
    assert [(r.room, r.indicator, r.value) for r in ops[0].environment] == [
        ("bedroom", "temperature", "19.4"), ("outdoor", "weather", "sunny")]
    assert "bedroom" in ops[0].description.lower()
    assert log.home.home_id == "home" and log.days == 3 and log.hidden is None
    assert {d.type for d in log.home.devices} == {"curtain", "light", "ac"}


def test_import_writes_every_config_and_validates(tmp_path):
    out = tmp_path / "D"
    r = CliRunner().invoke(app, ["import-log", write(tmp_path, "home.csv", EVENTS), "--sensors",
                                 write(tmp_path, "s.csv", SENSORS), "--out", str(out)])
    assert r.exit_code == 0, r.output
    # progress as plain lines when stdout is not a terminal: reading, then the row pass
    assert "[import-log] read home.csv (MB): started" in r.output and "[import-log] rows (operations): step 8/8" in r.output
    assert validate_dir(out).files > 0
    ops = pq.read_table(out / "data" / "operations" / "train-00000-of-00001.parquet").to_pylist()
    test = pq.read_table(out / "data" / "sft" / "test-00000-of-00001.parquet").to_pylist()
    assert len(ops) == 6 and [parse_target(t["completion"])[0] for t in test] == [
        (Action("bedroom", "curtain", "action", "open"),), (Action("living_room", "ac", "target_temperature", "26"),)]
    assert not (out / "data" / "feedback").exists()  # no recommendations were logged: no feedback config
    dpo = pq.read_table(out / "data" / "dpo" / "train-00000-of-00001.parquet").to_pylist()
    # 07:01 brightness 60, a minute after "light on": conflict negative "light off"; later ones are time negatives
    assert dpo and {p["negative_kind"] for p in dpo} == {"time", "conflict"} and all(p["chosen"] != p["rejected"] for p in dpo)
    card = (out / "README.md").read_text()
    assert "- config_name: sft" in card and "homepilot import-log home.csv --sensors s.csv --out DIR" in card
    assert "config_name: feedback" not in card
    # a real log: no synthetic tag, and no licence the importer cannot know (other, with a note)
    assert "license: other" in card and "synthetic" not in card.split("\n---", 1)[0]
    assert "## License" in card and "cannot know" in card
    import datasets

    assert datasets.load_dataset(str(out), "sft", cache_dir=str(tmp_path / "hf"))["test"].num_rows == 2


def test_test_days_count_days_with_operations_not_calendar_days(tmp_path):
    """A log with a gap (away 4 days): --test-days 2 holds out the last two days that have
    operations, not the last two calendar days (which would hold one day of data)."""
    days = [5, 6, 7, 8, 9, 14]  # nothing on Jan 10-13
    rows = [f"2026-01-{d:02d}T07:0{k}:00,bedroom,curtain,curtain,action,{'open' if k == 0 else 'close'},app\n"
            for d in days for k in (0, 5)]
    events = write(tmp_path, "gap.csv", "timestamp,room,device,device_type,field,value,source\n" + "".join(rows))
    out = tmp_path / "D"
    r = CliRunner().invoke(app, ["import-log", events, "--out", str(out), "--test-days", "2"])
    assert r.exit_code == 0, r.output
    test = pq.read_table(out / "data" / "sft" / "test-00000-of-00001.parquet").to_pylist()
    train = pq.read_table(out / "data" / "sft" / "train-00000-of-00001.parquet").to_pylist()
    assert sorted({t["time"].day for t in test}) == [9, 14] and max(t["time"].day for t in train) == 8
    r = CliRunner().invoke(app, ["import-log", events, "--out", str(tmp_path / "E"), "--test-days", "6"])
    assert r.exit_code == 1 and "the log has operations on 6 day(s); need more than test_days=6" in r.output
    import typer

    for command in ("import-log", "import-ha"):  # the option's help says so (rich wraps --help: read the option)
        (opt,) = [p for p in typer.main.get_command(app).commands[command].params if p.name == "test_days"]
        assert "the last N days that have operations" in opt.help, command


@pytest.mark.parametrize("line,bad,column", [
    ("2026-13-05T07:00:00,bedroom,light,light,power,on,app", 2, "timestamp"),
    ("2026-01-05T07:00:00,bed room,light,light,power,on,app", 2, "room"),
    ("2026-01-05T07:00:00,bedroom,light,lamp,power,on,app", 2, "device_type"),
    ("2026-01-05T07:00:00,bedroom,light,light,volume,on,app", 2, "field"),
    ("2026-01-05T07:00:00,bedroom,light,light,brightness,150,app", 2, "value"),
    ("2026-01-05T07:00:00,bedroom,light,light,power,on,remote", 2, "source"),
])
def test_malformed_rows_name_file_line_and_column(tmp_path, line, bad, column):
    path = write(tmp_path, "e.csv", "timestamp,room,device,device_type,field,value,source\n" + line + "\n")
    with pytest.raises(LogFormatError) as e:
        read_events(path)
    assert (e.value.file, e.value.line, e.value.column) == (path, bad, column)
    assert f"line {bad}, column {column!r}" in str(e.value)


def test_missing_column_and_inconsistent_type_and_cli_error(tmp_path):
    path = write(tmp_path, "e.csv", "timestamp,room,device,field,value\n2026-01-05T07:00:00,bedroom,light,power,on\n")
    with pytest.raises(LogFormatError, match="line 1, column 'device_type'"):
        read_events(path)
    path = write(tmp_path, "f.csv", EVENTS + "2026-01-08T07:00:00,bedroom,light,smart_plug,power,on,app\n")
    with pytest.raises(LogFormatError, match="line 12, column 'device_type'.*was 'light'"):
        read_events(path)
    sensors = write(tmp_path, "s.csv", "timestamp,room,indicator,value\n2026-01-05T06:00:00,bedroom,pressure,1\n")
    r = CliRunner().invoke(app, ["import-log", write(tmp_path, "g.csv", EVENTS), "--sensors", sensors,
                                 "--out", str(tmp_path / "D")])
    assert r.exit_code == 1 and "line 2, column 'indicator'" in r.output


def test_one_day_log_cannot_have_a_test_split(tmp_path):
    with pytest.raises(ValueError, match="test_days"):
        main(ImportConfig(events=write(tmp_path, "e.csv", EVENTS.splitlines()[0] + "\n" + EVENTS.splitlines()[1] + "\n"),
                          out=str(tmp_path / "D")))


HEADER = "timestamp,room,device,device_type,field,value,source\n"
GOOD = "2026-01-05T07:00:00,bedroom,light,light,power,on,app\n"


def run_cli(tmp_path: Path, events: str | bytes, *args: str, sensors: str | None = None):
    """``homepilot import-log`` on a written events file (and sensors file); the result and the path."""
    path = tmp_path / "e.csv"
    path.write_bytes(events if isinstance(events, bytes) else events.encode("utf-8"))
    extra = ["--sensors", write(tmp_path, "s.csv", sensors)] if sensors is not None else []
    r = CliRunner().invoke(app, ["import-log", str(path), *extra, "--out", str(tmp_path / "D"), *args])
    return r, str(path)


@pytest.mark.parametrize("row,column,allowed", [
    ("9999-01-05T07:00:00,bedroom,light,light,power,on,app", "timestamp", "outside 2000-01-01..2099-12-31"),
    ("0000-01-05T07:00:00,bedroom,light,light,power,on,app", "timestamp", "outside 2000-01-01..2099-12-31"),
    ("1999-12-31T23:59:59,bedroom,light,light,power,on,app", "timestamp", "outside 2000-01-01..2099-12-31"),
    ("2026-01-05T07:00:00,bed\x00room,light,light,power,on,app", "room", "printable characters"),
    ("2026-01-05T07:00:00,bedroom,li\x1b[31mght,light,power,on,app", "device", "printable characters"),
    ("2026-01-05T07:00:00,bedroom,light\u202e,light,power,on,app", "device", "printable characters"),
    ("2026-01-05T07:00:00," + "r" * 65 + ",light,light,power,on,app", "room", "1..64 printable characters"),
    ("2026-01-05T07:00:00,bedroom,light,light,brightness,nan,app", "value", "allowed: 1..100 step 1 %"),
    ("2026-01-05T07:00:00,bedroom,light,light,brightness,1e308,app", "value", "allowed: 1..100 step 1 %"),
    ("2026-01-05T07:00:00,bedroom,light,light,power,on", "source", "found 6 fields; the header has 7"),
])
def test_bad_event_rows_exit_1_naming_file_line_column_and_what_is_allowed(tmp_path, row, column, allowed):
    r, path = run_cli(tmp_path, HEADER + GOOD + row + "\n" + GOOD)
    assert r.exit_code == 1, r.output
    assert f"{path}, line 3, column {column!r}: " in r.output and allowed in r.output
    assert not (tmp_path / "D").exists()  # nothing written before the input is known good


@pytest.mark.parametrize("value,allowed", [
    ("nan", "temperature 'nan' must be a number in -30..50 C"),
    ("-inf", "temperature '-inf' must be a number in -30..50 C"),
    ("1e308", "temperature '1e308' must be a number in -30..50 C"),
    ("9999", "temperature '9999' must be a number in -30..50 C"),
])
def test_sensor_readings_outside_the_catalogue_ranges_are_refused(tmp_path, value, allowed):
    sensors = f"timestamp,room,indicator,value\n2026-01-05T06:00:00,bedroom,temperature,{value}\n"
    r, _ = run_cli(tmp_path, EVENTS, sensors=sensors)
    assert r.exit_code == 1 and f"s.csv, line 2, column 'value': {allowed}" in r.output
    with pytest.raises(LogFormatError, match="line 2, column 'value': humidity '-500' must be a number in 0..100 %"):
        read_sensors(write(tmp_path, "h.csv", "timestamp,room,indicator,value\n2026-01-05T06:00:00,bedroom,humidity,-500\n"))


def test_a_huge_field_a_line_break_in_a_field_bad_utf8_and_too_many_rows_are_named_errors(tmp_path):
    # a field over 128 KB (csv's own limit would raise _csv.Error): the line is refused, its column named
    r, path = run_cli(tmp_path, HEADER + GOOD + "2026-01-05T07:00:00,bedroom," + "x" * 140_000 + ",light,power,on,app\n")
    assert r.exit_code == 1 and f"{path}, line 3, column 'device': the line is longer than 4096 characters" in r.output
    assert "Traceback" not in r.output and "_csv" not in r.output
    r, path = run_cli(tmp_path, HEADER + GOOD + '2026-01-05T07:00:00,"bed\nroom",light,light,power,on,app\n')
    assert r.exit_code == 1 and f"{path}, line 3, column 'room': a quoted field runs past the end of its line" in r.output
    r, path = run_cli(tmp_path, (HEADER + GOOD).encode() + b"2026-01-05T07:00:00,bed\xffroom,light,light,power,on,app\n")
    assert r.exit_code == 1 and f"{path}, line 3, column 'room': byte 0xff is not UTF-8" in r.output
    r, path = run_cli(tmp_path, HEADER + GOOD * 5, "--max-rows", "3")
    assert r.exit_code == 1 and f"{path}, line 5, column 'timestamp': more than 3 rows" in r.output
    r, _ = run_cli(tmp_path, EVENTS, "--timezone", "Mars/Olympus")
    assert r.exit_code == 1 and "timezone: unknown time zone 'Mars/Olympus'" in r.output
    r, _ = run_cli(tmp_path, EVENTS, "--home-id", "a\x1bb")
    assert r.exit_code == 1 and "home_id: 'a\\x1bb'" in r.output


def test_a_utf8_bom_file_imports(tmp_path):
    r, _ = run_cli(tmp_path, "\ufeff" + EVENTS)
    assert r.exit_code == 0, r.output
    assert validate_dir(tmp_path / "D").files > 0


def test_mixed_utc_offsets_keep_the_order_of_events(tmp_path):
    # on/off/on/off 10 min apart, written with four different offsets: by wall clock they would
    # read 08:00 on, 07:10 off, 03:20 on, 07:30 off (stored as on, off, off, on before the fix)
    rows = ["2026-01-05T08:00:00+01:00,hallway,light,light,power,on,app",
            "2026-01-05T07:10:00+00:00,hallway,light,light,power,off,app",
            "2026-01-05T03:20:00-04:00,hallway,light,light,power,on,app",
            "2026-01-05T07:30:00Z,hallway,light,light,power,off,app"]
    log = to_home_log(ImportConfig(events=write(tmp_path, "e.csv", HEADER + "\n".join(rows) + "\n"), out=str(tmp_path / "D")))
    assert [(e.time.strftime("%H:%M"), e.value) for e in log.events] == [
        ("07:00", "on"), ("07:10", "off"), ("07:20", "on"), ("07:30", "off")]  # converted to UTC, the default
    assert [o.actions[0].value for o in log.operations] == ["on", "off", "on", "off"]


def test_a_dst_fall_back_keeps_the_order_of_events(tmp_path):
    # New York falls back at 02:00 EDT on 2026-11-01: 01:00-02:00 happens twice
    rows = ["2026-11-01T01:30:00-04:00,hallway,light,light,power,on,app",
            "2026-11-01T01:45:00-04:00,hallway,light,light,power,off,app",
            "2026-11-01T01:10:00-05:00,hallway,light,light,power,on,app",  # 25 min later, an hour back on the wall
            "2026-11-01T01:20:00-05:00,hallway,light,light,power,off,app",
            "2026-11-01T02:30:00,hallway,light,light,power,on,app"]  # no offset: the home's wall clock
    log = to_home_log(ImportConfig(events=write(tmp_path, "e.csv", HEADER + "\n".join(rows) + "\n"), out=str(tmp_path / "D"),
                                   timezone="America/New_York"))
    # order by the instant; the repeated hour's wall-clock times are held at the latest earlier one
    assert [(e.time.strftime("%H:%M"), e.value) for e in log.events] == [
        ("01:30", "on"), ("01:45", "off"), ("01:45", "on"), ("01:45", "off"), ("02:30", "on")]
    assert [o.actions[0].value for o in log.operations] == ["on", "off", "on", "off", "on"]
    times = [e.time for e in log.events]
    assert times == sorted(times)


def test_rows_handed_to_a_sink_in_chunks_are_the_rows_returned(tmp_path, monkeypatch):
    import pyarrow as pa

    import sim.dataset.rows as rows_module
    from sim.dataset.rows import RowSpec, home_rows

    log = to_home_log(ImportConfig(events=write(tmp_path, "e.csv", EVENTS), out=str(tmp_path / "D"),
                                   sensors=write(tmp_path, "s.csv", SENSORS)))
    spec = RowSpec(cutoff=datetime(2026, 1, 7))
    whole = home_rows(log, spec)
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 2)
    got: dict[tuple[str, str], list] = {}
    calls: list[tuple[int, int]] = []
    assert home_rows(log, spec, lambda done, total: calls.append((done, total)),
                     lambda key, t: got.setdefault(key, []).append(t)) == {}
    assert max(len(v) for v in got.values()) > 1  # several chunks for some key
    assert {k: pa.concat_tables(v) for k, v in got.items()} == whole
    assert calls[0] == (0, 8) and calls[-1] == (8, 8)


def test_an_occupancy_reading_from_sensors_reaches_the_prompt(tmp_path):
    """Someone walks into the study (occupancy 0 -> 1 from --sensors) before the last test decision:
    the study becomes a prompt room and its occupancy is in the sft prompt, which differs from the
    import without that row."""
    base = SENSORS + "2026-01-07T06:00:00,study,occupancy,0\n"
    occupied = base + "2026-01-07T18:40:00,study,occupancy,1\n"
    prompts = {}
    for name, sensors in (("without", base), ("with", occupied)):
        out = tmp_path / name
        r = CliRunner().invoke(app, ["import-log", write(tmp_path, "home.csv", EVENTS), "--sensors",
                                     write(tmp_path, f"{name}.csv", sensors), "--out", str(out)])
        assert r.exit_code == 0, r.output
        test = pq.read_table(out / "data" / "sft" / "test-00000-of-00001.parquet").to_pylist()
        prompts[name] = {t["time"]: t["prompt"] for t in test}
    at = datetime(2026, 1, 7, 19, 0)  # the AC set to 26 at 19:00, 20 minutes after the study was entered
    assert "[study][occupancy][1]" in prompts["with"][at]
    assert "[study]" not in prompts["without"][at] and prompts["with"][at] != prompts["without"][at]
    earlier = datetime(2026, 1, 7, 7, 2)  # before anyone entered: the same prompt either way
    assert prompts["with"][earlier] == prompts["without"][earlier]

"""``homepilot import-log``: a generic CSV event log becomes the same dataset configs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.dataset.importer import ImportConfig, LogFormatError, main, read_events, to_home_log
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
    assert validate_dir(out).files > 0
    ops = pq.read_table(out / "data" / "operations" / "train-00000-of-00001.parquet").to_pylist()
    test = pq.read_table(out / "data" / "sft" / "test-00000-of-00001.parquet").to_pylist()
    assert len(ops) == 6 and [parse_target(t["completion"])[0] for t in test] == [
        (Action("bedroom", "curtain", "action", "open"),), (Action("living_room", "ac", "target_temperature", "26"),)]
    assert pq.read_metadata(out / "data" / "feedback" / "train-00000-of-00001.parquet").num_rows == 0
    dpo = pq.read_table(out / "data" / "dpo" / "train-00000-of-00001.parquet").to_pylist()
    # 07:01 brightness 60, a minute after "light on": conflict negative "light off"; later ones are time negatives
    assert dpo and {p["negative_kind"] for p in dpo} == {"time", "conflict"} and all(p["chosen"] != p["rejected"] for p in dpo)
    card = (out / "README.md").read_text()
    assert "- config_name: sft" in card and "homepilot import-log home.csv --sensors s.csv --out DIR" in card
    import datasets

    assert datasets.load_dataset(str(out), "sft")["test"].num_rows == 2


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

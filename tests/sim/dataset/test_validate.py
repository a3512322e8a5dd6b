"""``homepilot validate``: every split the card declares is present and non-empty, a corrupt file is
one named error (never a traceback), and the import's input checks hold on the stored rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.dataset.importer import ImportConfig, main
from sim.dataset.schema import SCHEMAS
from tests.sim.dataset.test_importer import EVENTS, SENSORS


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("imported")
    (d / "e.csv").write_text(EVENTS)
    (d / "s.csv").write_text(SENSORS)
    main(ImportConfig(events=str(d / "e.csv"), sensors=str(d / "s.csv"), out=str(d / "D")))
    return d / "D"


def broken(imported: Path, tmp_path: Path, change) -> str:
    """`homepilot validate` on a copy of the dataset after ``change(copy)``; its exit code must be 1."""
    d = tmp_path / "D"
    shutil.copytree(imported, d)
    change(d)
    r = CliRunner().invoke(app, ["validate", str(d)])
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    return r.output


def shard(d: Path, config: str, split: str = "train") -> Path:
    return d / "data" / config / f"{split}-00000-of-00001.parquet"


def test_an_import_validates(imported):
    r = CliRunner().invoke(app, ["validate", str(imported)])
    assert r.exit_code == 0 and r.output.startswith("ok: 9 files")


@pytest.mark.parametrize("change,message", [
    (lambda d: shard(d, "sft", "test").unlink(),
     "invalid: data/sft/test-*: declared in README.md, but no sft test split in"),
    (lambda d: [p.unlink() for p in (d / "data" / "dpo").iterdir()],
     "invalid: data/dpo/train-*: declared in README.md, but no dpo train split in"),
    (lambda d: shutil.rmtree(d / "data" / "sft"),
     "invalid: data/sft/train-*: declared in README.md, but no sft train split in"),
    (lambda d: [shutil.rmtree(p) for p in (d / "data").iterdir()],
     "invalid: data/homes/train-*: declared in README.md, but no homes train split in"),
    (lambda d: (d / "README.md").unlink(), "invalid: README.md: no dataset card"),
    (lambda d: (d / "README.md").write_text("# no front matter\n"), "invalid: README.md: the YAML front matter"),
    (lambda d: pq.write_table(SCHEMAS["events"].empty_table(), shard(d, "events")),
     "invalid: data/events/train-*: declared in README.md but holds no rows"),
    (lambda d: shard(d, "homes").write_bytes(shard(d, "homes").read_bytes()[:300]),
     "invalid: data/homes/train-00000-of-00001.parquet: unreadable parquet"),
    (lambda d: shard(d, "events", "test").write_bytes(b""),
     "invalid: data/events/test-00000-of-00001.parquet: unreadable parquet"),
    (lambda d: shutil.copy(shard(d, "sft", "test"), d / "data" / "sft" / "test_unseen-00000-of-00001.parquet"),
     "invalid: data/sft/test_unseen-*: not declared in README.md's configs"),
])
def test_missing_empty_corrupt_or_undeclared_data_is_one_named_error(imported, tmp_path, change, message):
    assert message in broken(imported, tmp_path, change)


def test_a_zero_row_shard_beside_others_is_fine_but_stored_values_are_checked(imported, tmp_path):
    d = tmp_path / "ok"
    shutil.copytree(imported, d)
    shard(d, "events").rename(d / "data" / "events" / "train-00000-of-00002.parquet")
    pq.write_table(SCHEMAS["events"].empty_table(), d / "data" / "events" / "train-00001-of-00002.parquet")
    r = CliRunner().invoke(app, ["validate", str(d)])
    assert r.exit_code == 0, r.output

    def set_value(d: Path, i: int, value: str, column: str = "value") -> None:
        t = pq.read_table(shard(d, "events"))
        col = t.column(column).to_pylist()
        col[i] = value
        pq.write_table(t.set_column(t.schema.get_field_index(column), column, pa.array(col)), shard(d, "events"))

    rows = pq.read_table(shard(imported, "events")).to_pylist()
    reading = next(i for i, r in enumerate(rows) if r["field"] == "temperature")
    out = broken(imported, tmp_path / "a", lambda d: set_value(d, reading, "9999"))
    assert f"data/events/train-00000-of-00001.parquet row {reading}: temperature '9999' must be a number in -30..50 C" in out
    out = broken(imported, tmp_path / "b", lambda d: set_value(d, 0, "bed\u202eroom", "room"))
    assert "data/events/train-00000-of-00001.parquet row 0: room: 'bed\\u202eroom'" in out


def test_a_homes_file_from_before_entities_still_validates_and_reads(imported, tmp_path):
    """Generator < 0.5.1 wrote ``homes`` without ``entities``: such a dataset stays valid and readable."""
    from sim.dataset.files import read_homes
    from sim.dataset.schema import LEGACY_SCHEMAS

    d = tmp_path / "old"
    shutil.copytree(imported, d)
    t = pq.read_table(shard(d, "homes")).drop_columns(["entities"])
    assert t.schema.names == LEGACY_SCHEMAS["homes"][0].names
    pq.write_table(t, shard(d, "homes"))
    r = CliRunner().invoke(app, ["validate", str(d)])
    assert r.exit_code == 0, r.output
    (home,) = read_homes(d).values()
    assert home.devices and all(dev.entity_ids == () for dev in home.devices)
    assert [x.target for x in home.devices] == [x.target for x in read_homes(imported)[home.home_id].devices]


def test_an_entity_of_no_device_or_a_malformed_entity_id_is_named(imported, tmp_path):
    def set_entities(d: Path, entities: list) -> None:
        t = pq.read_table(shard(d, "homes"))
        i = t.schema.get_field_index("entities")
        pq.write_table(t.set_column(i, t.schema.field(i), pa.array([entities], t.schema.field(i).type)),
                       shard(d, "homes"))

    dev = pq.read_table(shard(imported, "homes")).to_pylist()[0]["devices"][0]
    out = broken(imported, tmp_path / "a", lambda d: set_entities(d, [{"room": "attic", "device": "x", "entity_id": "light.x"}]))
    assert "data/homes/train-00000-of-00001.parquet row 0: entities: light.x names device attic/x, not in the home" in out
    out = broken(imported, tmp_path / "b", lambda d: set_entities(
        d, [{"room": dev["room"], "device": dev["device"], "entity_id": "Light Bedroom"}]))
    assert "entities: 'Light Bedroom' is not a Home Assistant entity id (domain.object_id)" in out


def test_a_prompt_whose_state_or_usual_operations_break_the_catalogue_is_named(imported, tmp_path):
    """A prompt parses with any bracketed field in a device's state; validate holds it to the catalogue
    (the known state and the usual operations are settings of the home's devices)."""
    rows = pq.read_table(shard(imported, "sft")).to_pylist()
    i = next(i for i, r in enumerate(rows) if "<usual> [" in r["prompt"])
    prompt = rows[i]["prompt"]
    room, device = rows[i]["devices"][0]["room"], rows[i]["devices"][0]["device"]

    def rewrite(new: str):
        def change(d: Path) -> None:
            t = pq.read_table(shard(d, "sft"))
            col = t.column("prompt").to_pylist()
            col[i] = new
            pq.write_table(t.set_column(t.schema.get_field_index("prompt"), "prompt", pa.array(col)), shard(d, "sft"))
        return change

    entry = f" [{room}][{device}]"
    before, listed = prompt.split("<devices>")
    assert entry in listed
    out = broken(imported, tmp_path / "state", rewrite(before + "<devices>" + listed.replace(entry, entry + "[ago][15]", 1)))
    assert f"data/sft/train-00000-of-00001.parquet row {i}: prompt (state): {room}/{device}: " in out
    assert "no field 'ago'" in out
    head, usual = prompt.split("<usual> [", 1)
    out = broken(imported, tmp_path / "usual", rewrite(head + "<usual> [garage][heater][power][on] [" + usual))
    assert f"row {i}: prompt (usual operations): device garage/heater is not in the home" in out

"""``homepilot validate DIR``: check a dataset directory's schema and invariants.

Checks, in order, stopping at the first problem (``ValidationError`` names the file and row):

- the card (``README.md``, YAML ``configs:``) declares configs, and every split it declares is
  present and complete (``sim.dataset.files.split_files``) and holds rows; no data file is left
  undeclared (``datasets.load_dataset`` would not see it);
- every ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` has a known config and split, a
  consistent ``MMMMM`` per (config, split), no missing shard, is readable parquet (a truncated or
  empty file is one named error, never a traceback) with exactly the schema of
  ``sim.dataset.schema.SCHEMAS[config]`` (or one of its ``LEGACY_SCHEMAS``: a ``homes`` file
  without ``entities``, written before generator 0.5.1);
- the input checks of ``homepilot import-log`` (``sim.dataset.checks``): home ids, rooms and
  devices are printable names of bounded length, times lie in 2000..2099, sensor and weather
  readings are in the catalogue's ranges and canonical spelling;
- homes: bucket matches the device count, device types are in the catalogue, every entity
  names a device of the home and is an HA entity id ``domain.object_id``;
- every grammar column parses (operations text, pretrain histories, prompts, completions,
  actions, labels) and every action is legal for its home's device (``sim.catalog.validate``),
  as are a prompt's listed devices, their known settings and its usual operations;
- dpo: ``chosen != rejected``, ``negative_kind`` is ``time`` or ``conflict``;
- feedback: propensity in (0, 1], p_accept in [0, 1];
- splits: per home, every ``train`` time is before every ``test`` time; no ``test_unseen``
  home appears in any ``train`` or ``test`` file.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.catalog import CatalogError, device_bucket, device_type, validate
from sim.dataset.checks import TIME_MAX, TIME_MIN, InputError, check_name, check_reading
from sim.dataset.files import DatasetError, read_file, split_files
from sim.dataset.negatives import NEGATIVE_KINDS
from sim.dataset.schema import LEGACY_SCHEMAS, SCHEMAS, SPLITS
from sim.records import (
    Action,
    GrammarError,
    Prompt,
    parse_actions,
    parse_history,
    parse_operation,
    parse_prompt,
    parse_target,
)

NAME_RE = re.compile(r"^(?P<split>[a-z_]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")
TIMED = ("events", "operations", "sft", "dpo", "feedback")


class ValidationError(ValueError):
    """The first problem found: ``file`` (relative path), ``row`` (0-based, None for file-level) and why."""

    def __init__(self, file: str, row: int | None, message: str) -> None:
        self.file, self.row = file, row
        where = f"{file}" if row is None else f"{file} row {row}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Report:
    files: int
    rows: int


def _shard_files(root: Path) -> Iterator[tuple[str, str, Path]]:
    data = root / "data"
    if not data.is_dir():
        raise ValidationError(str(root), None, "no data/ directory")
    groups: dict[tuple[str, str], list[tuple[int, int, Path]]] = defaultdict(list)
    for path in sorted(data.glob("*/*")):
        rel = str(path.relative_to(root))
        config = path.parent.name
        if config not in SCHEMAS:
            raise ValidationError(rel, None, f"unknown config {config!r}; known: {', '.join(SCHEMAS)}")
        m = NAME_RE.match(path.name)
        if not m or m["split"] not in SPLITS:
            raise ValidationError(rel, None, f"name must be <split>-NNNNN-of-MMMMM.parquet with split in {SPLITS}")
        groups[(config, m["split"])].append((int(m["i"]), int(m["n"]), path))
    for (config, split), items in sorted(groups.items(), key=lambda kv: (list(SCHEMAS).index(kv[0][0]), kv[0][1])):
        counts = {n for _, n, _ in items}
        if len(counts) != 1 or sorted(i for i, _, _ in items) != list(range(counts.pop())):
            raise ValidationError(f"data/{config}/{split}-*", None, "shards missing or numbered inconsistently")
        for _, _, path in sorted(items):
            yield config, split, path


def declared_splits(root: Path) -> list[tuple[str, str]]:
    """(config, split) of every ``data_files`` entry of the card's YAML ``configs:``."""
    import yaml

    card = root / "README.md"
    if not card.is_file():
        raise ValidationError("README.md", None, "no dataset card; `homepilot generate` and `homepilot import-log` "
                                                 "write one that declares the configs and splits")
    text = card.read_text(encoding="utf-8", errors="replace")
    m = re.match(r"---\s*\n(.*?)\n---\s*(\n|$)", text, re.S)
    try:
        meta = yaml.safe_load(m[1]) if m else None
    except yaml.YAMLError as e:
        raise ValidationError("README.md", None, f"YAML front matter does not parse: {str(e).splitlines()[0]}") from None
    configs = meta.get("configs") if isinstance(meta, dict) else None
    if not configs or not isinstance(configs, list):
        raise ValidationError("README.md", None, "the YAML front matter (between --- lines) declares no `configs:`")
    out = []
    for i, c in enumerate(configs):
        name = c.get("config_name") if isinstance(c, dict) else None
        files = c.get("data_files") if isinstance(c, dict) else None
        if name not in SCHEMAS or not files or not isinstance(files, list):
            raise ValidationError("README.md", None, f"configs[{i}] must have config_name in {', '.join(SCHEMAS)} "
                                                     "and a data_files list")
        for f in files:
            split = f.get("split") if isinstance(f, dict) else None
            if split not in SPLITS or f.get("path") != f"data/{name}/{split}-*.parquet":
                raise ValidationError("README.md", None, f"configs[{i}] ({name}) data_files entry {f!r}: need split in "
                                                         f"{', '.join(SPLITS)} and path data/{name}/<split>-*.parquet")
            out.append((name, split))
    return out


def _check_card(root: Path, present: set[tuple[str, str]]) -> None:
    """Every declared split present, complete and non-empty; every present split declared."""
    declared = declared_splits(root)
    for config, split in declared:
        try:
            paths = split_files(root, config, split)
        except DatasetError as e:
            raise ValidationError(f"data/{config}/{split}-*", None, f"declared in README.md, but {e}") from None
        rows = 0
        for path in paths:
            try:
                rows += pq.read_metadata(path).num_rows
            except (pa.ArrowException, OSError) as e:
                raise ValidationError(str(path.relative_to(root)), None, f"unreadable parquet: {e}") from None
        if not rows:
            raise ValidationError(f"data/{config}/{split}-*", None, f"declared in README.md but holds no rows "
                                                                     f"({len(paths)} file(s) of 0 rows)")
    for config, split in sorted(present - set(declared)):
        raise ValidationError(f"data/{config}/{split}-*", None, "not declared in README.md's configs "
                                                                "(datasets.load_dataset would not see it)")


def _read(root: Path, path: Path) -> pa.Table:
    try:
        return read_file(path)
    except DatasetError as e:
        raise ValidationError(str(path.relative_to(root)), None, str(e)) from None


def _check_names(rel: str, table: pa.Table, columns: tuple[str, ...]) -> None:
    """``check_name`` on every distinct non-empty value of the string ``columns``."""
    for name in columns:
        col = table.column(name)
        values = pc.unique(col).to_pylist()
        for v in values:
            if v:
                try:
                    check_name(v)
                except InputError as e:
                    raise ValidationError(rel, _first(pc.equal(col, v)), f"{name}: {e}") from None


def _check_times(rel: str, table: pa.Table) -> None:
    times = table.column("time")
    lo, hi = pa.scalar(TIME_MIN, times.type), pa.scalar(TIME_MAX, times.type)
    bad = _first(pc.or_(pc.less(times, lo), pc.greater_equal(times, hi)))
    if bad is not None:
        raise ValidationError(rel, bad, f"time {times[bad].as_py()} is outside {TIME_MIN:%Y-%m-%d}..{TIME_MAX.year - 1}-12-31")


def _check_readings(rel: str, table: pa.Table) -> None:
    """Sensor and weather rows: a catalogue indicator with a value in range, canonically spelled."""
    readings = pc.invert(pc.equal(table.column("kind"), "action"))
    pairs = table.filter(readings).group_by(["field", "value"]).aggregate([]).to_pylist()
    for r in pairs:
        try:
            canonical = check_reading(r["field"], r["value"])
            why = None if canonical == r["value"] else f"{r['field']} {r['value']!r} is not spelled canonically ({canonical})"
        except InputError as e:
            why = str(e)
        if why is not None:
            where = pc.and_(readings, pc.and_(pc.equal(table.column("field"), r["field"]),
                                              pc.equal(table.column("value"), r["value"])))
            raise ValidationError(rel, _first(where), why)


def stored_schema(config: str, schema: pa.Schema | None = None) -> pa.Schema:
    """The schema as Parquet gives it back: ``timestamp[s]`` is stored as milliseconds (Parquet has no seconds)."""
    return pa.schema([pa.field(f.name, pa.timestamp("ms")) if f.type == pa.timestamp("s") else f
                      for f in (schema or SCHEMAS[config])])


def schema_ok(config: str, table: pa.Table) -> bool:
    """The table has its config's schema, or one of the config's legacy schemas."""
    return any(table.schema.equals(stored_schema(config, s), check_metadata=False)
               for s in (SCHEMAS[config], *LEGACY_SCHEMAS.get(config, ())))


ENTITY_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")  # Home Assistant entity ids: domain.object_id


def _legal(actions, types: dict[tuple[str, str], str], what: str) -> None:
    for a in actions:
        t = types.get(a.target)
        if t is None:
            raise ValueError(f"{what}: device {a.room}/{a.device} is not in the home")
        try:
            validate(t, a.field, a.value)
        except CatalogError as e:
            raise ValueError(f"{what}: {a.room}/{a.device}: {e}") from None


def _legal_prompt(p: Prompt, types: dict[tuple[str, str], str], what: str) -> None:
    """The prompt's listed devices are the home's, each known setting is legal for its device, and so
    is every usual operation (a state field outside the catalogue, ``[light][ago][15]``, parses but is
    not HomePilot's grammar)."""
    for dev in p.devices:
        if tuple(dev) not in types:
            raise ValueError(f"{what}: device {dev[0]}/{dev[1]} is not in the home")
    for dev, settings in zip(p.devices, p.state, strict=False):
        _legal([Action(dev[0], dev[1], f, v) for f, v in settings], types, f"{what} (state)")
    for acts in p.usual:
        _legal(acts, types, f"{what} (usual operations)")


def _check_row(config: str, r: dict, types: dict[tuple[str, str], str]) -> None:
    """Raise (GrammarError, CatalogError, ValueError) naming the column when a row breaks an invariant."""
    if config == "homes":
        if r["bucket"] != device_bucket(r["n_devices"]) or len(r["devices"]) != r["n_devices"]:
            raise ValueError(f"bucket/n_devices/devices disagree: {r['bucket']}, {r['n_devices']}, {len(r['devices'])}")
        for d in r["devices"]:
            device_type(d["type"])
        names = {(d["room"], d["device"]) for d in r["devices"]}
        for e in r.get("entities") or ():
            if (e["room"], e["device"]) not in names:
                raise ValueError(f"entities: {e['entity_id']} names device {e['room']}/{e['device']}, not in the home")
            if not ENTITY_RE.match(e["entity_id"]):
                raise ValueError(f"entities: {e['entity_id']!r} is not a Home Assistant entity id (domain.object_id)")
    elif config == "events":
        if r["kind"] not in ("sensor", "weather", "action"):
            raise ValueError(f"kind: {r['kind']!r} not in sensor, weather, action")
        if r["kind"] == "action" and types:
            t = types.get((r["room"], r["device"]))
            if t is None:
                raise ValueError(f"device: {r['room']}/{r['device']} is not in the home")
            validate(t, r["field"], r["value"])
    elif config == "operations":
        op = parse_operation(r["text"])
        if parse_actions(r["actions"]) != op.actions or r["n_actions"] != len(op.actions):
            raise ValueError("actions/n_actions disagree with text")
        _legal(op.actions, types, "actions")
    elif config == "pretrain":
        for op in parse_history(r["text"]):
            _legal(op.actions, types, "text")
    elif config == "sft":
        p = parse_prompt(r["prompt"])
        acts, _ = parse_target(r["completion"])
        acts2, _ = parse_target(r["completion_text_first"], "text-first")
        if acts != acts2 or acts != parse_actions(r["actions"]):
            raise ValueError("completion, completion_text_first and actions disagree")
        if any(o.time >= r["time"].replace(second=0) for o in p.history):
            raise ValueError("prompt: history holds an operation at or after the decision time")
        home = {(d["room"], d["device"]): d["type"] for d in r["devices"]}
        _legal(acts, home, "completion")
        _legal_prompt(p, home, "prompt")
    elif config == "dpo":
        p = parse_prompt(r["prompt"])
        if types:
            _legal_prompt(p, types, "prompt")
        chosen, _ = parse_target(r["chosen"])
        rejected, _ = parse_target(r["rejected"])
        if r["chosen"] == r["rejected"] or chosen == rejected:
            raise ValueError("rejected equals chosen")
        if r["negative_kind"] not in NEGATIVE_KINDS:
            raise ValueError(f"negative_kind: {r['negative_kind']!r} not in {NEGATIVE_KINDS}")
        _legal(chosen, types, "chosen")
        _legal(rejected, types, "rejected")
    elif config == "feedback":
        parse_prompt(r["prompt"])
        t = {(d["room"], d["device"]): d["type"] for d in r["devices"]}
        _legal(parse_actions(r["shown"]), t, "shown")
        if r["label"]:
            _legal(parse_actions(r["label"]), t, "label")
        if not 0.0 < r["propensity"] <= 1.0:
            raise ValueError(f"propensity: {r['propensity']} not in (0, 1]")
        if not 0.0 <= r["p_accept"] <= 1.0:
            raise ValueError(f"p_accept: {r['p_accept']} not in [0, 1]")


def _first(mask: pa.ChunkedArray | pa.Array) -> int | None:
    idx = pc.indices_nonzero(pc.fill_null(mask, False))
    return idx[0].as_py() if len(idx) else None


def _check_events(rel: str, split: str, table: pa.Table, home_types: dict[str, dict[tuple[str, str], str]],
                  unseen: set[str], span: dict) -> None:
    """The events checks of ``_check_row`` and the split checks, on columns."""
    hids, kinds, times = table.column("home_id"), table.column("kind"), table.column("time")
    bad = _first(pc.invert(pc.is_in(kinds, value_set=pa.array(["sensor", "weather", "action"]))))
    if bad is not None:
        raise ValidationError(rel, bad, f"kind: {kinds[bad].as_py()!r} not in sensor, weather, action")
    if split != "test_unseen" and unseen:
        bad = _first(pc.is_in(hids, value_set=pa.array(sorted(unseen))))
        if bad is not None:
            raise ValidationError(rel, bad, f"home {hids[bad].as_py()} is a test_unseen home but appears in {split}")
    if home_types:
        bad = _first(pc.invert(pc.is_in(hids, value_set=pa.array(sorted(home_types)))))
        if bad is not None:
            raise ValidationError(rel, bad, f"home {hids[bad].as_py()} is not in the homes config")
    _check_names(rel, table, ("home_id", "room", "device"))
    _check_readings(rel, table)
    idx = pc.indices_nonzero(pc.equal(kinds, "action"))
    for i, r in zip(idx.to_pylist(), table.take(idx).to_pylist(), strict=True):
        try:
            _check_row("events", r, home_types.get(r["home_id"], {}))
        except (CatalogError, ValueError) as e:
            raise ValidationError(rel, i, str(e)) from None
    if not table.num_rows:
        return
    agg = table.group_by("home_id").aggregate([("time", "min"), ("time", "max")]).to_pylist()
    for g in agg:
        hid = g["home_id"]
        lo, hi = span.get(("events", hid, split), (g["time_min"], g["time_max"]))
        span[("events", hid, split)] = (min(lo, g["time_min"]), max(hi, g["time_max"]))
        train, test = span.get(("events", hid, "train")), span.get(("events", hid, "test"))
        if train and test and train[1] >= test[0]:
            home = pc.equal(hids, hid)
            wrong = (pc.greater_equal(times, pa.scalar(test[0], times.type)) if split == "train"
                     else pc.less_equal(times, pa.scalar(train[1], times.type)))
            raise ValidationError(rel, _first(pc.and_(home, wrong)), f"home {hid}: events train ends {train[1]} at or "
                                  f"after test starts {test[0]} (splits must not overlap in time)")


def validate_dir(root: str | Path) -> Report:
    """Check every file under ``root/data``; raise ValidationError at the first problem."""
    root = Path(root)
    files = list(_shard_files(root))
    _check_card(root, {(c, s) for c, s, _ in files})
    home_types: dict[str, dict[tuple[str, str], str]] = {}
    unseen: set[str] = set()
    for config, split, path in files:
        if config == "homes":
            table = _read(root, path)
            if not schema_ok(config, table):
                continue  # reported below with the schema check
            for r in table.to_pylist():
                home_types[r["home_id"]] = {(d["room"], d["device"]): d["type"] for d in r["devices"]}
                if split == "test_unseen":
                    unseen.add(r["home_id"])
    span: dict[tuple[str, str, str], tuple[datetime, datetime]] = {}  # (config, home, split) -> (min, max) time
    n_rows = 0
    for config, split, path in files:
        rel = str(path.relative_to(root))
        table = _read(root, path)
        if not schema_ok(config, table):
            raise ValidationError(rel, None, f"schema differs from sim.dataset.schema.SCHEMAS[{config!r}]: "
                                             f"{table.schema.names} vs {SCHEMAS[config].names}")
        if config in TIMED:
            _check_times(rel, table)
        if config == "homes":
            _check_names(rel, table, ("home_id",))
            for i, r in enumerate(table.select(["rooms", "devices"]).to_pylist()):
                for kind, name in [*(("room", x) for x in r["rooms"]),
                                   *(x for d in r["devices"] for x in (("room", d["room"]), ("device", d["device"])))]:
                    try:
                        check_name(name)
                    except InputError as e:
                        raise ValidationError(rel, i, f"{kind}: {e}") from None
        if config == "events":  # millions of rows: columnar checks, row by row only for actions
            _check_events(rel, split, table, home_types, unseen, span)
            n_rows += table.num_rows
            continue
        for i, r in enumerate(table.to_pylist()):
            hid = r["home_id"]
            if split != "test_unseen" and hid in unseen:
                raise ValidationError(rel, i, f"home {hid} is a test_unseen home but appears in {split}")
            if config != "homes" and home_types and hid not in home_types:
                raise ValidationError(rel, i, f"home {hid} is not in the homes config")
            try:
                _check_row(config, r, home_types.get(hid, {}))
            except (GrammarError, CatalogError, ValueError, KeyError) as e:
                raise ValidationError(rel, i, str(e)) from None
            if config in TIMED:
                key = (config, hid, split)
                lo, hi = span.get(key, (r["time"], r["time"]))
                span[key] = (min(lo, r["time"]), max(hi, r["time"]))
                train, test = span.get((config, hid, "train")), span.get((config, hid, "test"))
                if train and test and train[1] >= test[0]:
                    raise ValidationError(rel, i, f"home {hid}: {config} train ends {train[1]} at or after "
                                                  f"test starts {test[0]} (splits must not overlap in time)")
        n_rows += table.num_rows
    return Report(files=len(files), rows=n_rows)


def main(root: str | Path) -> Report:
    return validate_dir(root)

"""A tiny hand-made dataset directory in exactly the ``sim.dataset.schema`` layout, for training tests.

One home with fixed daily routines (morning curtain + light, kettle, evening TV, night lights
off) plus seeded jitter: enough structure that every stage's loss can fall in a few steps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.catalog import device_type
from sim.dataset.schema import SCHEMAS
from sim.prompts import prompt_text
from sim.records import Action, EnvReading, Operation, serialize_actions, serialize_history, serialize_target

DEVICES = {("bedroom", "light"): "light", ("bedroom", "curtain"): "curtain", ("bedroom", "ac"): "ac",
           ("kitchen", "kettle"): "kettle", ("living_room", "tv"): "tv", ("living_room", "light"): "light",
           ("living_room", "light_2"): "light"}
ROUTINES = [  # (hour, minute, actions, description)
    (7, 0, [Action("bedroom", "curtain", "action", "open"), Action("bedroom", "light", "power", "on")],
     "Open the bedroom curtain and turn on the light"),
    (7, 20, [Action("kitchen", "kettle", "power", "on")], "Turn on the kitchen kettle"),
    (19, 0, [Action("living_room", "tv", "power", "on"), Action("living_room", "light", "brightness", "60")],
     "Turn on the living room TV and dim the light to 60"),
    (21, 0, [Action("bedroom", "ac", "target_temperature", "26")], "Set the bedroom AC to 26"),
    (22, 30, [Action("living_room", "light_2", "power", "off"), Action("bedroom", "curtain", "action", "close")],
     "Turn off the living room lamp and close the bedroom curtain"),
]


def make_operations(n_days: int, seed: int) -> list[Operation]:
    rng = np.random.default_rng(seed)
    ops = []
    start = datetime(2026, 3, 2)
    for d in range(n_days):
        for hour, minute, acts, desc in ROUTINES:
            t = start + timedelta(days=d, hours=hour, minutes=minute + int(rng.integers(-5, 6)))
            env = (EnvReading("bedroom", "temperature", str(int(rng.integers(18, 27)))),
                   EnvReading("outdoor", "temperature", str(int(rng.integers(5, 20)))))
            ops.append(Operation(time=t, actions=tuple(acts), environment=env, description=desc, home="h0"))
    return ops


def _write(root: Path, config: str, rows: dict, n_shards: int = 1) -> None:
    schema = SCHEMAS[config]
    n = len(next(iter(rows.values())))
    cdir = root / "data" / config
    cdir.mkdir(parents=True, exist_ok=True)
    for s in range(n_shards):
        part = {k: v[s::n_shards] for k, v in rows.items()}
        pq.write_table(pa.table(part, schema=schema), cdir / f"train-{s:05d}-of-{n_shards:05d}.parquet")
    assert n > 0


def write_dataset(root: Path, n_days: int = 10, seed: int = 0) -> Path:
    """pretrain / sft / dpo configs of one home over ``n_days``; returns ``root``."""
    ops = make_operations(n_days, seed)
    devices = list(DEVICES)
    dev_struct = [{"room": r, "device": d, "type": t} for (r, d), t in DEVICES.items()]
    # pretrain: one serialised history (with descriptions) per two days
    texts = [serialize_history(ops[i:i + 10], desc=True) for i in range(0, len(ops), 10)]
    _write(root, "pretrain", {"home_id": ["h0"] * len(texts), "text": texts}, n_shards=2)
    sft: dict[str, list] = {k: [] for k in SCHEMAS["sft"].names}
    dpo: dict[str, list] = {k: [] for k in SCHEMAS["dpo"].names}
    for i, op in enumerate(ops[5:], start=5):
        prompt = prompt_text(ops[:i], op.time, op.environment, devices, k=4)  # short prompts: fast tests
        cats = sorted({device_type(DEVICES[a.target]).category for a in op.actions})
        for k, v in (("home_id", "h0"), ("user", "u0"), ("time", op.time), ("prompt", prompt),
                     ("completion", serialize_target(op.actions, op.description, "action-first")),
                     ("completion_text_first", serialize_target(op.actions, op.description, "text-first")),
                     ("actions", serialize_actions(op.actions)), ("description", op.description),
                     ("bucket", "6-10"), ("categories", cats), ("devices", dev_struct)):
            sft[k].append(v)
        # conflict negative: the inverse of the first action (or power off)
        a = op.actions[0]
        inv = {"open": "close", "close": "open", "on": "off", "off": "on"}.get(a.value)
        bad = Action(a.room, a.device, a.field, inv) if inv else Action(a.room, a.device, "power", "off")
        for k, v in (("home_id", "h0"), ("time", op.time), ("prompt", prompt),
                     ("chosen", serialize_target(op.actions, op.description)),
                     ("rejected", serialize_target((bad,), op.description)), ("negative_kind", "conflict")):
            dpo[k].append(v)
    _write(root, "sft", sft)
    _write(root, "dpo", dpo)
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))


@pytest.fixture()
def general_text_file(tmp_path) -> Path:
    p = tmp_path / "general.txt"
    p.write_text("The quick brown fox jumps over the lazy dog.\n\nA stitch in time saves nine.\n\n"
                 "Weather today is mild with light wind from the west.\n")
    return p

"""Shared fixtures for agent tests: a tiny hand-made dataset in the exact ``sft`` schema.

``tiny_sft_dataset`` is a dataset directory (``data/sft/{train,test}-00000-of-00001.parquet``)
whose label is determined by the time of day: each home follows the same daily ROUTINE (curtain
open in the morning, kettle at noon, light on in the evening, bath warmer at night, plus one
2-action bundle), with a few minutes of jitter, alongside distractor devices that are never
operated. Train = the first days, test = the last days (non-overlapping in time, like the real
splits). Rows are built with the one prompt builder and the one grammar, so any baseline that
reads real ``sft`` rows reads these.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.catalog import device_bucket, device_type
from sim.dataset.schema import SCHEMAS
from sim.prompts import prompt_text
from sim.records import Action, EnvReading, Operation, serialize_actions, serialize_target

# (hour, minute, actions, description): what every tiny home does each day
ROUTINE: tuple[tuple[int, int, tuple[Action, ...], str], ...] = (
    (7, 0, (Action("bedroom", "curtain", "action", "open"),), "open the bedroom curtain"),
    (12, 0, (Action("kitchen", "kettle", "power", "on"),), "boil water in the kitchen"),
    (18, 30, (Action("living_room", "light", "power", "on"),), "turn on the living room light"),
    (20, 0, (Action("living_room", "smart_plug", "power", "on"), Action("living_room", "ac", "power", "on")),
     "turn on the living room AC"),
    (22, 0, (Action("bathroom", "bath_warmer", "power", "on"),), "warm up the bathroom"),
)
ROUTINE_DEVICES = (("bedroom", "curtain", "curtain"), ("kitchen", "kettle", "kettle"),
                   ("living_room", "light", "light"), ("living_room", "smart_plug", "smart_plug"),
                   ("living_room", "ac", "ac"), ("bathroom", "bath_warmer", "bath_warmer"))
DISTRACTORS = (("bedroom", "light", "light"), ("study", "light", "light"), ("hallway", "wall_switch", "wall_switch"),
               ("living_room", "tv", "tv"), ("study", "fan", "fan"), ("bedroom", "humidifier", "humidifier"))


def sft_row(home_id: str, devices: list[tuple[str, str, str]], history: list[Operation], op: Operation) -> dict:
    """One row in the exact ``sft`` schema for decision ``op`` given the home's earlier ``history``."""
    types = {(r, d): t for r, d, t in devices}
    return {
        "home_id": home_id, "user": op.user or "u0", "time": op.time,
        "prompt": prompt_text(history, op.time, op.environment, [(r, d) for r, d, _ in devices]),
        "completion": serialize_target(op.actions, op.description),
        "completion_text_first": serialize_target(op.actions, op.description, "text-first"),
        "actions": serialize_actions(op.actions), "description": op.description,
        "bucket": device_bucket(len(devices)),
        "categories": sorted({device_type(types[a.target]).category for a in op.actions}),
        "devices": [{"room": r, "device": d, "type": t} for r, d, t in devices],
    }


def write_sft_dataset(out: Path, splits: dict[str, list[dict]]) -> Path:
    """Write ``{split: rows}`` as ``out/data/sft/<split>-00000-of-00001.parquet``; returns ``out``."""
    d = out / "data" / "sft"
    d.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS["sft"]), d / f"{split}-00000-of-00001.parquet")
    return out


def routine_splits(n_homes: int = 4, days: int = 8, test_days: int = 2, seed: int = 0,
                   jitter_min: int = 20) -> dict[str, list[dict]]:
    """Rows of homes following ROUTINE with +-``jitter_min`` minutes; the last ``test_days`` are test."""
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 2)  # a Monday
    splits: dict[str, list[dict]] = {"train": [], "test": []}
    for h in range(n_homes):
        n_extra = 2 + h % (len(DISTRACTORS) - 1)
        devices = list(ROUTINE_DEVICES) + list(DISTRACTORS[:n_extra])
        history: list[Operation] = []
        for day in range(days):
            for hour, minute, actions, desc in ROUTINE:
                t = start + timedelta(days=day, hours=hour, minutes=minute + int(rng.integers(-jitter_min, jitter_min)))
                env = (EnvReading("outdoor", "temperature", str(int(rng.integers(5, 25)))),
                       EnvReading("bedroom", "illuminance", str(int(rng.integers(0, 500)))))
                op = Operation(time=t, actions=actions, environment=env, description=desc, home=f"h{h}", user="u0")
                split = "test" if day >= days - test_days else "train"
                splits[split].append(sft_row(f"h{h}", devices, history, op))
                history.append(op)
    return splits


@pytest.fixture(scope="session")
def tiny_sft_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset dir whose sft label is determined by the time of day (see module docstring)."""
    return write_sft_dataset(tmp_path_factory.mktemp("tiny_sft"), routine_splits())


@pytest.fixture(scope="session")
def tiny_preset_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's ``tiny`` preset (``homepilot generate --preset tiny``), generated once per session."""
    from sim.dataset.build import DatasetConfig, build

    out = tmp_path_factory.mktemp("tiny_preset") / "data"
    build(DatasetConfig(out=str(out), preset="tiny", seed=0, workers=1))
    return out


def load_benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (benchmarks are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

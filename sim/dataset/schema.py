"""Column schemas of every dataset config: the contract between the dataset builder (writer)
and training, evaluation, the gym environments and the app (readers).

All text columns use the canonical grammar of ``sim.records``. Times are naive local
timestamps at second resolution (``timestamp[s]``). ``split`` is ``train``, ``test`` or
``test_unseen``. Sub-dataset keys on every sft/feedback row: ``bucket`` (device-count bucket
of the home: 1-5, 6-10, 11-20, 20+) and ``categories`` (catalogue categories operated by the
label, e.g. ``["Light", "AC"]``).
"""

from __future__ import annotations

import pyarrow as pa

DEVICE = pa.struct([("room", pa.string()), ("device", pa.string()), ("type", pa.string())])
# a device's Home Assistant entity (``homepilot import-ha`` records them; synthetic homes have none)
ENTITY = pa.struct([("room", pa.string()), ("device", pa.string()), ("entity_id", pa.string())])
TIME = pa.timestamp("s")

SCHEMAS: dict[str, pa.Schema] = {
    # one row per home
    "homes": pa.schema([
        ("home_id", pa.string()), ("index", pa.int32()), ("split", pa.string()),
        ("n_devices", pa.int32()), ("bucket", pa.string()), ("climate_zone", pa.string()),
        ("rooms", pa.list_(pa.string())), ("residents", pa.list_(pa.string())),
        ("devices", pa.list_(DEVICE)), ("entities", pa.list_(ENTITY)),
    ]),
    # raw environment and action log rows (sim.log.Event)
    "events": pa.schema([
        ("home_id", pa.string()), ("time", TIME), ("kind", pa.string()), ("room", pa.string()),
        ("device", pa.string()), ("field", pa.string()), ("value", pa.string()),
        ("source", pa.string()), ("user", pa.string()), ("logged", pa.bool_()),
    ]),
    # operation records (paper Fig. 2d); text = serialize_operation(op)
    "operations": pa.schema([
        ("home_id", pa.string()), ("user", pa.string()), ("time", TIME), ("source", pa.string()),
        ("logged", pa.bool_()), ("actions", pa.string()), ("description", pa.string()),
        ("n_actions", pa.int32()), ("categories", pa.list_(pa.string())), ("text", pa.string()),
    ]),
    # pre-training corpus: serialised histories (paper Eq. 1)
    "pretrain": pa.schema([("home_id", pa.string()), ("text", pa.string())]),
    # SFT: prompt ends on <rec>; completion = action-first target, completion_text_first = text-first
    "sft": pa.schema([
        ("home_id", pa.string()), ("user", pa.string()), ("time", TIME),
        ("prompt", pa.string()), ("completion", pa.string()), ("completion_text_first", pa.string()),
        ("actions", pa.string()), ("description", pa.string()),
        ("bucket", pa.string()), ("categories", pa.list_(pa.string())), ("devices", pa.list_(DEVICE)),
    ]),
    # DPO: chosen/rejected are action-first completions; negative_kind = time | conflict
    "dpo": pa.schema([
        ("home_id", pa.string()), ("time", TIME), ("prompt", pa.string()),
        ("chosen", pa.string()), ("rejected", pa.string()), ("negative_kind", pa.string()),
    ]),
    # logged exposures at app-open decision points (sim.log.Exposure) with their context
    "feedback": pa.schema([
        ("home_id", pa.string()), ("user", pa.string()), ("time", TIME), ("prompt", pa.string()),
        ("shown", pa.string()), ("description", pa.string()), ("propensity", pa.float64()),
        ("accepted", pa.bool_()), ("p_accept", pa.float64()),
        ("label", pa.string()),  # actions the user performed next (within the horizon), "" if none
        ("bucket", pa.string()), ("categories", pa.list_(pa.string())), ("devices", pa.list_(DEVICE)),
    ]),
}

#: Schemas of earlier generator versions that readers still accept, per config: ``homes`` without
#: ``entities`` (before generator 0.5.1). ``sim.dataset.validate`` passes them; readers that want a
#: column a legacy file lacks take its default (``sim.dataset.files.read_homes``: no entity ids).
LEGACY_SCHEMAS: dict[str, tuple[pa.Schema, ...]] = {
    "homes": (pa.schema([f for f in SCHEMAS["homes"] if f.name != "entities"]),),
}

CONFIGS: tuple[str, ...] = tuple(SCHEMAS)
SPLITS: tuple[str, ...] = ("train", "test", "test_unseen")

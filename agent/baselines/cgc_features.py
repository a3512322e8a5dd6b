"""Featurisation of the CGC baseline (``agent.baselines.cgc``): its vocabulary and padded arrays.

Inputs (all read from the parsed prompt and the home's device types, see ``candidates``):
- user features: time of day as sin/cos, weekday one-hot, weekend flag, outdoor readings
  (temperature, humidity, illuminance, weather) and mean indoor readings;
- history: the last ``history_actions`` actions of the prompt's history window, each as its
  room, device name, (type, field) and value ids plus its time (sin/cos of the time of day,
  log minutes before now, same weekday);
- device features, one row per candidate home-device: type, category, room and name ids, the
  readings of its room, whether/when/how often it appears in the history and the last
  (field, value) set on it there.

**Field sets**: which fields of one device are operated together: every single field, plus every
multi-field set some training label used on one device of that type. **Value vocabulary**: every
enum value of the catalogue, each numeric field's default and every numeric value seen in the
training split (labels and histories); rooms and device names come from training (unseen ->
``<unk>``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import torch

from sim.candidates import Types, home_devices
from sim.catalog import DEVICE_TYPES, INDICATORS, OUTDOOR, WEATHER, CatalogError, device_type
from sim.records import Action, Prompt

PAD, UNK = "<pad>", "<unk>"
N_SLOTS = max(len(t.fields) for t in DEVICE_TYPES.values())  # fields of the richest type (AC: 4)
_LOG_MIN = math.log1p(7 * 24 * 60)  # minutes scale: one week
_LOG_LUX = math.log1p(INDICATORS["illuminance"][2])


# ---------------------------------------------------------------- vocabulary


def _index(items: Sequence[str]) -> dict[str, int]:
    return {s: i for i, s in enumerate(items)}


def group_by_device(actions: Sequence[Action]) -> dict[tuple[str, str], dict[str, str]]:
    """Label actions per home-device, first-seen device order: target -> {field: value} (last wins)."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    for a in actions:
        out.setdefault(a.target, {})[a.field] = a.value
    return out


FIELD_KEYS: tuple[str, ...] = (PAD, *(f"{t}.{f}" for t, dt in DEVICE_TYPES.items() for f in dt.fields))
TYPES: tuple[str, ...] = (PAD, *DEVICE_TYPES)
CATEGORIES: tuple[str, ...] = (PAD, *sorted({t.category for t in DEVICE_TYPES.values()}))
ENUM_VALUES: tuple[str, ...] = tuple(dict.fromkeys(
    v for dt in DEVICE_TYPES.values() for f in dt.fields.values() if not f.is_numeric for v in f.values))
# every numeric field's default, so that each field has at least one legal value in the vocabulary
NUMERIC_DEFAULTS: tuple[str, ...] = tuple(dict.fromkeys(
    f.default for dt in DEVICE_TYPES.values() for f in dt.fields.values() if f.is_numeric))


def field_set_key(type_name: str, fields: Iterable[str]) -> str:
    """Canonical key of a set of fields of one device type: ``light:power+brightness`` (catalogue order)."""
    names = list(DEVICE_TYPES[type_name].fields)
    chosen = set(fields)
    unknown = chosen - set(names)
    if not chosen or unknown:
        raise CatalogError(f"device type {type_name!r} has no field(s) {sorted(unknown)}; fields: {', '.join(names)}")
    return f"{type_name}:" + "+".join(n for n in names if n in chosen)


SINGLE_SETS: tuple[str, ...] = tuple(field_set_key(t, [f]) for t, dt in DEVICE_TYPES.items() for f in dt.fields)


@dataclass
class Vocab:
    """Names the model embeds. Rooms and device names come from training (unseen -> ``<unk>``);
    values are the catalogue's enum values, numeric defaults and numeric values seen in training; field sets are
    every single field plus every multi-field set a training label operated on one device."""

    rooms: list[str]
    names: list[str]
    values: list[str]
    field_sets: list[str]
    room_ix: dict[str, int] = field(init=False, repr=False)
    name_ix: dict[str, int] = field(init=False, repr=False)
    value_ix: dict[str, int] = field(init=False, repr=False)
    set_ix: dict[str, int] = field(init=False, repr=False)
    type_sets: dict[str, list[int]] = field(init=False, repr=False)  # type -> its field-set ids

    def __post_init__(self) -> None:
        for kind in ("rooms", "names", "values"):
            if getattr(self, kind)[:2] != [PAD, UNK]:
                raise ValueError(f"vocab {kind} must start with {PAD!r}, {UNK!r}")
        if self.field_sets[:1] != [PAD] or not set(SINGLE_SETS) <= set(self.field_sets):
            raise ValueError(f"vocab field_sets must start with {PAD!r} and hold every single field of the catalogue")
        self.room_ix, self.name_ix, self.value_ix = _index(self.rooms), _index(self.names), _index(self.values)
        self.set_ix = _index(self.field_sets)
        self.type_sets = {t: [] for t in DEVICE_TYPES}
        for i, key in enumerate(self.field_sets[1:], start=1):
            t, fields = key.split(":", 1)
            if t not in DEVICE_TYPES or field_set_key(t, fields.split("+")) != key:
                raise ValueError(f"vocab field set {key!r} does not fit the catalogue; retrain the model")
            self.type_sets[t].append(i)

    @property
    def max_sets(self) -> int:
        """M: field sets of the type with the most."""
        return max(len(v) for v in self.type_sets.values())

    def set_slots(self) -> np.ndarray:
        """(n_sets, S) bool: field slot s (catalogue position) belongs to set k."""
        out = np.zeros((len(self.field_sets), N_SLOTS), dtype=bool)
        for k, key in enumerate(self.field_sets[1:], start=1):
            t, fields = key.split(":", 1)
            names = list(DEVICE_TYPES[t].fields)
            for f in fields.split("+"):
                out[k, names.index(f)] = True
        return out

    @classmethod
    def build(cls, contexts: Sequence[tuple[Prompt, Types]], labels: Sequence[Sequence[Action]]) -> Vocab:
        rooms, names, values, sets = {}, {}, dict.fromkeys(ENUM_VALUES + NUMERIC_DEFAULTS), dict.fromkeys(SINGLE_SETS)
        actions = [a for lab in labels for a in lab]
        for (prompt, types), label in zip(contexts, labels, strict=True):
            for room, name in types:
                rooms[room], names[name] = None, None
            actions += [a for op in prompt.history for a in op.actions]
            for target, fields in group_by_device(label).items():
                if target in types:
                    sets[field_set_key(types[target], fields)] = None
        for a in actions:
            values[a.value] = None
        return cls([PAD, UNK, *sorted(rooms)], [PAD, UNK, *sorted(names)], [PAD, UNK, *values], [PAD, *sets])

    def to_json(self) -> dict:
        return {"rooms": self.rooms, "names": self.names, "values": self.values, "field_sets": self.field_sets,
                "field_keys": list(FIELD_KEYS)}

    def value_mask(self) -> np.ndarray:
        """(n_field_keys, n_values) bool: value v is legal on (type, field) k."""
        mask = np.zeros((len(FIELD_KEYS), len(self.values)), dtype=bool)
        for k, key in enumerate(FIELD_KEYS[1:], start=1):
            t, f = key.split(".", 1)
            spec = device_type(t).field(f)
            mask[k] = [spec.allows(v) for v in self.values]
        return mask


# ---------------------------------------------------------------- features

FK_IX = _index(FIELD_KEYS)
TYPE_IX = _index(TYPES)
CAT_IX = _index(CATEGORIES)
N_USER = 2 * 2 + 7 + 1 + 4 + len(WEATHER) + 4  # time sin/cos x2, weekday, weekend, outdoor 4, weather, indoor 4
N_DEV = 5 + 3  # room readings (4 + present flag), history presence/recency/count
N_HIST = 4  # op time-of-day sin/cos, log minutes before now, same weekday


def _tod(t: datetime) -> tuple[float, float]:
    a = 2 * math.pi * (t.hour * 60 + t.minute) / 1440.0
    return math.sin(a), math.cos(a)


def _reading(indicator: str, value: str) -> float | None:
    """Indicator value scaled to about [0, 1] (illuminance on a log scale), None if unparsable."""
    try:
        x = float(value)
    except ValueError:
        return None
    if indicator == "illuminance":
        return math.log1p(max(x, 0.0)) / _LOG_LUX
    if indicator in INDICATORS:
        _, lo, hi = INDICATORS[indicator]
        return (x - lo) / (hi - lo)
    return None


_IND_ORDER = ("temperature", "humidity", "illuminance", "occupancy")


@dataclass
class Features:
    """Padded arrays for a batch of contexts (B contexts, D devices, H history actions, S slots)."""

    user: np.ndarray  # (B, N_USER) float32
    hist_ix: np.ndarray  # (B, H, 4) int64: room, name, field key, value
    hist_x: np.ndarray  # (B, H, N_HIST) float32
    hist_mask: np.ndarray  # (B, H) bool, True = real token
    dev_ix: np.ndarray  # (B, D, 6) int64: room, name, type, category, last field key, last value
    dev_x: np.ndarray  # (B, D, N_DEV) float32
    dev_mask: np.ndarray  # (B, D) bool
    slot_fk: np.ndarray  # (B, D, S) int64 field key of each field slot, 0 = none
    dev_sets: np.ndarray  # (B, D, M) int64 field-set ids the device's type can take, 0 = none
    devices: list[tuple[tuple[str, str], ...]]  # the candidate devices of each context, in D order

    def tensors(self, idx: np.ndarray | slice = slice(None)) -> dict[str, torch.Tensor]:
        names = ("user", "hist_ix", "hist_x", "hist_mask", "dev_ix", "dev_x", "dev_mask", "slot_fk", "dev_sets")
        return {n: torch.from_numpy(np.ascontiguousarray(getattr(self, n)[idx])) for n in names}


def featurize(contexts: Sequence[tuple[Prompt, Types]], vocab: Vocab, history_actions: int) -> Features:
    """Featurise (prompt, types) contexts; raises CatalogError naming an untyped/unknown device."""
    b = len(contexts)
    devs = [home_devices(p, t) for p, t in contexts]
    d_max, h = max([len(d) for d in devs] + [1]), history_actions
    f = Features(np.zeros((b, N_USER), np.float32), np.zeros((b, h, 4), np.int64),
                 np.zeros((b, h, N_HIST), np.float32), np.zeros((b, h), bool),
                 np.zeros((b, d_max, 6), np.int64), np.zeros((b, d_max, N_DEV), np.float32),
                 np.zeros((b, d_max), bool), np.zeros((b, d_max, N_SLOTS), np.int64),
                 np.zeros((b, d_max, vocab.max_sets), np.int64), devs)
    r_ix, n_ix, v_ix = vocab.room_ix, vocab.name_ix, vocab.value_ix
    for i, ((prompt, types), devices) in enumerate(zip(contexts, devs, strict=True)):
        now = prompt.time
        # environment: per room, indicator -> scaled value
        rooms: dict[str, dict[str, float]] = {}
        weather = None
        for r in prompt.environment:
            if r.indicator == "weather":
                weather = r.value
            elif (x := _reading(r.indicator, r.value)) is not None:
                rooms.setdefault(r.room, {})[r.indicator] = x
        outdoor = rooms.pop(OUTDOOR, {})
        indoor = [np.mean([v[k] for v in rooms.values() if k in v] or [0.0]) for k in _IND_ORDER]
        s1, c1 = _tod(now)
        a2 = 2 * math.atan2(s1, c1)
        wd = np.eye(7, dtype=np.float32)[now.weekday()]
        wx = [float(weather == w) for w in WEATHER]
        f.user[i] = [s1, c1, math.sin(a2), math.cos(a2), *wd, float(now.weekday() >= 5),
                     *(outdoor.get(k, 0.0) for k in _IND_ORDER), *wx, *indoor]
        # history: flatten ops into actions, keep the last h
        acts = [(op.time, a) for op in prompt.history for a in op.actions][-h:]
        last: dict[tuple[str, str], tuple[datetime, Action, int]] = {}
        for j, (t, a) in enumerate(acts):
            typ = types.get(a.target)
            fk = FK_IX.get(f"{typ}.{a.field}", 0)
            f.hist_ix[i, j] = (r_ix.get(a.room, 1), n_ix.get(a.device, 1), fk, v_ix.get(a.value, 1))
            mins = max((now - t).total_seconds() / 60.0, 0.0)
            f.hist_x[i, j] = (*_tod(t), math.log1p(mins) / _LOG_MIN, float(t.weekday() == now.weekday()))
            f.hist_mask[i, j] = True
            count = last[a.target][2] + 1 if a.target in last else 1
            last[a.target] = (t, a, count)
        # devices
        for j, target in enumerate(devices):
            typ = types[target]
            room_env = rooms.get(target[0], {})
            seen = last.get(target)
            fk_last, v_last, recency, count = 0, 0, 1.0, 0.0
            if seen is not None:
                fk_last = FK_IX.get(f"{typ}.{seen[1].field}", 0)
                v_last = v_ix.get(seen[1].value, 1)
                recency = math.log1p(max((now - seen[0]).total_seconds() / 60.0, 0.0)) / _LOG_MIN
                count = seen[2] / h
            f.dev_ix[i, j] = (r_ix.get(target[0], 1), n_ix.get(target[1], 1), TYPE_IX[typ],
                              CAT_IX[DEVICE_TYPES[typ].category], fk_last, v_last)
            f.dev_x[i, j] = (*(room_env.get(k, 0.0) for k in _IND_ORDER), float(bool(room_env)),
                             float(seen is not None), recency, count)
            f.dev_mask[i, j] = True
            for s, name in enumerate(DEVICE_TYPES[typ].fields):
                f.slot_fk[i, j, s] = FK_IX[f"{typ}.{name}"]
            sets = vocab.type_sets[typ]
            f.dev_sets[i, j, :len(sets)] = sets
    return f

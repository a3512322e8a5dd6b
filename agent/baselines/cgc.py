"""CGC: the paper's feature-based multi-task baseline (DevPiolt Sec. 4.1), in torch.

Customized Gate Control (CGC) is the single-level form of PLE (Tang et al., RecSys 2020): a set
of *shared* experts plus *task-specific* experts; each task has a gate, a softmax over its own
experts and the shared ones, whose mixture feeds the task's tower. Here the tasks are the three
parts of an action: (1) which home-device to operate, (2) which of its fields, (3) which value.

Inputs (all read from the parsed prompt and the home's device types, see ``candidates``):
- user features (MLP): time of day as sin/cos, weekday one-hot, weekend flag, outdoor readings
  (temperature, humidity, illuminance, weather) and mean indoor readings;
- history: the last ``history_actions`` actions of the prompt's history window, each embedded
  from its room, device name, (type, field) and value plus its time (sin/cos of the time of day,
  log minutes before now), encoded by a small Transformer with a CLS token;
- device features (MLP, one vector per candidate home-device): type, category, room and name
  embeddings, the readings of its room, whether/when/how often it appears in the history and
  the last (field, value) set on it there.

Tasks and candidates. About a third of the simulator's labels are multi-action, mostly several
fields of one device (``power on`` + ``mode heat``), sometimes a second device (plug + AC). So
the field task classifies the device's *field set* (which fields are operated together: every
single field, plus every multi-field set some training label used on one device of that type),
and the value task classifies, for each field of the set, its value given device, set and field.
The legal candidates of a home are devices x field sets x values, scored as
log p(device) + log p(set | device) + sum over the set's fields of log p(value | device, set,
field), each softmax masked to what is legal (the home's devices; the type's field sets; the
values the catalogue allows on that field). **Value vocabulary**: every enum value of the
catalogue, each numeric field's default and every numeric value seen in the training split
(labels and histories); numeric
grid points never seen in training are not predicted (a light's 100 brightness steps collapse to
the few people actually use). Training gives one example per home-device a label operates, so
p(device) learns the share of a label's devices.

Prediction: the argmax candidate, plus, for every other device with p(device) >=
``device_threshold``, its own best set and values (cross-device bundles). With
``tune_thresholds`` the threshold (or None = off) is chosen on a held-out share of the train rows
to maximise EM-Acc. Confidence = the argmax candidate's probability: p(device) x p(set | device)
x the product of its value probabilities (for a single action, the product of the three softmax
probabilities).

Training lives in ``agent.baselines.cgc_train`` (``train_cgc``); this module holds the config,
the vocabulary and featurisation, the torch module and the ``CGCModel`` wrapper.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agent.baselines.candidates import Types, home_devices
from sim.catalog import DEVICE_TYPES, INDICATORS, OUTDOOR, WEATHER, CatalogError, device_type
from sim.records import Action, Prompt

PAD, UNK = "<pad>", "<unk>"
N_SLOTS = max(len(t.fields) for t in DEVICE_TYPES.values())  # fields of the richest type (AC: 4)
_LOG_MIN = math.log1p(7 * 24 * 60)  # minutes scale: one week
_LOG_LUX = math.log1p(INDICATORS["illuminance"][2])


@dataclass
class CGCConfig:
    """Hyper-parameters of the CGC baseline (model and training)."""

    seed: int = 0  # torch.manual_seed and the shuffling generator
    epochs: int = 12  # passes over the training examples (at least; see min_steps)
    min_steps: int = 120  # more epochs when the data is small, so that training takes >= this many steps
    batch_size: int = 256  # examples per optimiser step (large: per-step overhead dominates on CPU)
    lr: float = 8e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4  # AdamW weight decay
    d_model: int = 64  # width of embeddings, history Transformer and encoders
    d_expert: int = 64  # output width of every expert
    n_shared_experts: int = 2  # experts every task's gate mixes in
    n_task_experts: int = 1  # experts owned by each of the three tasks
    n_heads: int = 4  # attention heads of the history Transformer
    n_layers: int = 1  # history Transformer layers
    history_actions: int = 16  # last K history actions encoded (ops flattened into actions)
    dropout: float = 0.05  # dropout in the history Transformer and the experts (not in the per-device
    # encoder/towers: sampling masks over (batch, devices, ...) cost a quarter of a CPU step)
    label_actions: str = "all"  # "all": one example per home-device a label operates; "first": the first only
    device_threshold: float | None = None  # extra devices at p(d) >= this; None = off
    tune_thresholds: bool = True  # choose device_threshold on held-out train rows (overrides the above)
    val_fraction: float = 0.1  # share of train rows held out (seeded) for tuning the threshold
    max_rows: int | None = None  # cap on training rows (first N, in file order); None = all
    num_threads: int = 1  # torch intra-op threads while training/predicting (restored after); the
    # matmuls are tiny, and on a busy 2-core box 2 spinning threads ran ~5x slower than 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "d_model", "d_expert", "n_shared_experts", "n_heads", "n_layers",
                     "history_actions", "num_threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CGCConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_steps < 0:
            raise ValueError(f"CGCConfig.min_steps must be >= 0, got {self.min_steps}")
        if self.n_task_experts < 0:
            raise ValueError(f"CGCConfig.n_task_experts must be >= 0, got {self.n_task_experts}")
        if self.d_model % self.n_heads:
            raise ValueError(f"CGCConfig.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CGCConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"CGCConfig needs lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.label_actions not in ("all", "first"):
            raise ValueError(f"CGCConfig.label_actions must be 'all' or 'first', got {self.label_actions!r}")
        if self.device_threshold is not None and not 0.0 < self.device_threshold <= 1.0:
            raise ValueError(f"CGCConfig.device_threshold must be in (0, 1] or None, got {self.device_threshold}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"CGCConfig.val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"CGCConfig.max_rows must be >= 1 or None, got {self.max_rows}")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, restoring the previous count after."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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


# ---------------------------------------------------------------- the network


def _mlp(d_in: int, d_hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    drop = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), *drop, nn.Linear(d_hidden, d_out))


class CGCLayer(nn.Module):
    """Customized Gate Control (Tang et al. 2020, Eq. 1-3): per task k,
    t_k = sum_j g_k(x)_j E_j(x) over task-k experts and shared experts, g_k = softmax(W_k x)."""

    def __init__(self, d_in: int, d_expert: int, n_tasks: int, n_shared: int, n_task: int, dropout: float) -> None:
        super().__init__()
        self.n_tasks, self.n_task = n_tasks, n_task
        self.shared = nn.ModuleList(_mlp(d_in, d_expert, d_expert, dropout) for _ in range(n_shared))
        self.task = nn.ModuleList(_mlp(d_in, d_expert, d_expert, dropout) for _ in range(n_tasks * n_task))
        self.gates = nn.ModuleList(nn.Linear(d_in, n_task + n_shared) for _ in range(n_tasks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # x (B, d_in) -> n_tasks x (B, d_expert)
        shared = [e(x) for e in self.shared]
        out = []
        for k, gate in enumerate(self.gates):
            experts = [self.task[k * self.n_task + j](x) for j in range(self.n_task)] + shared
            stack = torch.stack(experts, dim=1)  # (B, n_task + n_shared, d_expert)
            g = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # (B, n_task + n_shared, 1)
            out.append((g * stack).sum(dim=1))
        return out


class CGCNet(nn.Module):
    """User MLP + history Transformer -> CGC -> device / field / value towers over device features."""

    def __init__(self, cfg: CGCConfig, n_rooms: int, n_names: int, n_values: int, value_mask: np.ndarray,
                 set_slots: np.ndarray) -> None:
        super().__init__()
        d, e, p = cfg.d_model, cfg.d_expert, cfg.dropout
        self.room = nn.Embedding(n_rooms, d, padding_idx=0)
        self.name = nn.Embedding(n_names, d, padding_idx=0)
        self.fkey = nn.Embedding(len(FIELD_KEYS), d, padding_idx=0)
        self.value = nn.Embedding(n_values, d, padding_idx=0)
        self.dtype_ = nn.Embedding(len(TYPES), d, padding_idx=0)
        self.category = nn.Embedding(len(CATEGORIES), d, padding_idx=0)
        self.fset = nn.Embedding(len(set_slots), d, padding_idx=0)
        self.hist_time = nn.Linear(N_HIST, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, 2 * d, p, batch_first=True)
        self.history = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.user = _mlp(N_USER, d, d, p)
        self.cgc = CGCLayer(2 * d, e, 3, cfg.n_shared_experts, cfg.n_task_experts, p)
        self.device_enc = _mlp(N_DEV + d, d, e, 0.0)
        self.device_tower = _mlp(2 * e, e, 1, 0.0)
        self.field_tower = _mlp(2 * e + d, e, 1, 0.0)
        self.value_tower = _mlp(2 * e + 2 * d, e, n_values, 0.0)
        self.register_buffer("value_mask", torch.from_numpy(value_mask), persistent=False)
        self.register_buffer("set_slots", torch.from_numpy(set_slots), persistent=False)

    def encode(self, b: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Task representations 3 x (B, e) and device encodings (B, D, e)."""
        hi = b["hist_ix"]
        tok = self.room(hi[..., 0]) + self.name(hi[..., 1]) + self.fkey(hi[..., 2]) + self.value(hi[..., 3])
        tok = tok + self.hist_time(b["hist_x"])  # (B, H, d)
        cls = self.cls.expand(tok.shape[0], 1, -1)
        seq = torch.cat([cls, tok], dim=1)  # (B, 1 + H, d)
        pad = torch.cat([torch.zeros_like(b["hist_mask"][:, :1]), ~b["hist_mask"]], dim=1)
        hist = self.history(seq, src_key_padding_mask=pad)[:, 0]  # (B, d) CLS output
        tasks = self.cgc(torch.cat([self.user(b["user"]), hist], dim=-1))
        di = b["dev_ix"]
        emb = (self.room(di[..., 0]) + self.name(di[..., 1]) + self.dtype_(di[..., 2]) + self.category(di[..., 3])
               + self.fkey(di[..., 4]) + self.value(di[..., 5]))  # (B, D, d)
        dev = self.device_enc(torch.cat([b["dev_x"], emb], dim=-1))  # (B, D, e)
        return tasks, dev

    def device_logp(self, t: torch.Tensor, dev: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, D) log p(device), masked to the home's devices."""
        x = torch.cat([t.unsqueeze(1).expand(-1, dev.shape[1], -1), dev], dim=-1)
        logits = self.device_tower(x).squeeze(-1).masked_fill(~mask, -1e9)
        return torch.log_softmax(logits, dim=-1)

    def field_logp(self, t: torch.Tensor, dev: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
        """(..., M) log p(field set | device); dev (..., e), sets (..., M) set ids, t broadcast to dev."""
        x = torch.cat([t.expand(*dev.shape[:-1], -1).unsqueeze(-2).expand(*sets.shape, -1),
                       dev.unsqueeze(-2).expand(*sets.shape, -1), self.fset(sets)], dim=-1)
        logits = self.field_tower(x).squeeze(-1).masked_fill(sets == 0, -1e9)
        return torch.log_softmax(logits, dim=-1)

    def value_logp(self, t: torch.Tensor, dev: torch.Tensor, fk: torch.Tensor, fset: torch.Tensor) -> torch.Tensor:
        """(..., V) log p(value | device, field set, field); dev (..., e), fk/fset (...) ids, t broadcast."""
        x = torch.cat([t.expand(*dev.shape[:-1], -1), dev, self.fkey(fk), self.fset(fset)], dim=-1)
        logits = self.value_tower(x).masked_fill(~self.value_mask[fk], -1e9)
        return torch.log_softmax(logits, dim=-1)

    def loss(self, b: dict[str, torch.Tensor], dev_y: torch.Tensor, set_y: torch.Tensor,
             value_y: torch.Tensor) -> torch.Tensor:
        """Sum of the three tasks' cross-entropies, teacher-forced on the label's device and field set.

        dev_y (B,) device index; set_y (B,) position among the device's field sets; value_y (B, S)
        value index per field slot, -100 on slots outside the set."""
        (t_d, t_f, t_v), dev = self.encode(b)
        nll_d = -self.device_logp(t_d, dev, b["dev_mask"]).gather(1, dev_y[:, None]).squeeze(1)
        rows = torch.arange(dev.shape[0])
        dev_true = dev[rows, dev_y]  # (B, e)
        sets = b["dev_sets"][rows, dev_y]  # (B, M)
        nll_f = -self.field_logp(t_f, dev_true, sets).gather(1, set_y[:, None]).squeeze(1)
        s = value_y.shape[1]
        set_id = sets.gather(1, set_y[:, None]).expand(-1, s)  # (B, S)
        dev_s = dev_true.unsqueeze(1).expand(-1, s, -1)  # (B, S, e)
        lp_v = self.value_logp(t_v.unsqueeze(1), dev_s, b["slot_fk"][rows, dev_y], set_id)  # (B, S, V)
        nll_v = nn.functional.nll_loss(lp_v.flatten(0, 1), value_y.flatten(), ignore_index=-100,
                                       reduction="none").view(-1, s).sum(1)
        return (nll_d + nll_f + nll_v).mean()

    def task_logp(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(device) (B, D), log p(field set | device) (B, D, M), log p(value | device, set, field)
        (B, D, M, S, V)."""
        (t_d, t_f, t_v), dev = self.encode(b)
        lp_d = self.device_logp(t_d, dev, b["dev_mask"])
        lp_f = self.field_logp(t_f.unsqueeze(1), dev, b["dev_sets"])
        s = b["slot_fk"].shape[-1]
        shape = (*b["dev_sets"].shape, s)  # (B, D, M, S)
        dev_ms = dev[:, :, None, None, :].expand(*shape, -1)
        fk = b["slot_fk"].unsqueeze(2).expand(shape)
        fset = b["dev_sets"].unsqueeze(-1).expand(shape)
        lp_v = self.value_logp(t_v[:, None, None, None, :], dev_ms, fk, fset)
        return lp_d, lp_f, lp_v


# ---------------------------------------------------------------- the recommender


@dataclass(frozen=True)
class CGCPrediction:
    """The recommended actions and their confidence (module docstring: product of softmax probabilities)."""

    actions: tuple[Action, ...]
    confidence: float


@dataclass(frozen=True)
class TaskProbs:
    """One context's task probabilities over its D candidate devices, M field sets and S field slots."""

    devices: tuple[tuple[str, str], ...]  # (D,) candidate (room, device), prompt order
    p_device: np.ndarray  # (D,) p(device)
    p_set: np.ndarray  # (D, M) p(field set | device), 0 on padding
    set_ids: np.ndarray  # (D, M) field-set ids (vocab), 0 = padding
    value: np.ndarray  # (D, M, S) argmax value index per (device, set, slot)
    p_value: np.ndarray  # (D, M, S) its probability


def decode(tp: TaskProbs, types: Types, vocab: Vocab, set_slots: np.ndarray,
           device_threshold: float | None) -> CGCPrediction:
    """Actions and confidence from task probabilities (module docstring, Prediction)."""
    in_set = set_slots[tp.set_ids]  # (D, M, S) bool
    p_vals = np.where(in_set, tp.p_value, 1.0).prod(axis=-1)  # (D, M) product over the set's fields
    joint = tp.p_device[:, None] * tp.p_set * p_vals  # (D, M)
    d1, m1 = np.unravel_index(int(np.argmax(joint)), joint.shape)
    chosen = [(int(d1), int(m1))]
    if device_threshold is not None:
        chosen += [(int(d), int(np.argmax(joint[d]))) for d in np.argsort(-tp.p_device, kind="stable")
                   if d != d1 and tp.p_device[d] >= device_threshold]
    actions: list[Action] = []
    for d, m in chosen:
        room, device = tp.devices[d]
        names = list(DEVICE_TYPES[types[(room, device)]].fields)
        for slot in np.flatnonzero(in_set[d, m]):  # catalogue field order: power before its settings
            actions.append(Action(room, device, names[slot], vocab.values[int(tp.value[d, m, slot])]))
    return CGCPrediction(tuple(actions), float(min(joint[d1, m1], 1.0)))


WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE = "model.safetensors", "config.json", "vocab.json"


class CGCModel:
    """A trained CGC baseline: ``predict(prompt, types)`` -> ``CGCPrediction``; ``save``/``load``
    write and read ``model.safetensors`` + ``config.json`` + ``vocab.json`` (no pickle)."""

    name = "cgc"

    def __init__(self, config: CGCConfig, vocab: Vocab, net: CGCNet | None = None, stats: dict | None = None) -> None:
        self.config, self.vocab = config, vocab
        self.set_slots = vocab.set_slots()
        self.net = net if net is not None else CGCNet(config, len(vocab.rooms), len(vocab.names), len(vocab.values),
                                                      vocab.value_mask(), self.set_slots)
        self.stats = dict(stats or {})

    def featurize(self, contexts: Sequence[tuple[Prompt, Types]]) -> Features:
        return featurize(contexts, self.vocab, self.config.history_actions)

    def task_probs(self, contexts: Sequence[tuple[Prompt, Types]], batch_size: int = 32) -> list[TaskProbs]:
        """Per-context task probabilities (eval mode, no grad; batches bound the (B, D, M, S, V) tensor)."""
        out: list[TaskProbs] = []
        with torch_threads(self.config.num_threads), torch.no_grad():
            self.net.eval()
            for start in range(0, len(contexts), batch_size):
                feats = self.featurize(contexts[start:start + batch_size])
                lp_d, lp_f, lp_v = self.net.task_logp(feats.tensors())
                p_d, p_f = lp_d.exp().numpy(), lp_f.exp().numpy()
                best_lp, best = lp_v.max(dim=-1)  # (B, D, M, S)
                p_v, best = best_lp.exp().numpy(), best.numpy()
                for i, devs in enumerate(feats.devices):
                    n = len(devs)
                    out.append(TaskProbs(devs, p_d[i, :n], p_f[i, :n], feats.dev_sets[i, :n], best[i, :n], p_v[i, :n]))
        return out

    def predict_batch(self, contexts: Sequence[tuple[Prompt, Types]], batch_size: int = 32) -> list[CGCPrediction]:
        """Recommended actions and confidence per (prompt, types) context."""
        return [decode(tp, types, self.vocab, self.set_slots, self.config.device_threshold)
                for tp, (_, types) in zip(self.task_probs(contexts, batch_size), contexts, strict=True)]

    def predict(self, prompt: Prompt, types: Types) -> CGCPrediction:
        return self.predict_batch([(prompt, types)])[0]

    def save(self, out_dir: str | Path) -> Path:
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: t.contiguous() for k, t in self.net.state_dict().items()}, str(out / WEIGHTS_FILE))
        (out / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        (out / VOCAB_FILE).write_text(json.dumps({**self.vocab.to_json(), "stats": self.stats}, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, model_dir: str | Path) -> CGCModel:
        from safetensors.torch import load_file

        d = Path(model_dir)
        for name in (WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(f"CGC model file missing: {d / name}")
        config = CGCConfig(**json.loads((d / CONFIG_FILE).read_text()))
        raw = json.loads((d / VOCAB_FILE).read_text())
        if raw.get("field_keys") != list(FIELD_KEYS):
            raise ValueError(f"{d / VOCAB_FILE}: field keys differ from the current catalogue; retrain the model")
        model = cls(config, Vocab(raw["rooms"], raw["names"], raw["values"], raw["field_sets"]),
                    stats=raw.get("stats"))
        model.net.load_state_dict(load_file(str(d / WEIGHTS_FILE)))
        model.net.eval()
        return model

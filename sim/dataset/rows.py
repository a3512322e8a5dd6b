"""From one home's log to the rows of every dataset config (pure: no files, no progress bars).

``home_rows(log, spec)`` returns ``{(config, split): pyarrow.Table}`` with exactly the schema
``sim.dataset.schema.SCHEMAS[config]``, rows in time order. Split rules:

- a *seen* home (``spec.unseen`` False): everything before ``spec.cutoff`` is ``train``,
  everything from it on is ``test`` (non-overlapping in time);
- an *unseen* home: its homes/events/operations rows are all ``test_unseen`` (earlier days give
  the prompts their history), its sft/feedback rows come from the test period only.

Per config: ``homes`` (one row), ``events`` (raw log rows), ``operations`` (logged and
unlogged, paper Fig. 2d), ``pretrain`` (train split only: one row per home-day,
``serialize_history(day's logged operations, env=True, desc=True)``), ``sft`` (sampled logged
operations: decision-time prompt from ``sim.prompts``, completions from ``serialize_target``), ``dpo``
(train split only: for sampled sft rows, one mined negative each, ``sim.dataset.negatives``) and
``feedback`` (logged exposures with the label = actions of the user's next logged operation
within ``spec.feedback_horizon_s``).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sim.catalog import OUTDOOR, device_type
from sim.dataset.negatives import NegativeMiner
from sim.dataset.schema import SCHEMAS
from sim.dataset.shards import to_table
from sim.describe import describe
from sim.log import Event, EventTable, HomeLog, HomeSpec
from sim.prompts import HISTORY_K, HistoryIndex, context_rooms, make_prompt
from sim.records import (
    Action,
    EnvReading,
    Operation,
    Prompt,
    serialize_actions,
    serialize_history,
    serialize_operation,
    serialize_prompt,
)
from sim.records import serialize_target as target

Rows = dict[str, list]
RowTables = dict[tuple[str, str], pa.Table]

# independent random streams per home, derived from (seed, home index, stream) like the simulator's
STREAM_SFT, STREAM_TEST, STREAM_DPO = 1001, 1002, 1003
SFT_SOURCES: tuple[str, ...] = ("app", "voice", "physical")  # automations are not recommendations
PROGRESS_EVERY = 2000  # logged operations between two progress calls of home_rows
CHUNK_ROWS = 8192  # rows of a (config, split) held as Python lists before they become a pyarrow table


def row_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """The generator of one (seed, home, purpose): independent of worker count and engine."""
    return np.random.default_rng([seed, index, stream])


@dataclass(frozen=True)
class RowSpec:
    """How rows are cut from a home log."""

    cutoff: datetime  # first instant of the test period
    unseen: bool = False  # home never in train (test_unseen)
    seed: int = 0
    sft_rate: float = 1.0  # probability that a train-period logged operation becomes an sft row
    test_keep: Mapping[str, float] = field(default_factory=dict)  # bucket -> keep probability of test rows
    dpo_rate: float = 1.0  # probability that an sft train row is mined for a dpo pair
    history_k: int = HISTORY_K  # operations in the prompt's history window
    feedback_horizon_s: int = 1800  # the label is the next operation within 30 min of an exposure
    sources: tuple[str, ...] = SFT_SOURCES  # operation sources that become sft/dpo rows

    def __post_init__(self) -> None:
        for name in ("sft_rate", "dpo_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"RowSpec.{name} must be in [0, 1], got {v}")
        for b, v in self.test_keep.items():
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"RowSpec.test_keep[{b!r}] must be in [0, 1], got {v}")


# ---------------------------------------------------------------- small parts


def categories(actions: Iterable[Action], types: Mapping[tuple[str, str], str]) -> list[str]:
    """Catalogue categories of the operated devices, in order of first appearance."""
    out: dict[str, None] = {}
    for a in actions:
        t = types.get(a.target)
        if t is not None:
            out.setdefault(device_type(t).category, None)
    return list(out)


def device_rows(home: HomeSpec) -> list[dict[str, str]]:
    return [{"room": d.room, "device": d.name, "type": d.type} for d in home.devices]


def entity_rows(home: HomeSpec) -> list[dict[str, str]]:
    """The ``homes`` row's ``entities``: one {room, device, entity_id} per real entity of a device."""
    return [{"room": d.room, "device": d.name, "entity_id": e} for d in home.devices for e in d.entity_ids]


ROOM_INDICATORS: tuple[str, ...] = ("temperature", "humidity", "illuminance", "occupancy")  # a prompt's readings
OUTDOOR_INDICATORS: tuple[str, ...] = ("temperature", "illuminance", "weather")


class Environment:
    """Latest sensor/weather reading per (room, indicator) at a time, from the event log.

    Readings are indexed by minutes after ``start`` (an ``EventTable`` already stores them so),
    one sorted series per (room, indicator); ``at`` bisects.
    """

    def __init__(self, events: Iterable[Event] | EventTable, start: datetime) -> None:
        self.start = start
        series: dict[tuple[str, str], tuple[list[float], list[str]]] = defaultdict(lambda: ([], []))
        if isinstance(events, EventTable):
            cols = zip(events.minute, events.kind, events.room, events.field, events.value, strict=True)
        else:
            cols = (((e.time - start).total_seconds() / 60, e.kind, e.room, e.field, e.value) for e in events)
        for minute, kind, room, ind, value in cols:
            if kind == "sensor" or kind == "weather":
                ms, vs = series[(room, ind)]
                ms.append(minute)
                vs.append(value)
        self.series = dict(series)
        # presence sensors: per room, the times its occupancy rose (someone walked in)
        self.arrivals: dict[str, tuple[list[float], list[float]]] = {}  # room -> (arrival times, all report times)
        for (room, ind), (ms, vs) in self.series.items():
            if ind == "occupancy":
                rises = [m for i, m in enumerate(ms) if i and _num(vs[i]) > _num(vs[i - 1])]
                self.arrivals[room] = (rises, ms)

    def entered(self, t: datetime) -> tuple[str, ...]:
        """Occupied rooms by their latest arrival strictly before ``t``'s minute, newest first."""
        minute = (t.replace(second=0, microsecond=0) - self.start).total_seconds() / 60 - 1e-6
        out = []
        for room, (rises, ms) in self.arrivals.items():
            i = bisect.bisect_right(rises, minute)
            if not i:
                continue
            occ = self.series[(room, "occupancy")][1][bisect.bisect_right(ms, minute) - 1]
            if _num(occ) > 0:
                out.append((-rises[i - 1], room))
        return tuple(r for _, r in sorted(out))

    def at(self, t: datetime, rooms: Sequence[str], before: bool = False) -> tuple[EnvReading, ...]:
        """Readings of each room (``ROOM_INDICATORS``) then outdoor (``OUTDOOR_INDICATORS``)
        at or before ``t`` (strictly before ``t``'s minute with ``before``: what a decision at ``t``
        can know): the layout of the simulator's operation environment."""
        minute = (t - self.start).total_seconds() / 60
        if before:
            minute = (t.replace(second=0, microsecond=0) - self.start).total_seconds() / 60 - 1e-6
        out = []
        for room, inds in [*((r, ROOM_INDICATORS) for r in dict.fromkeys(rooms)), (OUTDOOR, OUTDOOR_INDICATORS)]:
            for ind in inds:
                ser = self.series.get((room, ind))
                if ser is None:
                    continue
                i = bisect.bisect_right(ser[0], minute + 1e-9)
                if i:
                    out.append(EnvReading(room, ind, ser[1][i - 1]))
        return tuple(out)


class DecisionPrompts:
    """The one way a home's decision-time prompt is made (sft, dpo, feedback rows; the simulator
    report's learnability probe): ``prompts(t)`` is the prompt text for a decision at ``t``, with
    the logged history strictly before ``t`` and the readings known before ``t``
    (``sim.prompts.context_rooms``; never the predicted operation's own environment)."""

    def __init__(self, log: HomeLog, history_k: int = HISTORY_K) -> None:
        self.home = log.home
        self.logged = log.logged_operations
        self.times = [o.time for o in self.logged]
        self.env = Environment(log.events, log.start)
        self.index = HistoryIndex(self.logged)  # one per home: a prompt per row then costs numpy passes
        self.history_k = history_k

    def prompt(self, t: datetime) -> Prompt:
        """The prompt record for a decision at ``t`` (``__call__`` serializes it)."""
        end = bisect.bisect_left(self.times, t.replace(second=0, microsecond=0))
        window = self.logged[max(0, end - self.history_k):end]
        p = make_prompt(self.index, t, (), self.home.targets, self.history_k)  # counts every op before t
        rooms = context_rooms(window, self.home.rooms, p.usual, self.env.entered(t))
        return replace(p, environment=self.env.at(t, rooms, before=True))

    def __call__(self, t: datetime) -> str:
        return serialize_prompt(self.prompt(t))


def _num(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return 0.0


def _empty(columns: Sequence[str]) -> Rows:
    return {c: [] for c in columns}


Sink = Callable[[tuple[str, str], pa.Table], None]


class _Tables:
    """Accumulates column lists per (config, split), turned into pyarrow tables every ``CHUNK_ROWS``
    rows (a year-long imported log makes ~10^5 rows a config: as Python objects they would take
    several times the memory of the table); each table is kept, or handed to ``sink``."""

    def __init__(self, sink: Sink | None = None) -> None:
        self.schemas = SCHEMAS
        self.tables: dict[tuple[str, str], Rows] = {}
        self.done: dict[tuple[str, str], list[pa.Table]] = defaultdict(list)  # tables made (kept without a sink)
        self.made: set[tuple[str, str]] = set()
        self.sink = sink

    def emit(self, key: tuple[str, str], table: pa.Table) -> None:
        self.made.add(key)
        if self.sink is None:
            self.done[key].append(table)
        else:
            self.sink(key, table)

    def add(self, config: str, split_: str, **row) -> None:
        rows = self.tables.get((config, split_))
        if rows is None:
            rows = self.tables[(config, split_)] = _empty(self.schemas[config].names)
        for k, v in row.items():
            rows[k].append(v)
        if len(rows["home_id"]) >= CHUNK_ROWS:
            self.emit((config, split_), to_table(config, rows))
            self.tables[(config, split_)] = _empty(self.schemas[config].names)

    def to_tables(self) -> RowTables:
        """Every (config, split) with its rows (empty with a sink: the sink has had them all)."""
        for key, rows in self.tables.items():
            if rows["home_id"] or key not in self.made:
                self.emit(key, to_table(key[0], rows))
        self.tables.clear()
        if self.sink is not None:
            return {}
        return {key: parts[0] if len(parts) == 1 else pa.concat_tables(parts) for key, parts in self.done.items()}


# ---------------------------------------------------------------- the composite


def home_rows(log: HomeLog, spec: RowSpec, progress: Callable[[int, int], None] | None = None,
              sink: Sink | None = None) -> RowTables:
    """Rows of every config for one home (see the module docstring for the split rules).

    ``progress(done, total)`` is called every ``PROGRESS_EVERY`` logged operations of the sft pass
    (the long part for a year-long imported log) and at its end. With ``sink``, the tables go to
    ``sink((config, split), table)`` as they are made (every ``CHUNK_ROWS`` rows, then the rest, in
    row order; several per key) and the result is empty: a caller that writes them as they come
    holds a chunk of rows at a time, not all of them."""
    home, hid = log.home, log.home.home_id
    types = home.types()
    devices = device_rows(home)
    out = _Tables(sink)

    def period(t: datetime) -> str:
        if spec.unseen:
            return "test_unseen"
        return "train" if t < spec.cutoff else "test"

    home_split = "test_unseen" if spec.unseen else "train"
    out.add("homes", home_split, home_id=hid, index=home.index, split=home_split, n_devices=home.n_devices,
            bucket=home.bucket, climate_zone=home.climate_zone, rooms=list(home.rooms),
            residents=list(home.residents), devices=devices, entities=entity_rows(home))

    if isinstance(log.events, EventTable):
        events = log.events.to_arrow(hid)
    else:
        cols = _empty(SCHEMAS["events"].names)
        for e in log.events:
            for k, v in (("home_id", hid), ("time", e.time), ("kind", e.kind), ("room", e.room), ("device", e.device),
                         ("field", e.field), ("value", e.value), ("source", e.source), ("user", e.user),
                         ("logged", e.logged)):
                cols[k].append(v)
        events = to_table("events", cols)
    if spec.unseen:
        out.emit(("events", "test_unseen"), events)
    else:
        before = pc.less(events["time"], pa.scalar(spec.cutoff, pa.timestamp("s")))
        out.emit(("events", "train"), events.filter(before))
        out.emit(("events", "test"), events.filter(pc.invert(before)))
    del events

    for op in log.operations:
        out.add("operations", period(op.time), home_id=hid, user=op.user, time=op.time, source=op.source,
                logged=op.logged, actions=serialize_actions(op.actions), description=op.description,
                n_actions=len(op.actions), categories=categories(op.actions, types), text=serialize_operation(op))

    logged = log.logged_operations
    times = [o.time for o in logged]
    prompt = DecisionPrompts(log, spec.history_k)

    # pretrain: one row per home-day of the train period (seen homes only)
    if not spec.unseen:
        by_day: dict[object, list[Operation]] = defaultdict(list)
        for op in logged:
            if op.time < spec.cutoff:
                by_day[op.time.date()].append(op)
        for day in sorted(by_day):
            out.add("pretrain", "train", home_id=hid, text=serialize_history(by_day[day], env=True, desc=True))

    # sft + dpo: one pass in time order; the miner sees operations strictly before each minute
    rng_sft = row_rng(spec.seed, home.index, STREAM_SFT)
    rng_test = row_rng(spec.seed, home.index, STREAM_TEST)
    rng_dpo = row_rng(spec.seed, home.index, STREAM_DPO)
    keep_test = spec.test_keep.get(home.bucket, 1.0)
    miner = NegativeMiner(types)
    pending: list[Operation] = []
    for i, op in enumerate(logged):
        if progress is not None and i % PROGRESS_EVERY == 0:
            progress(i, len(logged))
        if pending and pending[0].time != op.time:
            for p in pending:
                miner.observe(p)
            pending.clear()
        pending.append(op)
        split = period(op.time)
        # draw every random number for every operation so samples do not depend on each other
        u_row = (rng_sft if split == "train" else rng_test).random()
        u_dpo = rng_dpo.random()
        if op.source not in spec.sources or (spec.unseen and op.time < spec.cutoff):
            continue
        if u_row >= (spec.sft_rate if split == "train" else keep_test):
            continue
        p = prompt(op.time)
        completion = target(op.actions, op.description, "action-first")
        out.add("sft", split, home_id=hid, user=op.user, time=op.time, prompt=p, completion=completion,
                completion_text_first=target(op.actions, op.description, "text-first"),
                actions=serialize_actions(op.actions), description=op.description, bucket=home.bucket,
                categories=categories(op.actions, types), devices=devices)
        if split == "train" and u_dpo < spec.dpo_rate:
            neg = miner.mine(op, rng_dpo)
            if neg is not None:
                rejected = target(neg.actions, describe(neg.actions, 0), "action-first")
                if rejected != completion:
                    out.add("dpo", "train", home_id=hid, time=op.time, prompt=p, chosen=completion,
                            rejected=rejected, negative_kind=neg.kind)

    if progress is not None:
        progress(len(logged), len(logged))

    # feedback: logged exposures with their context and the user's next operation as label
    horizon = timedelta(seconds=spec.feedback_horizon_s)
    for x in log.exposures:
        split = period(x.time)
        if spec.unseen and x.time < spec.cutoff:
            continue
        label_op = _next_op(logged, times, x.time, x.user, horizon)
        label = serialize_actions(label_op.actions) if label_op is not None else ""
        cats = categories(label_op.actions if label_op is not None else x.shown, types)
        out.add("feedback", split, home_id=hid, user=x.user, time=x.time, prompt=prompt(x.time),
                shown=serialize_actions(x.shown), description=x.description, propensity=float(x.propensity),
                accepted=bool(x.accepted), p_accept=float(x.p_accept), label=label, bucket=home.bucket,
                categories=cats, devices=devices)
    return out.to_tables()


def _next_op(logged: Sequence[Operation], times: Sequence[datetime], t: datetime, user: str,
             horizon: timedelta) -> Operation | None:
    """The first logged operation of ``user`` (any user if unknown) at or after ``t``, within ``horizon``."""
    i = bisect.bisect_left(times, t.replace(second=0, microsecond=0))
    while i < len(logged) and logged[i].time <= t + horizon:
        op = logged[i]
        if op.time >= t.replace(second=0, microsecond=0) and (not user or not op.user or op.user == user):
            return op
        i += 1
    return None

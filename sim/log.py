"""What one simulated home leaves behind: the records that cross from the simulator to the
dataset builder, the evaluators, the gym environments and the app.

These types are the contract between ``sim.world`` (which fills them) and everything
downstream (which only reads them). A real-log importer produces the same ``HomeLog`` with
``hidden=None``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sim.catalog import device_bucket, device_type
from sim.records import Action, Operation


@dataclass(frozen=True)
class DeviceSpec:
    """One device in a home. ``name`` is unique within its room (``light``, ``light_2``)."""

    room: str
    name: str
    type: str
    plug: str | None = None  # name of the smart plug (same room) this appliance sits on
    entity_ids: tuple[str, ...] = ()  # its real Home Assistant entities (import-ha); () = none known

    @property
    def target(self) -> tuple[str, str]:
        return (self.room, self.name)

    @property
    def category(self) -> str:
        return device_type(self.type).category


@dataclass(frozen=True)
class HomeSpec:
    """A home: rooms, devices, residents (persona ids) and climate."""

    home_id: str
    index: int
    rooms: tuple[str, ...]
    devices: tuple[DeviceSpec, ...]
    residents: tuple[str, ...]
    climate_zone: str = "temperate"

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    @property
    def bucket(self) -> str:
        """The paper's device-count bucket (1-5, 6-10, 11-20, 20+)."""
        return device_bucket(self.n_devices)

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """(room, device) of every device, the prompt's candidate list."""
        return tuple(d.target for d in self.devices)

    def types(self) -> dict[tuple[str, str], str]:
        """(room, device) -> catalogue type, for metrics and constrained decoding."""
        return {d.target: d.type for d in self.devices}


@dataclass(frozen=True)
class Event:
    """One raw log row: a sensor reading (``kind='sensor'``) or a device change (``'action'``)."""

    time: datetime
    kind: str  # sensor | action | weather
    room: str
    device: str  # "" for sensor and weather rows
    field: str  # the indicator for sensor rows
    value: str
    source: str = ""  # app | voice | physical | automation for actions, "" otherwise
    user: str = ""
    logged: bool = True


class EventTable:
    """Columnar store of ``Event`` rows (the simulator writes hundreds per home-day).

    Rows are appended as plain columns (time as minutes after ``start``) because building one
    frozen dataclass per sensor reading costs more than the rest of the simulation. Reading
    code sees a sequence of ``Event``: ``len``, iteration and indexing build them on demand;
    ``to_arrow(home_id)`` gives the ``events`` config table (``sim.dataset.schema.SCHEMAS["events"]``).
    """

    COLUMNS = ("minute", "kind", "room", "device", "field", "value", "source", "user", "logged")

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.minute: list[float] = []  # minutes after start
        self.kind: list[str] = []
        self.room: list[str] = []
        self.device: list[str] = []
        self.field: list[str] = []
        self.value: list[str] = []
        self.source: list[str] = []
        self.user: list[str] = []
        self.logged: list[bool] = []

    def append(self, minute: float, kind: str, room: str, device: str, field: str, value: str,
               source: str = "", user: str = "", logged: bool = True) -> None:
        self.minute.append(minute)
        self.kind.append(kind)
        self.room.append(room)
        self.device.append(device)
        self.field.append(field)
        self.value.append(value)
        self.source.append(source)
        self.user.append(user)
        self.logged.append(logged)

    def add_readings(self, minute: float, kind: str, rows: list[tuple[str, str, str]]) -> None:
        """Append reading rows ``(room, indicator, value)`` taken at one time (one call per tick).

        Rows whose room is ``outdoor`` get kind ``weather`` whatever ``kind`` says.
        """
        n = len(rows)
        self.minute.extend([minute] * n)
        self.kind.extend(["weather" if r[0] == "outdoor" else kind for r in rows])
        self.room.extend([r[0] for r in rows])
        self.device.extend([""] * n)
        self.field.extend([r[1] for r in rows])
        self.value.extend([r[2] for r in rows])
        self.source.extend([""] * n)
        self.user.extend([""] * n)
        self.logged.extend([True] * n)

    def __len__(self) -> int:
        return len(self.minute)

    def __getitem__(self, i: int) -> Event:
        t = self.start + timedelta(seconds=round(self.minute[i] * 60))
        return Event(t, self.kind[i], self.room[i], self.device[i], self.field[i], self.value[i],
                     self.source[i], self.user[i], self.logged[i])

    def __iter__(self) -> Iterator[Event]:
        return (self[i] for i in range(len(self)))

    def to_arrow(self, home_id: str):
        """The rows as a ``pyarrow.Table`` with the ``events`` config schema (time at 1 s)."""
        import numpy as np
        import pyarrow as pa

        from sim.dataset.schema import SCHEMAS

        base = np.datetime64(self.start.replace(microsecond=0), "s")
        secs = np.rint(np.asarray(self.minute, dtype=float) * 60).astype("int64")
        cols = {
            "home_id": pa.array([home_id] * len(self), pa.string()),
            "time": pa.array(base + secs.astype("timedelta64[s]"), pa.timestamp("s")),
        }
        for name in self.COLUMNS[1:]:
            cols[name] = getattr(self, name)
        return pa.table(cols, schema=SCHEMAS["events"])


@dataclass(frozen=True)
class Exposure:
    """One logged recommendation at an app-open decision point (the ``feedback`` config).

    ``propensity`` is the logging policy's probability of showing exactly ``shown`` given the
    context; ``p_accept`` is the acceptance model's true probability (kept for checking
    off-policy estimates against ground truth); ``accepted`` is the sampled answer.
    """

    time: datetime
    user: str
    shown: tuple[Action, ...]
    description: str
    propensity: float
    accepted: bool
    p_accept: float
    candidates: tuple[tuple[tuple[Action, ...], float], ...] = ()  # the policy's full distribution


@dataclass
class HomeLog:
    """Everything one home produced over the simulated days, sorted by time."""

    home: HomeSpec
    start: datetime
    days: int
    events: list[Event] | EventTable = field(default_factory=list)  # the simulator fills an EventTable
    operations: list[Operation] = field(default_factory=list)  # logged and unlogged
    exposures: list[Exposure] = field(default_factory=list)
    hidden: Mapping[str, Any] | None = None  # simulator-only truth (personas, habits); None for real logs

    @property
    def logged_operations(self) -> list[Operation]:
        return [o for o in self.operations if o.logged]

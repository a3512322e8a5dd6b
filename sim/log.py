"""What one simulated home leaves behind: the records that cross from the simulator to the
dataset builder, the evaluators, the gym environments and the app.

These types are the contract between ``sim.world`` (which fills them) and everything
downstream (which only reads them). A real-log importer produces the same ``HomeLog`` with
``hidden=None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    events: list[Event] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)  # logged and unlogged
    exposures: list[Exposure] = field(default_factory=list)
    hidden: Mapping[str, Any] | None = None  # simulator-only truth (personas, habits); None for real logs

    @property
    def logged_operations(self) -> list[Operation]:
        return [o for o in self.operations if o.logged]

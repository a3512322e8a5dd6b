"""A home that runs while you watch: the live stepping API for the gym env and the Streamlit app.

``LiveHome(config, index)`` builds the same world as ``simulate_home`` (same seed scheme, same
people and habits) but runs it on demand and without the logging policy: decision points are
handed to the caller instead.

- ``now``: current simulated time (``datetime``).
- ``advance(until)``: run the SimPy environment up to ``until`` (``env.run(until=...)``).
- ``step_to_next_decision()``: run to the next app-open decision point and return its time
  (``decision_user`` says who opened the app), or ``None`` at the end of the simulated days.
- ``snapshot()``: rooms -> devices' states and sensor readings, outdoor, people, recent ops.
- ``device_states()``: (room, device) -> {field: value}, every device's true state now (what
  the app reads from the devices; the logged history may be stale).
- ``apply(actions, description, user)``: carry out an accepted recommendation as an ``app``
  operation (it appears in ``log`` and satisfies a matching pending intent). An illegal action
  (unknown device, disallowed value) raises ``CatalogError`` naming the problem and the home
  is left unchanged.
- ``judge(actions, description)``: the acceptance model's ``Judgement`` at ``now``.
- ``log``: the ``HomeLog`` so far (operations, events, hidden truth).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sim.catalog import CatalogError, format_value, validate
from sim.describe import describe
from sim.log import HomeLog, HomeSpec
from sim.records import Action, serialize_operation
from sim.world.acceptance import Judgement, judge_minute
from sim.world.activity import perform
from sim.world.behaviour import Chooser
from sim.world.logging_policy import settle_intents
from sim.world.world import SimConfig, World


class LiveHome:
    """One simulated home stepped by a caller (see the module doc)."""

    def __init__(self, config: SimConfig, index: int, *, home: HomeSpec | None = None,
                 chooser: Chooser | None = None) -> None:
        self.world = World(config, index, home=home, chooser=chooser, live=True)
        self.world.decision_hook = self._on_decision
        self._waiting = None
        self.decision_user: str | None = None

    # ------------------------------------------------------------ time

    @property
    def now(self) -> datetime:
        return self.world.datetime_of(self.world.env.now)

    @property
    def end(self) -> datetime:
        """The end of the simulated days; the home cannot run past it."""
        return self.world.datetime_of(self.world.horizon)

    @property
    def log(self) -> HomeLog:
        return self.world.log

    @property
    def home(self) -> HomeSpec:
        return self.world.home

    def advance(self, until: datetime) -> None:
        """Run the home up to ``until`` (clipped to ``end``); earlier than ``now`` is an error."""
        m = self.world.minute_of(until)
        env = self.world.env
        if m < env.now:
            raise ValueError(f"cannot advance to {until}: the home is already at {self.now}")
        m = min(m, self.world.horizon)
        if m > env.now:
            env.run(until=m)

    def _on_decision(self, user: str) -> None:
        self.decision_user = user
        if self._waiting is not None and not self._waiting.triggered:
            self._waiting.succeed(user)

    def step_to_next_decision(self) -> datetime | None:
        """Run to the next app-open decision point; None when the simulated days are over."""
        w = self.world
        env = w.env
        if env.now >= w.horizon:
            return None
        self._waiting = env.event()
        stop = env.timeout(w.horizon - env.now)
        env.run(until=self._waiting | stop)
        hit = self._waiting.triggered
        self._waiting = None
        return self.now if hit else None

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view of the home now (JSON-serialisable)."""
        w = self.world
        now = w.env.now
        rooms: dict[str, Any] = {}
        for name, room in w.rooms.items():
            w.advance_room(name)
            rooms[name] = {
                "temperature": float(format_value(room.temp)), "humidity": float(format_value(room.hum)),
                "illuminance": float(format_value(room.illuminance(w.outdoor, now))),
                "occupancy": w.occupancy(name),
                "devices": {w.devices[k].name: {"type": w.devices[k].type, **w.state[k]} for k in w.room_targets[name]},
            }
        people = {u: {"persona": w.personas[u].name, "where": w.where[u][0], "room": w.where[u][1]} for u in w.users}
        recent = [serialize_operation(o) for o in w.log.operations[-10:] if o.logged]
        return {"time": self.now.isoformat(timespec="minutes"), "home_id": w.home.home_id, "rooms": rooms,
                "outdoor": {"temperature": float(format_value(w.outdoor.temperature(now))),
                            "humidity": float(format_value(w.outdoor.humidity(now))),
                            "illuminance": float(format_value(w.outdoor.illuminance(now))),
                            "weather": w.outdoor.weather_at(now)},
                "people": people, "recent_operations": recent}

    def device_states(self) -> dict[tuple[str, str], dict[str, str]]:
        """(room, device) -> {field: value}: every device's true state now (a copy)."""
        return {k: dict(v) for k, v in self.world.state.items()}

    # ------------------------------------------------------------ recommendations

    def check(self, actions: Sequence[Action]) -> None:
        """Raise ``CatalogError`` unless every action is legal in this home."""
        if not actions:
            raise CatalogError("a recommendation needs at least one action")
        for a in actions:
            if not isinstance(a, Action):
                raise CatalogError(f"expected sim.records.Action, got {type(a).__name__}: {a!r}")
            d = self.world.devices.get(a.target)
            if d is None:
                known = ", ".join(f"{r}/{n}" for r, n in self.world.devices)
                raise CatalogError(f"no device {a.room}/{a.device} in home {self.home.home_id}; devices: {known}")
            validate(d.type, a.field, a.value)

    def judge(self, actions: Sequence[Action], description: str = "") -> Judgement:
        """P(accept) of recommending ``actions`` now (p = 0 for an illegal recommendation)."""
        return judge_minute(self.world.log, self.world.env.now, tuple(actions), description)

    def apply(self, actions: Sequence[Action], description: str = "", user: str | None = None):
        """Carry out ``actions`` now as an app operation by ``user``; returns the ``Operation``."""
        actions = tuple(actions)
        self.check(actions)
        w = self.world
        if user is None:
            home = w.at_home_awake()
            user = self.decision_user or (home[0] if home else w.users[0])
        if user not in w.users:
            raise ValueError(f"user {user!r} not a resident; residents: {', '.join(w.users)}")
        settle_intents(w, actions)
        return perform(w, user, actions, "app", description=description or describe(actions), logged=True,
                       cause="recommendation")

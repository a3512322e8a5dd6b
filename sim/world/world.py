"""One simulated home: a ``simpy.Environment`` with a few long-lived processes, and ``simulate_home``.

Processes per home (all woken by timeouts, none polling per minute):

- one per resident, walking through their day's anchors (``sim.world.people.day_schedule``) and
  firing the habits attached to each anchor;
- ``_days``: at each midnight, schedules the day's clock and sunset habits and automations;
- ``_sensors``: every ``sensor_interval_min``, advances room physics, logs readings, and lets
  awake residents react to discomfort (heat, cold, dry or humid air);
- ``_noise``: occasional unplanned operations on random devices;
- ``_app_opens``: decision points where the logging policy shows a recommendation
  (``sim.world.logging_policy``) or, in a live home, where the agent is asked.

Planned operations are ``Intent`` objects executed by a timeout callback at their due time.
Everything random comes from ``numpy.random.default_rng([config.seed, index])``, so a home is
identical whatever the worker count.

``HomeLog.hidden`` (simulator-only truth, read by ``sim.world.acceptance`` and ``sim.world.oracle``):
``personas`` (user -> persona id), ``prefs`` (user -> ``sim.world.people.Prefs``), ``habits`` (every
resident's ``Habit``) and ``habit_actions`` (their action sets), ``sleep_rooms``/``day_rooms``,
``automations``, ``outdoor`` (``sim.world.weather.Outdoor``), ``weekday0`` (weekday of day 0),
``day_modes`` (one ``sim.world.people.DayMode`` per day),
``intents`` (every ``Intent``, sorted by due: pending ones are the near-future plans) and
``timeline`` (``sim.world.timeline.Timeline``: device states, presence, room climate and every
operation with its cause, queryable at any past time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as dtime

import numpy as np
import simpy

from sim.catalog import DEVICE_TYPES, format_value
from sim.log import EventTable, HomeLog, HomeSpec
from sim.records import Action
from sim.world.activity import decision_point, draw_automations, noise_op, on_anchor, plan_day, react_all, sensor_tick
from sim.world.behaviour import Chooser, Habit, Intent, day_room, make_habits, sleep_room, work_room
from sim.world.homes import sample_home, validate_home
from sim.world.logging_policy import LoggingPolicy
from sim.world.people import PERSONAS, DayMode, day_schedule, draw_day_modes, is_weekend, sample_prefs
from sim.world.timeline import Timeline
from sim.world.weather import CLIMATES, Outdoor, Room, set_drives

DAY = 1440.0
APP_FULL_DEVICES = 12  # devices from which residents open the app ``app_opens_per_day`` times a day


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. Every home ``index`` is drawn from ``default_rng([seed, index])``."""

    seed: int = 0  # global seed, >= 0
    days: int = 7  # simulated days per home, 1..3660
    start: date = date(2026, 1, 5)  # first simulated day (a Monday by default)
    noise_scale: float = 1.0  # multiplies the rate of unplanned (noise) operations, 0..5
    unlogged_scale: float = 1.0  # multiplies each persona's share of unlogged physical operations, 0..3
    app_opens_per_day: float = 3.0  # app-open decision points per resident per day, 0..50 (in a home of
    # APP_FULL_DEVICES or more devices; fewer devices, proportionally fewer: there is less to control)
    sensor_interval_min: int = 60  # minutes between periodic sensor readings, 5..240
    sensor_noise: float = 1.0  # multiplies the sensor noise (0.3 C, 2 %, 5 % lux), 0..5
    p_automation: float = 0.35  # chance that a home runs automations (scenes), 0..1
    log_exposures: bool = True  # run the logging policy at decision points (off in a live home)
    vary_base: float = 0.03  # chance that an executed plan deviates from the intent, 0..1 ...
    vary_per_device: float = 0.008  # ... plus this much per device in the home, 0..0.1

    def __post_init__(self) -> None:
        def check(name: str, lo: float, hi: float, integer: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
                raise ValueError(f"SimConfig.{name} must be {'an integer' if integer else 'a number'} "
                                 f"in {lo}..{hi}, got {v!r}")
            if not lo <= v <= hi:
                raise ValueError(f"SimConfig.{name} must be in {lo}..{hi}, got {v!r}")

        check("seed", 0, 2**63 - 1, True)
        check("days", 1, 3660, True)
        check("noise_scale", 0, 5)
        check("unlogged_scale", 0, 3)
        check("app_opens_per_day", 0, 50)
        check("sensor_interval_min", 5, 240, True)
        check("sensor_noise", 0, 5)
        check("p_automation", 0, 1)
        check("vary_base", 0, 1)
        check("vary_per_device", 0, 0.1)
        if not isinstance(self.start, date) or isinstance(self.start, datetime):
            raise ValueError(f"SimConfig.start must be a datetime.date, got {self.start!r}")


class World:
    """The state and processes of one home. ``simulate_home`` and ``sim.world.live.LiveHome`` drive it."""

    def __init__(self, config: SimConfig, index: int, home: HomeSpec | None = None,
                 chooser: Chooser | None = None, live: bool = False,
                 day_modes: list[DayMode] | None = None) -> None:
        if not isinstance(index, int) or index < 0:
            raise ValueError(f"home index must be an integer >= 0, got {index!r}")
        self.config = config
        self.rng = np.random.default_rng([config.seed, index])
        # sensor noise has its own stream, so sensor settings never change what people do
        self._noise_rng = np.random.default_rng([config.seed, index, 1])
        self._noise_buf: list[float] = []
        self.home = home if home is not None else sample_home(self.rng, index)
        validate_home(self.home)
        self.ch = chooser if chooser is not None else Chooser(self.rng)
        self.live = live
        self.env = simpy.Environment()
        self.start = datetime.combine(config.start, dtime())
        self.weekday0 = config.start.weekday()
        self.horizon = config.days * DAY
        home = self.home
        self.users = [f"u{k}" for k in range(len(home.residents))]
        self.personas = {u: PERSONAS[p] for u, p in zip(self.users, home.residents, strict=True)}
        self.prefs = {u: sample_prefs(self.ch) for u in self.users}
        pairs = list(zip(self.users, home.residents, strict=True))
        self.sleep_rooms = {u: sleep_room(home, p, k) for k, (u, p) in enumerate(pairs)}
        self.day_rooms = {u: day_room(home, p) for u, p in zip(self.users, home.residents, strict=True)}
        self.habits = make_habits(home, self.users, self.prefs, self.ch)
        self.outdoor = Outdoor(CLIMATES[home.climate_zone], config.start.timetuple().tm_yday - 1, config.days, self.rng)
        self.work_rooms = {u: work_room(home, p) for u, p in zip(self.users, home.residents, strict=True)}
        # the children's rooms: room -> the children who sleep there (its operations need one of them home)
        self.child_rooms: dict[str, list[str]] = {}
        for u in self.users:
            if self.personas[u].name == "child":
                self.child_rooms.setdefault(self.sleep_rooms[u], []).append(u)
        if day_modes is None:
            day_modes = draw_day_modes(
                self.users, self.personas, [is_weekend(d, self.weekday0) for d in range(config.days + 1)],
                [self.outdoor.weather[min(d, len(self.outdoor.weather) - 1)] in ("rain", "snow")
                 for d in range(config.days + 1)], self.ch)
        if len(day_modes) < config.days:
            raise ValueError(f"day_modes: one DayMode per simulated day ({config.days}), got {len(day_modes)}")
        self.day_modes = list(day_modes)
        self.devices = {d.target: d for d in home.devices}
        self.state: dict[tuple[str, str], dict[str, str]] = {
            d.target: {f: s.default for f, s in DEVICE_TYPES[d.type].fields.items()} for d in home.devices}
        self.room_targets: dict[str, list[tuple[str, str]]] = {r: [] for r in home.rooms}
        for d in home.devices:
            self.room_targets[d.room].append(d.target)
        self.rooms = {r: Room(r, 0.0, 0.0, 50.0, 1.0) for r in home.rooms}
        for room in self.rooms.values():  # start at the passive equilibrium
            room.temp = 19.0 + 0.33 * (self.outdoor.temperature(0.0) - 12.0)
            room.hum = 0.55 * self.outdoor.humidity(0.0) + 18.0
            self._set_drives(room.name)
        self.where: dict[str, tuple[str, str]] = {u: ("asleep", self.sleep_rooms[u]) for u in self.users}
        self.occ: dict[str, int] = {}  # room -> residents in it (home or asleep)
        for u in self.users:
            self.occ[self.sleep_rooms[u]] = self.occ.get(self.sleep_rooms[u], 0) + 1
        # room -> [temperature C, humidity %, illuminance lux] as last reported by its sensors: what
        # the home can sense, and what habit conditions and comfort reactions read
        self.sensed: dict[str, list[float]] = {
            r: [x.temp, x.hum, x.illuminance(self.outdoor, 0.0)] for r, x in self.rooms.items()}
        self.timeline = Timeline(self.state, self.users, {r: (x.temp, x.hum) for r, x in self.rooms.items()})
        for u in self.users:
            self.timeline.record_presence(0.0, u, "asleep", self.sleep_rooms[u])
        self.anchor_habits: dict[tuple[str, str], list[Habit]] = {}
        for h in self.habits:
            self.anchor_habits.setdefault((h.user, h.anchor), []).append(h)
        for chain in self.anchor_habits.values():  # a routine's steps in order (sim.world.activity.start_chain)
            chain.sort(key=lambda h: h.at)
        self.automations = self._draw_automations()
        self.reactive: dict[str, Intent | None] = {u: None for u in self.users}
        self.p_vary = min(1.0, config.vary_base + config.vary_per_device * home.n_devices)
        self.policy = LoggingPolicy(home)
        self.events = EventTable(self.start)
        self.log = HomeLog(home=home, start=self.start, days=config.days, events=self.events, hidden={
            "personas": {u: p.name for u, p in self.personas.items()}, "prefs": self.prefs,
            "habits": tuple(self.habits), "sleep_rooms": self.sleep_rooms, "day_rooms": self.day_rooms,
            "automations": tuple(self.automations), "outdoor": self.outdoor, "timeline": self.timeline,
            "intents": self.timeline.intents, "weekday0": self.weekday0, "day_modes": self.day_modes,
            "habit_actions": tuple(frozenset(Action(*st) for st in h.steps) for h in self.habits),
        })
        self.decision_hook: Callable[[str], None] | None = None
        for u in self.users:
            self.env.process(self._person(u))
        self.env.process(self._days())
        self.env.process(self._sensors())
        if config.noise_scale > 0:
            self.env.process(self._noise())
        if config.app_opens_per_day > 0:
            self.env.process(self._app_opens())

    # ------------------------------------------------------------------ helpers

    def minute_of(self, t: datetime) -> float:
        return (t - self.start).total_seconds() / 60.0

    def datetime_of(self, minute: float) -> datetime:
        return self.start + timedelta(minutes=minute)

    def weekday(self, minute: float) -> int:
        return (self.weekday0 + int(minute // DAY)) % 7

    def day_mode(self, minute: float) -> DayMode:
        """The household's ``DayMode`` on the day of ``minute``."""
        day = int(minute // DAY)
        return self.day_modes[day] if day < len(self.day_modes) else DayMode()

    def room_today(self, user: str, minute: float) -> str:
        """Where ``user`` spends the day: in bed when sick, the work room when working from home,
        else their day room."""
        mode = self.day_mode(minute).of(user)
        if mode == "sick":
            return self.sleep_rooms[user]
        return self.work_rooms[user] if mode == "wfh" else self.day_rooms[user]

    def child_home(self, room: str) -> bool:
        """False when ``room`` is a children's room and none of its children is home (awake or asleep)."""
        kids = self.child_rooms.get(room)
        return kids is None or any(self.where[u][0] != "away" for u in kids)

    def at_home_awake(self) -> list[str]:
        return [u for u in self.users if self.where[u][0] == "home"]

    def schedule(self, at: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` at minute ``at`` (now if in the past) via one timeout event."""
        ev = self.env.timeout(max(0.0, at - self.env.now))
        ev.callbacks.append(lambda _e: fn())

    def sensor_noise_row(self) -> list[float]:
        """Standard-normal noise for one sensor tick (3 per room), scaled by ``sensor_noise``."""
        n = 3 * len(self.rooms)
        if len(self._noise_buf) < n:
            self._noise_buf = (self._noise_rng.standard_normal(n * 240) * self.config.sensor_noise).tolist()
        row = self._noise_buf[-n:]
        del self._noise_buf[-n:]
        return row

    def report(self, room: str, indicator: str) -> None:
        """An event-driven sensor report: a lux sensor answers a lamp or a curtain at once, a
        presence sensor every arrival and departure, with the room's light level (as motion
        sensors with a lux cell do); periodic ticks report everything."""
        now = self.env.now
        if indicator == "occupancy":
            self.events.add_readings(now, "sensor", [(room, "occupancy", str(self.occ.get(room, 0)))])
            return
        lux = self.rooms[room].illuminance(self.outdoor, now) * (1.0 + 0.05 * self.sensor_noise_row()[0])
        lux = lux if lux > 0.0 else 0.0
        self.sensed[room][2] = lux
        self.events.add_readings(now, "sensor", [(room, "illuminance", format_value(lux))])

    def _set_drives(self, room: str) -> None:
        set_drives(self.rooms[room], [(self.devices[k].type, self.state[k]) for k in self.room_targets[room]])

    def occupancy(self, room: str) -> int:
        return self.occ.get(room, 0)

    def advance_room(self, room: str) -> None:
        now = self.env.now
        r = self.rooms[room]
        if r.t < now:
            r.advance(now, self.outdoor, self.occ.get(room, 0))
            self.timeline.record_room(now, room, r.temp, r.hum)

    # ------------------------------------------------------------------ processes

    def _person(self, user: str):
        persona = self.personas[user]
        env = self.env
        for day in range(self.config.days + 1):
            bad = self.outdoor.weather[min(day, len(self.outdoor.weather) - 1)] in ("rain", "snow")
            mode = self.day_mode(day * DAY).of(user)
            for t, anchor in day_schedule(persona, day, self.weekday0, self.ch, bad, mode):
                if t >= self.horizon:
                    return
                if t > env.now:
                    yield env.timeout(t - env.now)
                on_anchor(self, user, anchor)

    def _days(self):
        for day in range(self.config.days):
            if day * DAY > self.env.now:
                yield self.env.timeout(day * DAY - self.env.now)
            plan_day(self, day)

    def _sensors(self):
        step = float(self.config.sensor_interval_min)
        while self.env.now + step < self.horizon:
            yield self.env.timeout(step)
            sensor_tick(self)
            react_all(self)

    def _noise(self):
        rate = self.config.noise_scale * (0.2 + 0.17 * self.home.n_devices)  # per home-day
        while True:
            yield self.env.timeout(self.ch.exponential(DAY / rate))
            if self.env.now >= self.horizon:
                return
            noise_op(self)

    def _app_opens(self):
        # a home of 3 devices sees a quarter of the app opens: its accepted recommendations would
        # otherwise be ~17% of its operations (4-6% in larger homes), and no habit predicts them
        rate = self.config.app_opens_per_day * len(self.users) * min(1.0, self.home.n_devices / APP_FULL_DEVICES)
        while True:
            yield self.env.timeout(self.ch.exponential(DAY / rate))
            if self.env.now >= self.horizon:
                return
            decision_point(self)

    def _draw_automations(self) -> list[Habit]:
        return draw_automations(self)

    def run(self, until: float | None = None) -> None:
        self.env.run(until=self.horizon if until is None else until)


def simulate_home(config: SimConfig, index: int, *, home: HomeSpec | None = None,
                  chooser: Chooser | None = None, day_modes: list[DayMode] | None = None) -> HomeLog:
    """Simulate home ``index`` for ``config.days`` days and return its log.

    ``home`` replaces the sampled home, ``chooser`` every stochastic choice of its people
    (tests use ``FixedChooser``) and ``day_modes`` the drawn kind of each day
    (``sim.world.people.draw_day_modes``); by default all come from ``default_rng([config.seed, index])``.
    """
    w = World(config, index, home=home, chooser=chooser, day_modes=day_modes)
    w.run()
    return w.log


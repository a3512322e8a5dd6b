"""A hand-made stand-in simulator for the dataset tests: small, fast, deterministic per (seed, index).

``fake_home(cfg, index)`` has the signature of ``sim.world.simulate_home`` (the first argument is
any object with ``seed``, ``days`` and ``start``). Habits are fixed so hand-worked expectations
hold: curtain open at ~07:00, light on at ~19:00 and off at ~23:00, a "light off, then on again a
minute later" conflict every day at 21:00, AC set in the afternoon, and an unlogged physical
operation at noon.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from sim.log import DeviceSpec, Event, Exposure, HomeLog, HomeSpec
from sim.records import Action, EnvReading, Operation

ROOM_DEVICES = (("living_room", "light", "light"), ("bedroom", "curtain", "curtain"), ("bedroom", "ac", "ac"),
                ("kitchen", "kettle", "kettle"), ("living_room", "tv", "tv"), ("bedroom", "light", "light"))


def fake_home(cfg, index: int) -> HomeLog:
    rng = np.random.default_rng([cfg.seed, index])
    n = 3 + index % 4  # 3..6 devices: buckets 1-5 and 6-10
    devices = tuple(DeviceSpec(r, name, t) for r, name, t in ROOM_DEVICES[:n])
    rooms = tuple(dict.fromkeys(d.room for d in devices))
    home = HomeSpec(f"h{index:05d}", index, rooms, devices, ("early_bird", "night_owl"))
    start = datetime.combine(cfg.start, datetime.min.time())
    events: list[Event] = []
    ops: list[Operation] = []
    exposures: list[Exposure] = []

    def env(t: datetime) -> tuple[EnvReading, ...]:
        return (EnvReading("bedroom", "temperature", f"{20 + t.hour % 5}"), EnvReading("outdoor", "weather", "sunny"))

    def op(t: datetime, user: str, acts: list[Action], desc: str, source: str = "app", logged: bool = True) -> None:
        ops.append(Operation(t, tuple(acts), env(t), desc, home.home_id, user, source, logged))
        for a in acts:
            events.append(Event(t, "action", a.room, a.device, a.field, a.value, source, user, logged))

    for day in range(cfg.days):
        d0 = start + timedelta(days=day)
        for h in range(0, 24, 3):
            t = d0 + timedelta(hours=h)
            events.append(Event(t, "sensor", "bedroom", "", "temperature", f"{20 + h % 5}"))
            events.append(Event(t, "weather", "outdoor", "", "weather", "sunny"))
        jitter = lambda: timedelta(minutes=int(rng.integers(0, 20)))  # noqa: E731
        op(d0 + timedelta(hours=7) + jitter(), "u0", [Action("bedroom", "curtain", "action", "open")],
           "Open the bedroom curtains")
        op(d0 + timedelta(hours=12), "u1", [Action("living_room", "light", "power", "on")], "", "physical", False)
        op(d0 + timedelta(hours=15) + jitter(), "u1",
           [Action("bedroom", "ac", "power", "on"), Action("bedroom", "ac", "target_temperature", str(24 + day % 3))],
           "Cool the bedroom")
        op(d0 + timedelta(hours=19) + jitter(), "u1", [Action("living_room", "light", "power", "on")],
           "Turn on the living room light")
        op(d0 + timedelta(hours=21), "u0", [Action("living_room", "light", "power", "off")],
           "Turn off the living room light")
        op(d0 + timedelta(hours=21, minutes=1), "u0", [Action("living_room", "light", "power", "on")],
           "Turn the living room light back on")
        op(d0 + timedelta(hours=23), "u0", [Action("living_room", "light", "power", "off")], "Lights off")
        shown = (Action("living_room", "light", "power", "on"),)
        exposures.append(Exposure(d0 + timedelta(hours=18, minutes=55), "u1", shown, "Turn on the light", 0.5,
                                  bool(rng.random() < 0.5), 0.4))
    ops.sort(key=lambda o: o.time)
    events.sort(key=lambda e: (e.time, e.kind))
    return HomeLog(home, start, cfg.days, events, ops, exposures)


def test_fake_home_is_deterministic_and_sorted():
    class C:
        seed, days = 3, 2
        start = datetime(2026, 1, 5).date()

    a, b = fake_home(C, 1), fake_home(C, 1)
    assert [o.time for o in a.operations] == [o.time for o in b.operations]
    assert [o.time for o in a.operations] == sorted(o.time for o in a.operations)
    assert len(a.operations) == 2 * 7 and len(a.exposures) == 2

"""The simulator's hidden record: what was true at every moment, queryable after the fact.

The running world appends to a ``Timeline`` as it goes (device states after each change,
presence changes, room temperature/humidity after each physics update, every operation with
its exact time, every intent). The acceptance model and the oracle only read it, so they work
the same on a live home (querying "now") and on a finished ``HomeLog`` (querying any past
time). Times are minutes after the simulation start; "state at t" means the state strictly
before t (by EPS, so that a time that went through a ``datetime`` still excludes what happened
at that very moment), i.e. what a recommender deciding at t could see.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sim.world.behaviour import Intent

NEG_INF = float("-inf")
EPS = 1e-6  # minutes: a datetime round-trips a float minute to within 1e-8; "before t" means before t - EPS


@dataclass(frozen=True)
class OpRecord:
    """An operation as the hidden record keeps it: exact time, who, how, what."""

    minute: float
    user: str
    source: str
    actions: tuple  # tuple[Action, ...]
    cause: str = ""  # habit or intent name, "noise", or "recommendation" (an accepted one)


class Timeline:
    def __init__(self, devices: dict[tuple[str, str], dict[str, str]], users: list[str],
                 rooms: dict[str, tuple[float, float]]) -> None:
        self.dev_times: dict[tuple[str, str], list[float]] = {k: [NEG_INF] for k in devices}
        self.dev_states: dict[tuple[str, str], list[dict[str, str]]] = {k: [dict(v)] for k, v in devices.items()}
        self.pres_times: dict[str, list[float]] = {u: [NEG_INF] for u in users}
        self.pres_states: dict[str, list[tuple[str, str]]] = {u: [("asleep", "")] for u in users}
        self.room_times: dict[str, list[float]] = {r: [NEG_INF] for r in rooms}
        self.room_vals: dict[str, list[tuple[float, float]]] = {r: [v] for r, v in rooms.items()}
        self.op_times: list[float] = []
        self.ops: list[OpRecord] = []
        self.intent_dues: list[float] = []
        self.intents: list[Intent] = []  # sorted by due

    # ------------------------------------------------------------ writing (the running world)

    def record_device(self, t: float, target: tuple[str, str], state: dict[str, str]) -> None:
        self.dev_times[target].append(t)
        self.dev_states[target].append(dict(state))

    def record_presence(self, t: float, user: str, where: str, room: str) -> None:
        self.pres_times[user].append(t)
        self.pres_states[user].append((where, room))

    def record_room(self, t: float, room: str, temp: float, hum: float) -> None:
        self.room_times[room].append(t)
        self.room_vals[room].append((temp, hum))

    def record_op(self, rec: OpRecord) -> None:
        self.op_times.append(rec.minute)
        self.ops.append(rec)

    def add_intent(self, intent: Intent) -> None:
        i = bisect.bisect_right(self.intent_dues, intent.due)
        self.intent_dues.insert(i, intent.due)
        self.intents.insert(i, intent)

    # ------------------------------------------------------------ reading (acceptance, oracle)

    def device_state(self, target: tuple[str, str], t: float) -> dict[str, str]:
        times = self.dev_times[target]
        return self.dev_states[target][bisect.bisect_left(times, t - EPS) - 1]

    def presence(self, user: str, t: float) -> tuple[str, str]:
        """(home | away | asleep, room) of ``user`` just before ``t``."""
        times = self.pres_times[user]
        return self.pres_states[user][bisect.bisect_left(times, t - EPS) - 1]

    def room_env(self, room: str, t: float) -> tuple[float, float]:
        """(temperature C, humidity %) of ``room`` at its last physics update before ``t``."""
        times = self.room_times[room]
        return self.room_vals[room][bisect.bisect_left(times, t - EPS) - 1]

    def ops_between(self, lo: float, hi: float) -> list[OpRecord]:
        """Operations with lo <= minute < hi."""
        return self.ops[bisect.bisect_left(self.op_times, lo - EPS):bisect.bisect_left(self.op_times, hi - EPS)]

    def pending_intents(self, t: float, horizon: float) -> list[Intent]:
        """Intents formed by ``t``, not yet ended before ``t``, due within [t - 1, t + horizon]."""
        lo = bisect.bisect_left(self.intent_dues, t - 1.0)
        hi = bisect.bisect_right(self.intent_dues, t + horizon)
        return [i for i in self.intents[lo:hi] if i.created <= t + EPS and i.end >= t - EPS]

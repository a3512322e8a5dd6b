"""Behaviour: the choice seam, habits (routines in time windows), intents, comfort reactions, noise.

A ``Habit`` belongs to one resident: at an anchor of their day (wake, prep_leave, return,
prep_bed), at a clock time or relative to sunset, with time jitter, on weekdays / weekends /
all days, with a probability, and optionally only when a condition holds: ``dark`` (the step's
room reads less illuminance than the resident's ``Prefs.lux_low``), ``cold`` (it reads colder than
their ``Prefs.warm_low``), ``hot`` (warmer than their ``Prefs.temp_high``), ``empty`` (everyone
else is out), ``acon`` (the AC is on). Conditions read what the home senses: the room's latest
sensor readings (``World.sensed``), never the hidden outdoor truth. Its ``steps`` are an ordered action bundle. When a habit fires it becomes an
``Intent``: the concrete actions the resident will perform at ``due``, formed at ``created``
(the oracle and the acceptance model read pending intents; they are the hidden truth).

Building the actions of an intent (``plan``) applies the home's rules: steps whose device is
already in the asked state are dropped (nobody turns off a light that is off), an appliance on
a smart plug that is off gets "plug on" first, and each device's actions are in dependency
order (power before mode before set-points).

Every stochastic choice goes through a ``Chooser``; ``FixedChooser`` replaces it with fixed
answers so that a test can predict a persona's operations exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sim.log import DeviceSpec, HomeSpec
from sim.world.people import PERSONAS, DayMode, Prefs

# ---------------------------------------------------------------- the choice seam


class Chooser:
    """Every random choice people make, drawn from one ``numpy.random.Generator``."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def normal(self, mu: float, sd: float) -> float:
        return mu + sd * self.rng.standard_normal() if sd > 0 else mu

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.rng.random()

    def exponential(self, mean: float) -> float:
        return self.rng.exponential(mean)

    def pick(self, seq: Sequence):
        return seq[int(self.rng.integers(len(seq)))]

    def index(self, n: int) -> int:
        return int(self.rng.integers(n))


class FixedChooser(Chooser):
    """Fixed answers: ``chance(p)`` is ``p >= threshold``, normals and uniforms give their centre,
    ``pick`` the first item, exponential waits its mean. For tests that predict operations."""

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__(np.random.default_rng(0))
        self.threshold = threshold

    def chance(self, p: float) -> bool:
        return p >= self.threshold

    def normal(self, mu: float, sd: float) -> float:
        return mu

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2

    def exponential(self, mean: float) -> float:
        return mean

    def pick(self, seq: Sequence):
        return seq[0]

    def index(self, n: int) -> int:
        return 0


# ---------------------------------------------------------------- habits and intents

Step = tuple[str, str, str, str]  # (room, device, field, value); templates use room roles and @tokens


@dataclass(frozen=True)
class Habit:
    """A resident's routine. ``at``: minutes after the anchor (clock: minute of day; sunset:
    minutes after sunset). ``jitter``: sd minutes. ``when``: "" | dark | cold | hot | empty | acon
    (read in the room of the first step)."""

    name: str
    user: str
    anchor: str  # wake | prep_leave | return | prep_bed | clock | sunset
    at: float
    jitter: float
    days: str  # all | weekday | weekend | saturday
    prob: float
    steps: tuple[Step, ...]
    when: str = ""
    mode: str = ""  # a day mode's habit (``MODE_TEMPLATES``): only on such days; "": a usual habit

    def on_day(self, weekday: int) -> bool:
        return (self.days == "all" or (self.days == "weekday" and weekday < 5)
                or (self.days == "weekend" and weekday >= 5) or (self.days == "saturday" and weekday == 5))


@dataclass(eq=False)
class Intent:
    """A concrete plan: ``user`` will perform ``actions`` at ``due`` (minutes after start).

    ``created``: when the plan formed (the oracle may read it from then on). ``end``: when it
    was carried out, cancelled or satisfied by an accepted recommendation (inf while pending).
    """

    user: str
    habit: str
    created: float
    due: float
    actions: tuple  # tuple[Action, ...]
    end: float = float("inf")
    status: str = "pending"  # pending | done | cancelled | accepted
    source: str = ""  # fixed source (automation) or "" for the resident's usual mix
    meta: dict = field(default_factory=dict)


# (anchor, at, jitter, days, prob, when, steps with room roles: sleep | day | <room> | *)
TEMPLATES: tuple[tuple[str, str, float, float, str, float, str, tuple[Step, ...]], ...] = (
    ("curtain_morning", "wake", 15, 8, "all", 0.85, "", (("sleep", "curtain", "action", "open"),)),
    ("curtain_day_morning", "wake", 40, 15, "all", 0.7, "", (("day", "curtain", "action", "open"),)),
    ("light_morning", "wake", 1, 0.5, "all", 0.85, "dark",
     (("sleep", "light", "power", "on"), ("sleep", "light", "brightness", "@bright"))),
    ("light_morning_off", "wake", 24, 5, "all", 0.7, "", (("sleep", "light", "power", "off"),)),
    ("warmer_morning", "wake", 3, 2, "all", 0.65, "cold",
     (("bathroom", "bath_warmer", "power", "on"), ("bathroom", "bath_warmer", "mode", "heat"))),
    ("warmer_morning_off", "wake", 35, 5, "all", 0.7, "", (("bathroom", "bath_warmer", "power", "off"),)),
    ("kettle", "wake", 14, 4, "weekday", 0.6, "",
     (("*", "kettle", "power", "on"), ("*", "kettle", "target_temperature", "@kettle"))),
    ("music_morning", "wake", 18, 5, "weekend", 0.5, "",
     (("day", "speaker", "playback", "play"), ("day", "speaker", "volume", "@vol"))),
    ("leave_off", "prep_leave", 4, 2, "all", 0.85, "",
     (("day", "light", "power", "off"), ("day", "ac", "power", "off"), ("day", "tv", "power", "off"))),
    ("leave_lock", "prep_leave", 9, 1, "all", 0.85, "empty", (("hallway", "lock", "lock", "locked"),)),
    ("leave_camera", "prep_leave", 8, 1, "weekday", 0.6, "empty",
     (("*", "camera", "power", "on"), ("*", "camera", "motion_detection", "on"))),
    ("leave_vacuum", "prep_leave", 7, 2, "weekday", 0.5, "empty", (("*", "robot_vacuum", "command", "start"),)),
    ("return_unlock", "return", 0.5, 0.2, "all", 0.7, "", (("hallway", "lock", "lock", "unlocked"),)),
    ("return_light", "return", 1.5, 0.5, "all", 0.85, "dark",
     (("day", "light", "power", "on"), ("day", "light", "brightness", "@bright"))),
    ("return_camera", "return", 3, 1, "all", 0.6, "",
     (("*", "camera", "motion_detection", "off"), ("*", "camera", "power", "off"))),
    ("return_vacuum", "return", 6, 2, "all", 0.5, "", (("*", "robot_vacuum", "command", "return_to_base"),)),
    ("return_tv", "return", 12, 5, "weekday", 0.45, "",
     (("day", "tv", "power", "on"), ("day", "tv", "volume", "@vol"))),
    ("tv_evening", "clock", 20 * 60, 25, "all", 0.45, "",
     (("day", "tv", "power", "on"), ("day", "tv", "volume", "@vol"))),
    ("dusk", "sunset", 10, 12, "all", 0.7, "", (("day", "curtain", "action", "close"),)),
    ("dusk_light", "sunset", 12, 12, "all", 0.8, "dark",
     (("day", "light", "power", "on"), ("day", "light", "brightness", "@bright"))),
    ("rice", "clock", 17 * 60 + 45, 12, "weekday", 0.55, "",
     (("kitchen", "rice_cooker", "power", "on"), ("kitchen", "rice_cooker", "mode", "cook"))),
    ("dishwasher", "clock", 20 * 60 + 45, 20, "all", 0.45, "",
     (("kitchen", "dishwasher", "power", "on"), ("kitchen", "dishwasher", "program", "eco"))),
    ("tv_afternoon", "clock", 15 * 60, 30, "weekend", 0.45, "",
     (("day", "tv", "power", "on"), ("day", "tv", "volume", "@vol"))),
    ("brunch", "clock", 11 * 60, 25, "weekend", 0.5, "",
     (("*", "kettle", "power", "on"), ("*", "kettle", "target_temperature", "@kettle"))),
    ("laundry", "clock", 10 * 60 + 15, 25, "weekend", 0.55, "",
     (("*", "washer", "power", "on"), ("*", "washer", "program", "cotton"))),
    ("vacuum_saturday", "clock", 11 * 60, 20, "saturday", 0.6, "", (("*", "robot_vacuum", "command", "start"),)),
    ("bath", "prep_bed", 0, 8, "all", 0.55, "cold",
     (("bathroom", "water_heater", "power", "on"), ("bathroom", "water_heater", "target_temperature", "50"))),
    ("warmer_evening", "prep_bed", 20, 6, "all", 0.55, "cold",
     (("bathroom", "bath_warmer", "power", "on"), ("bathroom", "bath_warmer", "mode", "heat"))),
    ("warmer_evening_off", "prep_bed", 55, 5, "all", 0.7, "", (("bathroom", "bath_warmer", "power", "off"),)),
    ("night_living_off", "prep_bed", 63, 3, "all", 0.85, "",
     (("day", "tv", "power", "off"), ("day", "light", "power", "off"))),
    ("bedside", "prep_bed", 68, 2, "all", 0.6, "dark",
     (("sleep", "light", "power", "on"), ("sleep", "light", "brightness", "30"))),
    ("night_lock", "prep_bed", 72, 3, "all", 0.6, "", (("hallway", "lock", "lock", "locked"),)),
    ("curtain_night", "prep_bed", 80, 3, "all", 0.85, "", (("sleep", "curtain", "action", "close"),)),
    ("purifier_night", "prep_bed", 88, 2, "all", 0.55, "",
     (("sleep", "air_purifier", "power", "on"), ("sleep", "air_purifier", "mode", "sleep"))),
    ("ac_night", "prep_bed", 90, 2, "all", 0.55, "acon", (("sleep", "ac", "target_temperature", "@sleep_ac"),)),
    ("light_night_off", "prep_bed", 94, 1, "all", 0.9, "", (("sleep", "light", "power", "off"),)),
    # a parent in the children's room once the child is home from school, and at the child's bedtime
    ("kids_homework", "clock", 16 * 60 + 40, 10, "weekday", 0.55, "dark",
     (("kids_room", "light", "power", "on"), ("kids_room", "light", "brightness", "80"))),
    ("kids_purifier", "clock", 19 * 60 + 30, 15, "all", 0.5, "",
     (("kids_room", "air_purifier", "power", "on"), ("kids_room", "air_purifier", "mode", "sleep"))),
)
# Habits of day modes (``sim.world.people.DayMode``), for the residents the mode applies to, on
# such days only: (name, mode, anchor, at, jitter, prob, when, steps); role ``work``: the study
# if the home has one, else the day room.
MODE_TEMPLATES: tuple[tuple[str, str, str, float, float, float, str, tuple[Step, ...]], ...] = (
    ("wfh_light", "wfh", "wake", 45, 5, 0.8, "dark",
     (("work", "light", "power", "on"), ("work", "light", "brightness", "@bright"))),
    ("wfh_music", "wfh", "wake", 50, 5, 0.6, "", (("work", "speaker", "playback", "play"), ("work", "speaker", "volume", "@vol"))),
    ("wfh_kettle", "wfh", "clock", 10 * 60 + 30, 20, 0.6, "",
     (("*", "kettle", "power", "on"), ("*", "kettle", "target_temperature", "@kettle"))),
    ("wfh_done", "wfh", "clock", 17 * 60 + 30, 20, 0.7, "",
     (("work", "speaker", "playback", "pause"), ("work", "light", "power", "off"))),
    ("trip_camera", "out_all_day", "prep_leave", 8, 1, 0.8, "empty",
     (("*", "camera", "power", "on"), ("*", "camera", "motion_detection", "on"))),
    ("trip_vacuum", "out_all_day", "prep_leave", 7, 2, 0.7, "empty", (("*", "robot_vacuum", "command", "start"),)),
    ("trip_heat", "out_all_day", "return", 3, 1, 0.6, "cold",
     (("day", "heater", "power", "on"), ("day", "heater", "target_temperature", "@heat"))),
    ("guests_light", "guests", "clock", 18 * 60 + 10, 10, 0.85, "",
     (("day", "light", "power", "on"), ("day", "light", "brightness", "100"))),
    ("guests_music", "guests", "clock", 18 * 60 + 20, 10, 0.65, "",
     (("day", "speaker", "playback", "play"), ("day", "speaker", "volume", "@vol"))),
    ("guests_kitchen", "guests", "clock", 18 * 60 + 40, 10, 0.6, "", (("kitchen", "light", "power", "on"),)),
    ("guests_bye", "guests", "clock", 21 * 60 + 35, 10, 0.7, "",
     (("day", "speaker", "playback", "pause"), ("day", "light", "brightness", "@bright"))),
    ("sick_purifier", "sick", "wake", 10, 3, 0.7, "",
     (("sleep", "air_purifier", "power", "on"), ("sleep", "air_purifier", "mode", "sleep"))),
    ("sick_humidifier", "sick", "wake", 12, 3, 0.7, "",
     (("sleep", "humidifier", "power", "on"), ("sleep", "humidifier", "target_humidity", "50"))),
    ("sick_heat", "sick", "wake", 15, 3, 0.6, "cold",
     (("sleep", "heater", "power", "on"), ("sleep", "heater", "target_temperature", "@heat"))),
    ("sick_kettle", "sick", "clock", 10 * 60, 30, 0.7, "",
     (("*", "kettle", "power", "on"), ("*", "kettle", "target_temperature", "@kettle"))),
    ("rainy_dry", "rainy_weekend", "clock", 11 * 60 + 30, 30, 0.6, "",
     (("*", "dehumidifier", "power", "on"), ("*", "dehumidifier", "target_humidity", "50"))),
    ("rainy_light", "rainy_weekend", "clock", 13 * 60, 30, 0.7, "dark",
     (("day", "light", "power", "on"), ("day", "light", "brightness", "@bright"))),
    ("rainy_tv", "rainy_weekend", "clock", 14 * 60 + 30, 30, 0.7, "",
     (("day", "tv", "power", "on"), ("day", "tv", "volume", "@vol"))),
)
# the usual habits a day mode replaces for the residents it applies to
MODE_REPLACES: dict[str, frozenset[str]] = {
    "sick": frozenset({"curtain_morning", "curtain_day_morning", "music_morning", "kettle", "tv_afternoon"}),
    "guests": frozenset({"tv_evening", "return_tv", "dishwasher"}),
    "rainy_weekend": frozenset({"tv_afternoon", "curtain_day_morning"}),
    "wfh": frozenset({"music_morning"}),
}
HABIT_KEEP = 0.8  # chance that a resident has a template habit at all (homes differ)


def habit_active(h: Habit, weekday: int, mode: DayMode) -> bool:
    """Whether habit ``h`` applies on a day (``weekday``, the household's ``mode``): a usual habit
    on its days unless the resident's mode replaces it (``MODE_REPLACES``), a mode's habit only
    when the resident lives that mode."""
    own = mode.of(h.user)
    if h.mode:
        return h.mode == own
    return h.on_day(weekday) and h.name not in MODE_REPLACES.get(own, ())


BEDROOMS = ("master_bedroom", "bedroom", "guest_room", "kids_room")
DAY_ROOMS = ("living_room", "study", "dining_room")


def sleep_room(home: HomeSpec, persona: str, k: int) -> str:
    """The room a resident sleeps in: children the kids' room; the first two adults (a couple)
    the best-equipped bedroom, later adults the next one."""
    if persona == "child" and "kids_room" in home.rooms:
        return "kids_room"
    n = {r: sum(d.room == r for d in home.devices) for r in home.rooms}
    beds = sorted((r for r in BEDROOMS[:3] if r in home.rooms), key=lambda r: -n[r])
    if not beds:
        return "living_room" if "living_room" in home.rooms else home.rooms[0]
    return beds[0] if k < 2 or len(beds) == 1 else beds[min(len(beds) - 1, k - 1)]


def day_room(home: HomeSpec, persona: str) -> str:
    if persona == "remote_worker" and "study" in home.rooms:
        return "study"
    return "living_room" if "living_room" in home.rooms else home.rooms[0]


def work_room(home: HomeSpec, persona: str) -> str:
    """Where a resident works from home: the study if there is one, else their day room."""
    return "study" if "study" in home.rooms else day_room(home, persona)


def find_device(home: HomeSpec, room: str, type_name: str) -> DeviceSpec | None:
    """First device of ``type_name`` in ``room`` (``*``: anywhere). A day-room role falls back to
    the other day rooms (living room, study, dining room)."""
    for d in home.devices:
        if d.type == type_name and (room == "*" or d.room == room):
            return d
    if room in DAY_ROOMS:
        for r in DAY_ROOMS:
            for d in home.devices:
                if d.type == type_name and d.room == r:
                    return d
    return None


def make_habits(home: HomeSpec, users: Sequence[str], prefs: dict[str, Prefs], ch: Chooser) -> list[Habit]:
    """Each resident's habits: the templates (usual ones, then the day modes') whose devices exist,
    kept with prob HABIT_KEEP. Children have no clock or sunset habits; the children's room
    templates exist only in homes with a child."""
    out: list[Habit] = []
    with_child = "child" in home.residents
    templates = [(name, "", *rest) for name, *rest in TEMPLATES]
    templates += [(name, mode, anchor, at, jitter, "all", prob, when, steps)
                  for name, mode, anchor, at, jitter, prob, when, steps in MODE_TEMPLATES]
    for k, user in enumerate(users):
        persona = PERSONAS[home.residents[k]]
        rooms = {"sleep": sleep_room(home, persona.name, k), "day": day_room(home, persona.name),
                 "work": work_room(home, persona.name)}
        pf = prefs[user]
        tokens = {"@bright": str(pf.brightness), "@vol": str(pf.volume), "@kettle": ch.pick(("100", "90", "80")),
                  "@sleep_ac": str(min(30, pf.cool_target + 1)), "@heat": str(pf.heat_target)}
        for name, mode, anchor, at, jitter, days, prob, when, steps in templates:
            if persona.name == "child" and anchor in ("clock", "sunset"):
                continue
            if not with_child and any(role == "kids_room" for role, *_ in steps):
                continue
            if not ch.chance(HABIT_KEEP):
                continue
            concrete = []
            for role, type_name, fld, value in steps:
                d = find_device(home, rooms.get(role, role), type_name)
                if d is not None:
                    concrete.append((d.room, d.name, fld, tokens.get(value, value)))
            if concrete:
                p = min(0.97, prob * persona.activity)
                at_k = at + (ch.normal(0.0, 20.0) if anchor in ("clock",) else 0.0)
                out.append(Habit(name, user, anchor, at_k, jitter, days, p, tuple(concrete), when, mode))
    return out

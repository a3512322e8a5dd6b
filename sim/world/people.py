"""People: persona archetypes, personal comfort preferences and daily schedules with jitter.

A ``Persona`` is an archetype (early bird, night owl, family parent, child, elderly, remote
worker, shift worker, student): when they wake and sleep on weekdays and weekends, whether and
when they leave home, how they operate devices (app / voice / physical shares) and how many of
their physical operations leave no log. ``Prefs`` are one resident's drawn comfort preferences.
``day_schedule`` gives one resident's anchors for one day: wake, prepare to leave, leave,
return, prepare for bed, sleep (absolute minutes after the simulation start).

A ``DayMode`` breaks the household's routine for a day (work from home, out all day, guests,
sick, rainy weekend): ``draw_day_modes`` draws one per day for the whole run, for some residents;
it moves their anchors (``day_schedule``) and switches which of their habits apply
(``sim.world.behaviour.habit_active``).

The stochastic parts go through a ``Chooser`` (``sim.world.behaviour``), so a test can replace them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.world.behaviour import Chooser


@dataclass(frozen=True)
class Persona:
    """An archetype; hours are local clock hours (bed may exceed 24: after midnight)."""

    name: str
    wake: float  # weekday wake-up hour
    wake_weekend: float
    bed: float  # weekday sleep hour
    bed_weekend: float
    works_out: bool  # leaves home on weekdays
    leave: float  # weekday leave hour
    back: float  # weekday return hour
    jitter: float  # minutes, sd of every anchor
    p_out_weekend: float  # chance of an afternoon out on a weekend day (or a weekday errand)
    app: float  # share of operations through the app ...
    voice: float  # ... by voice; the rest are physical (switches, remotes)
    unlogged: float  # share of physical operations that leave no log
    activity: float  # multiplies habit probabilities and the noise rate
    night_shift: bool = False  # alternates day-shift and night-shift weeks


PERSONAS: dict[str, Persona] = {p.name: p for p in (
    Persona("early_bird", 5.75, 7.5, 21.75, 22.25, True, 7.25, 16.75, 10, 0.5, 0.55, 0.15, 0.3, 1.0),
    Persona("night_owl", 8.75, 11.0, 25.25, 26.0, True, 9.5, 19.5, 20, 0.6, 0.6, 0.2, 0.3, 1.0),
    Persona("family_parent", 6.5, 8.5, 23.0, 23.5, True, 7.75, 18.0, 12, 0.6, 0.5, 0.2, 0.35, 1.1),
    Persona("child", 7.0, 8.75, 21.0, 21.75, True, 7.6, 16.25, 10, 0.0, 0.2, 0.3, 0.5, 0.6),
    Persona("elderly", 6.0, 6.0, 21.25, 21.25, False, 9.5, 11.0, 10, 0.5, 0.2, 0.3, 0.45, 0.9),
    Persona("remote_worker", 7.5, 9.25, 23.5, 24.25, False, 12.25, 13.0, 15, 0.5, 0.6, 0.25, 0.3, 1.2),
    Persona("shift_worker", 6.0, 9.0, 22.0, 23.5, True, 6.5, 15.0, 12, 0.4, 0.5, 0.15, 0.4, 0.9, night_shift=True),
    Persona("student", 8.25, 10.75, 24.75, 25.5, True, 9.0, 17.5, 25, 0.7, 0.7, 0.15, 0.3, 0.9),
)}
PREP_BED = 100.0  # minutes between the start of the evening routine and sleep
ADULT_PERSONAS: tuple[str, ...] = tuple(p for p in PERSONAS if p != "child")


@dataclass(frozen=True)
class Prefs:
    """One resident's comfort preferences (drawn once per resident)."""

    temp_low: float  # degrees C: colder than this and they heat
    temp_high: float  # hotter than this and they cool
    cool_target: int  # AC set-point when cooling
    heat_target: int  # set-point when heating
    hum_low: float  # % below which a humidifier goes on
    hum_high: float  # % above which a dehumidifier goes on
    brightness: int  # preferred light brightness, %
    volume: int  # preferred TV / speaker volume, %
    lux_low: float = 60.0  # lux: a room darker than this needs a light (to this resident)
    warm_low: float = 20.0  # degrees C: a bathroom colder than this wants the warmer / a hot bath
    switch_on_enter: float = 0.5  # chance of switching on the light of a dark room they walk into
    switch_off_leave: float = 0.5  # chance of switching off the lights of a room they leave empty


def sample_prefs(ch: Chooser) -> Prefs:
    lo = round(ch.normal(18.0, 1.0), 1)
    hi = round(ch.normal(26.0, 1.0), 1)
    return Prefs(temp_low=min(lo, hi - 4), temp_high=hi,
                 cool_target=int(min(28, max(20, round(ch.normal(24.5, 1.2))))),
                 heat_target=int(min(28, max(18, round(ch.normal(22.0, 1.2))))),
                 hum_low=round(ch.normal(33.0, 4.0), 1), hum_high=round(ch.normal(72.0, 4.0), 1),
                 brightness=int(ch.pick((40, 60, 80, 100))), volume=int(ch.pick((15, 20, 25, 30, 40))),
                 lux_low=round(min(150.0, max(25.0, ch.normal(70.0, 25.0)))), warm_low=round(ch.normal(20.5, 1.0), 1),
                 switch_on_enter=round(ch.uniform(0.3, 0.95), 2), switch_off_leave=round(ch.uniform(0.2, 0.9), 2))


def is_weekend(day: int, start_weekday: int) -> bool:
    return (start_weekday + day) % 7 >= 5


# ---------------------------------------------------------------- day modes


@dataclass(frozen=True)
class DayMode:
    """What kind of day it is for the household. ``users``: the residents it applies to (the
    others live a normal day); a normal day applies to nobody."""

    name: str = "normal"  # normal | wfh | out_all_day | guests | sick | rainy_weekend
    users: tuple[str, ...] = ()

    def of(self, user: str) -> str:
        """The mode ``user`` lives today."""
        return self.name if user in self.users else "normal"


NORMAL_DAY = DayMode()
DAY_MODES = ("normal", "wfh", "out_all_day", "guests", "sick", "rainy_weekend")
# chance of a mode on a day (weekday, weekend), tried in this order, the first drawn wins:
# a rainy or snowy weekend day keeps the family in; someone falls ill; a commuter works from home;
# the family spends a weekend day out; friends come for the evening
P_RAINY_WEEKEND = 0.7
P_SICK = 0.04
P_WFH = 0.2
P_OUT_ALL_DAY = 0.15
P_GUESTS = (0.06, 0.15)
OUT_ALL_DAY = (9.75, 19.5)  # hours: the family leaves and comes back
GUESTS = (18.25, 21.5)  # hours: guests arrive and leave (they are in the day room)
SICK_LATER = 60.0  # minutes: a sick resident wakes this much later and goes to bed this much earlier
GUESTS_LATER = 45.0  # minutes: bedtime on an evening with guests


def draw_day_modes(users: list[str], personas: dict[str, Persona], weekend: list[bool], bad_weather: list[bool],
                   ch: Chooser) -> list[DayMode]:
    """One ``DayMode`` per day (``weekend``/``bad_weather``: one flag per day)."""
    commuters = [u for u in users if personas[u].works_out and personas[u].name != "child"
                 and not personas[u].night_shift]
    adults = tuple(u for u in users if personas[u].name != "child")
    out = []
    for we, bad in zip(weekend, bad_weather, strict=True):
        if we and bad and ch.chance(P_RAINY_WEEKEND):
            out.append(DayMode("rainy_weekend", tuple(users)))
        elif ch.chance(P_SICK):
            out.append(DayMode("sick", (ch.pick(users),)))
        elif not we and commuters and ch.chance(P_WFH):
            out.append(DayMode("wfh", (ch.pick(commuters),)))
        elif we and ch.chance(P_OUT_ALL_DAY):
            out.append(DayMode("out_all_day", tuple(users)))
        elif adults and ch.chance(P_GUESTS[we]):
            out.append(DayMode("guests", adults))
        else:
            out.append(NORMAL_DAY)
    return out


def day_schedule(p: Persona, day: int, start_weekday: int, ch: Chooser,
                 bad_weather: bool = False, mode: str = "normal") -> list[tuple[float, str]]:
    """Anchors of one day as (minute after simulation start, anchor), in time order.

    Anchors: ``wake``, ``prep_leave`` (10 min before ``leave``), ``leave``, ``return``,
    ``prep_bed`` (``PREP_BED`` = 100 min before ``sleep``: the evening routine), ``sleep``.
    A night-shift week (odd weeks for a shift worker) inverts the day: return in the morning,
    sleep until afternoon, leave at night.
    Optional outings (weekends; errands of those who stay home) are rarer on a rainy or snowy day.
    ``mode`` (the resident's ``DayMode.of``): ``wfh`` and ``sick`` keep them home (a sick resident
    wakes ``SICK_LATER`` later and goes to bed as much earlier), ``out_all_day`` takes them out from
    ``OUT_ALL_DAY[0]`` to ``OUT_ALL_DAY[1]``, ``guests`` puts bedtime ``GUESTS_LATER`` later,
    ``rainy_weekend`` has no outing.
    """
    base = day * 1440.0
    weekend = is_weekend(day, start_weekday)
    j = p.jitter

    def at(hour: float) -> float:
        return base + hour * 60.0 + ch.normal(0.0, j)

    out: list[tuple[float, str]] = []
    if p.night_shift and (day // 7) % 2 == 1 and not weekend:
        ret = at(6.75)
        out += [(ret, "return"), (ret + 5, "prep_bed"), (ret + 5 + PREP_BED, "sleep"), (at(14.5), "wake"),
                (base + 21.0 * 60, "prep_leave"), (base + 21.0 * 60 + 10, "leave")]
        return out
    wake = at(p.wake_weekend if weekend else p.wake) + (SICK_LATER if mode == "sick" else 0.0)
    out.append((wake, "wake"))
    if mode == "out_all_day":
        leave = max(at(OUT_ALL_DAY[0]), wake + 45)
        out += [(leave - 10, "prep_leave"), (leave, "leave"), (max(at(OUT_ALL_DAY[1]), leave + 300), "return")]
    elif mode in ("wfh", "sick", "rainy_weekend"):
        pass  # at home all day
    elif not weekend and p.works_out:
        leave = max(at(p.leave), wake + 20)
        out += [(leave - 10, "prep_leave"), (leave, "leave"), (max(at(p.back), leave + 60), "return")]
    elif ch.chance(p.p_out_weekend * (1.0 if weekend else 0.5) * (0.4 if bad_weather else 1.0)):
        leave = max(at(14.0 if weekend else p.leave), wake + 30)
        out += [(leave - 10, "prep_leave"), (leave, "leave"), (leave + max(45.0, ch.normal(180.0, 40.0)), "return")]
    later = {"sick": -SICK_LATER, "guests": GUESTS_LATER}.get(mode, 0.0)
    sleep = max(at(p.bed_weekend if weekend else p.bed) + later, out[-1][0] + PREP_BED + 10)
    out += [(sleep - PREP_BED, "prep_bed"), (sleep, "sleep")]
    return out

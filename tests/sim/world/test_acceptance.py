"""The acceptance model's factors and the oracle, on hand-made situations in a fixed home."""

import math
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from sim.describe import describe
from sim.log import DeviceSpec, HomeLog, HomeSpec
from sim.records import Action
from sim.world import SimConfig, simulate_home
from sim.world import acceptance as A
from sim.world.acceptance import p_accept
from sim.world.activity import perform
from sim.world.behaviour import FixedChooser
from sim.world.live import LiveHome
from sim.world.oracle import oracle_predict

HOME = HomeSpec("h00042", 42, ("living_room", "bedroom"), (
    DeviceSpec("bedroom", "curtain", "curtain"), DeviceSpec("bedroom", "light", "light"),
    DeviceSpec("living_room", "light", "light"), DeviceSpec("living_room", "curtain", "curtain"),
    DeviceSpec("bedroom", "ac", "ac")), ("early_bird",), "temperate")
QUIET = SimConfig(days=2, start=date(2026, 1, 5), noise_scale=0, app_opens_per_day=0, p_automation=0,
                  vary_base=0, vary_per_device=0)
LIGHT_ON = (Action("living_room", "light", "power", "on"),)
LIGHT_OFF = (Action("living_room", "light", "power", "off"),)
AC_ON = (Action("bedroom", "ac", "power", "on"),)
AC_OFF = (Action("bedroom", "ac", "power", "off"),)
CURTAIN_OPEN = (Action("bedroom", "curtain", "action", "open"),)


def at(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 1, 5, h, m, s)


@pytest.fixture()
def live() -> LiveHome:
    home = LiveHome(QUIET, 42, home=HOME, chooser=FixedChooser())
    home.advance(at(12))
    return home


def test_conflict_window_two_minutes_for_lights(live):
    live.apply(LIGHT_ON)
    live.advance(at(12, 5))
    live.apply(LIGHT_OFF)  # a manual "off" at 12:05
    for t, expected in ((at(12, 6), A.CONFLICT), (at(12, 6, 50), A.CONFLICT), (at(12, 7, 10), 0.0)):
        assert p_accept(live.log, t, LIGHT_ON, describe(LIGHT_ON)).factors["conflict"] == expected, t
    inside = p_accept(live.log, at(12, 6), LIGHT_ON, describe(LIGHT_ON)).p
    outside = p_accept(live.log, at(12, 7, 10), LIGHT_ON, describe(LIGHT_ON)).p
    assert inside < outside / 20


def test_conflict_window_ten_minutes_for_an_ac(live):
    live.apply(AC_ON)
    live.advance(at(12, 30))
    live.apply(AC_OFF)
    assert p_accept(live.log, at(12, 39, 30), AC_ON, describe(AC_ON)).factors["conflict"] == A.CONFLICT
    assert p_accept(live.log, at(12, 40, 30), AC_ON, describe(AC_ON)).factors["conflict"] == 0.0
    # the same setting again is no conflict, and neither is an automation's "off"
    assert p_accept(live.log, at(12, 35), AC_OFF, describe(AC_OFF)).factors["conflict"] == 0.0


def test_automation_is_not_a_manual_operation(live):
    perform(live.world, "automation", LIGHT_ON, "automation")
    live.advance(at(12, 1))
    perform(live.world, "automation", LIGHT_OFF, "automation")
    assert p_accept(live.log, at(12, 2), LIGHT_ON, describe(LIGHT_ON)).factors["conflict"] == 0.0


def test_illegal_recommendations_are_never_accepted(live):
    for acts in ((Action("garage", "light", "power", "on"),), (Action("bedroom", "ac", "target_temperature", "99"),),
                 (Action("bedroom", "light", "volume", "5"),), ()):
        j = live.judge(acts, "whatever")
        assert j.p == 0.0 and j.factors["illegal"] == 1.0


def test_unclear_description_lowers_acceptance(live):
    good = live.judge(AC_ON, describe(AC_ON))
    assert good.factors["unclear_description"] == 0.0
    assert live.judge(AC_ON, "").factors["unclear_description"] == A.NO_DESC
    assert live.judge(AC_ON, "turn on the air conditioner").factors["unclear_description"] == A.NO_ROOM
    assert live.judge(AC_ON, "").p < good.p


@pytest.fixture(scope="module")
def day_log() -> HomeLog:
    return simulate_home(QUIET, 42, home=HOME, chooser=FixedChooser())


def test_near_future_intent_and_habit_window_raise_acceptance(day_log):
    """At 05:50 the early bird is about to open the bedroom curtains (planned at 05:45 for 06:00)."""
    j = p_accept(day_log, at(5, 50), CURTAIN_OPEN, describe(CURTAIN_OPEN))
    assert j.factors["intent_match"] == A.INTENT_FULL and j.factors["habit_window"] == A.HABIT_FULL
    assert j.p > 0.9
    extra = CURTAIN_OPEN + LIGHT_ON  # the plan plus an unwanted action: partly welcome
    assert p_accept(day_log, at(5, 50), extra, describe(extra)).factors["intent_match"] == A.INTENT_PART / 2
    later = p_accept(day_log, at(13, 0), CURTAIN_OPEN, describe(CURTAIN_OPEN))  # done, and nobody home
    assert later.factors["intent_match"] == 0.0 and later.factors["time_inappropriate"] <= A.REDUNDANT
    assert later.p < 0.05


def test_environment_inconsistent(day_log):
    dark = p_accept(day_log, at(23, 0) + timedelta(days=1), CURTAIN_OPEN, describe(CURTAIN_OPEN))
    assert dark.factors["environment_inconsistent"] == A.ENV


CURTAIN_CLOSE = (Action("bedroom", "curtain", "action", "close"),)


def test_a_curtain_the_moment_calls_for_is_welcome(day_log):
    """Monday: the early bird opens the bedroom curtain at 06:00, is away 08-17 h, home in the living
    room 17-22 h (dark from ~17 h in January), closes the bedroom curtain at 21:25 and sleeps."""
    need = lambda t, acts: p_accept(day_log, t, acts, describe(acts)).factors["environment_need"]  # noqa: E731
    assert need(at(19), CURTAIN_CLOSE) == A.NEED  # open after dark, someone home and awake
    assert need(at(19), CURTAIN_OPEN) == 0.0  # already open (and dark)
    assert need(at(12), CURTAIN_CLOSE) == 0.0  # daylight, and nobody home
    assert need(at(23), CURTAIN_CLOSE) == 0.0  # closed already, everyone asleep
    assert need(at(6) + timedelta(days=1), CURTAIN_OPEN) == 0.0  # closed and someone up, but still dark
    assert need(at(19), CURTAIN_CLOSE + LIGHT_OFF) == 0.0  # only curtain recommendations
    welcome = p_accept(day_log, at(19), CURTAIN_CLOSE, describe(CURTAIN_CLOSE))
    assert welcome.p == pytest.approx(1 / (1 + math.exp(-(A.BASE + A.NEED))))  # nothing else applies at 19:00


def test_opening_a_closed_curtain_in_daylight_is_welcome():
    """Saturday noon, the early bird home: the bedroom curtain closed by hand at 12:00."""
    home = LiveHome(replace(QUIET, start=date(2026, 1, 10)), 42, home=HOME, chooser=FixedChooser())
    sat = lambda h, m=0: datetime(2026, 1, 10, h, m)  # noqa: E731
    home.advance(sat(12))
    assert home.judge(CURTAIN_OPEN, describe(CURTAIN_OPEN)).factors["environment_need"] == 0.0  # open already
    home.apply(CURTAIN_CLOSE)
    home.advance(sat(12, 30))
    j = home.judge(CURTAIN_OPEN, describe(CURTAIN_OPEN))
    assert j.factors["environment_need"] == A.NEED and j.factors["time_inappropriate"] == 0.0


def test_oracle_is_exact_when_nothing_is_unplanned(day_log):
    ops = day_log.operations
    assert len(ops) >= 10
    for o in ops:
        assert set(oracle_predict(day_log, o.time)) == set(o.actions), o.time
    assert oracle_predict(day_log, at(3, 0)) == ()  # asleep, nothing planned yet


def test_model_works_on_every_logged_time_of_a_finished_home():
    log = simulate_home(SimConfig(seed=4, days=2), 9)
    ps = [p_accept(log, o.time, o.actions, o.description).p for o in log.operations if o.logged]
    assert ps and all(0.0 < p < 1.0 for p in ps)
    for e in log.exposures:  # the logged truth is the model's own answer at that time
        assert p_accept(log, e.time, e.shown, e.description).p == pytest.approx(e.p_accept, abs=1e-9)
    real = HomeLog(home=log.home, start=log.start, days=2)
    with pytest.raises(ValueError, match="hidden"):
        p_accept(real, log.start, LIGHT_ON)

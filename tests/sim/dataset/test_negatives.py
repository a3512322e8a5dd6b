"""DPO negative mining: hand-worked cases of the paper's two rules (Sec. 3.3)."""

from datetime import datetime

import numpy as np
import pytest

from sim.dataset.negatives import NegativeMiner
from sim.prompts import circular_minutes, minute_of_day
from sim.records import Action, Operation

TYPES = {("living_room", "light"): "light", ("bedroom", "ac"): "ac", ("bedroom", "curtain"): "curtain",
         ("kitchen", "fridge"): "fridge"}
LIGHT_ON = Action("living_room", "light", "power", "on")
LIGHT_OFF = Action("living_room", "light", "power", "off")
AC_ON = Action("bedroom", "ac", "power", "on")
AC_OFF = Action("bedroom", "ac", "power", "off")
AC_26 = Action("bedroom", "ac", "target_temperature", "26")
CURTAIN_OPEN = Action("bedroom", "curtain", "action", "open")
CURTAIN_CLOSE = Action("bedroom", "curtain", "action", "close")


def op(h: int, m: int, *acts: Action, user: str = "u0", day: int = 5) -> Operation:
    return Operation(datetime(2026, 1, day, h, m), acts, user=user)


def test_circular_distance_crosses_midnight():
    assert circular_minutes(23 * 60 + 30, 10) == 40
    assert circular_minutes(0, 720) == 720
    assert minute_of_day(datetime(2026, 1, 5, 7, 31)) == 451


def test_conflict_is_the_inverse_within_the_device_window():
    m = NegativeMiner(TYPES)
    m.observe(op(21, 0, LIGHT_OFF))
    m.observe(op(21, 0, AC_OFF))
    # 1 min later: both windows open; the most recent in-window action is the AC's (observed last)
    neg = m.conflict(op(21, 1, CURTAIN_OPEN))
    assert neg is not None and neg.kind == "conflict" and neg.actions == (AC_ON,)
    # 3 min later: the light's 2-min window (high-frequency) has closed, the AC's 10-min one has not
    m2 = NegativeMiner(TYPES)
    m2.observe(op(21, 0, LIGHT_OFF))
    assert m2.conflict(op(21, 2, CURTAIN_OPEN)).actions == (LIGHT_ON,)
    assert m2.conflict(op(21, 3, CURTAIN_OPEN)) is None
    m3 = NegativeMiner(TYPES)
    m3.observe(op(21, 0, AC_OFF))
    assert m3.conflict(op(21, 10, CURTAIN_OPEN)).actions == (AC_ON,)
    assert m3.conflict(op(21, 11, CURTAIN_OPEN)) is None


def test_conflict_never_equals_a_chosen_action_and_skips_same_minute():
    m = NegativeMiner(TYPES)
    m.observe(op(21, 0, LIGHT_OFF))
    # the user turns the light back on: the inverse of "off" is what they chose, so no conflict negative
    assert m.conflict(op(21, 1, LIGHT_ON)) is None
    # an operation at the same minute is not "before" the decision
    m2 = NegativeMiner(TYPES)
    m2.observe(op(21, 5, AC_OFF))
    assert m2.conflict(op(21, 5, CURTAIN_OPEN)) is None


def test_numeric_setting_is_undone_by_power_off_and_no_inverse_means_no_negative():
    m = NegativeMiner(TYPES)
    m.observe(op(15, 0, AC_26))
    assert m.conflict(op(15, 4, CURTAIN_OPEN)).actions == (AC_OFF,)
    m2 = NegativeMiner(TYPES)
    m2.observe(op(15, 0, Action("kitchen", "fridge", "target_temperature", "4")))  # fridge: no inverse
    assert m2.conflict(op(15, 1, CURTAIN_OPEN)) is None


def test_time_negative_is_a_home_action_this_user_never_did_within_an_hour():
    m = NegativeMiner(TYPES)
    m.observe(op(7, 0, CURTAIN_OPEN, user="u0"))
    m.observe(op(19, 0, LIGHT_ON, user="u0"))
    m.observe(op(7, 30, AC_ON, user="u1"))  # another user's habit at 07:30
    m.observe(op(23, 30, LIGHT_OFF, user="u0", day=5))
    # u0 at 07:40 the next day: curtain open was done at 07:00 (within 1 h) -> not a negative;
    # light on at 19:00 and the AC (only u1 did it) are; light off at 23:30 is 8 h away -> negative
    cands = m.time_candidates(op(7, 40, CURTAIN_OPEN, user="u0", day=6))
    assert cands == [LIGHT_ON, AC_ON, LIGHT_OFF]
    # for u1 at 07:40, their own AC at 07:30 is excluded, u0's curtain is a candidate
    assert m.time_candidates(op(7, 40, LIGHT_ON, user="u1", day=6)) == [CURTAIN_OPEN, LIGHT_OFF]
    # +-1 h is inclusive and circular: 00:30 is within an hour of 23:30
    assert LIGHT_OFF not in m.time_candidates(op(0, 30, CURTAIN_CLOSE, user="u0", day=6))
    assert LIGHT_OFF in m.time_candidates(op(0, 31, CURTAIN_CLOSE, user="u0", day=6))


def test_mine_prefers_conflict_then_draws_a_time_negative_reproducibly():
    m = NegativeMiner(TYPES)
    m.observe(op(7, 0, CURTAIN_OPEN))
    m.observe(op(19, 0, LIGHT_ON))
    m.observe(op(20, 0, AC_ON))
    neg = m.mine(op(20, 5, LIGHT_OFF), np.random.default_rng(0))
    assert neg.kind == "conflict" and neg.actions == (AC_OFF,)
    draws = {m.mine(op(13, 0, LIGHT_OFF, day=6), np.random.default_rng(s)).actions for s in range(20)}
    assert draws == {(CURTAIN_OPEN,), (LIGHT_ON,), (AC_ON,)}
    assert m.mine(op(13, 0, LIGHT_OFF, day=6), np.random.default_rng(3)) == \
        m.mine(op(13, 0, LIGHT_OFF, day=6), np.random.default_rng(3))


def test_no_history_no_negative():
    assert NegativeMiner(TYPES).mine(op(7, 0, CURTAIN_OPEN), np.random.default_rng(0)) is None


@pytest.mark.parametrize("device", [("garage", "door")])
def test_actions_on_unknown_devices_are_never_negatives(device):
    m = NegativeMiner(TYPES)
    m.observe(op(7, 0, Action(*device, "power", "off")))
    assert m.mine(op(7, 1, CURTAIN_OPEN), np.random.default_rng(0)) is None

"""The time-of-day frequency baseline on hand-made histories."""

from datetime import datetime

import pytest

from agent.baselines.frequency import FrequencyBaseline
from sim.records import Action, Operation

ON = Action("living_room", "light", "power", "on")
BRIGHT = Action("living_room", "light", "brightness", "60")
OPEN = Action("bedroom", "curtain", "action", "open")
CLOSE = Action("bedroom", "curtain", "action", "close")


def op(day: int, h: int, m: int, *acts: Action, logged: bool = True) -> Operation:
    return Operation(datetime(2026, 1, day, h, m), acts, logged=logged)


def test_most_frequent_set_per_slot_with_order_ignored():
    f = FrequencyBaseline().fit([op(5, 7, 10, OPEN), op(6, 7, 40, OPEN), op(7, 7, 5, ON, BRIGHT),
                                 op(8, 7, 20, BRIGHT, ON), op(9, 7, 50, BRIGHT, ON), op(5, 19, 0, CLOSE)])
    assert set(f.predict(datetime(2026, 2, 1, 7, 59))) == {ON, BRIGHT}  # 3 x {on, bright} beat 2 x open
    assert f.predict(datetime(2026, 2, 1, 19, 30)) == (CLOSE,)


def test_ties_go_to_the_most_recent_and_unlogged_is_ignored():
    f = FrequencyBaseline().fit([op(5, 7, 0, OPEN), op(6, 7, 0, ON), op(7, 7, 0, CLOSE, logged=False)])
    assert f.predict(datetime(2026, 2, 1, 7, 30)) == (ON,)


def test_fallback_to_nearest_slot_then_abstain():
    f = FrequencyBaseline().fit([op(5, 7, 0, OPEN), op(5, 10, 0, CLOSE)])
    assert f.predict(datetime(2026, 2, 1, 8, 15)) == (OPEN,)  # 1 slot back beats 2 ahead
    assert f.predict(datetime(2026, 2, 1, 9, 15)) == (CLOSE,)
    assert f.predict(datetime(2026, 2, 1, 8, 59), keep=lambda a: a == (CLOSE,)) == (CLOSE,)
    assert f.predict(datetime(2026, 2, 1, 0, 0)) == (OPEN,)  # circular: 7h is nearer than 10h
    assert FrequencyBaseline().predict(datetime(2026, 2, 1, 8)) == ()


def test_slot_size():
    f = FrequencyBaseline(slot_minutes=30).fit([op(5, 7, 10, OPEN), op(5, 7, 40, CLOSE), op(6, 7, 45, CLOSE)])
    assert f.predict(datetime(2026, 2, 1, 7, 5)) == (OPEN,)
    with pytest.raises(ValueError, match="slot_minutes"):
        FrequencyBaseline(slot_minutes=7)

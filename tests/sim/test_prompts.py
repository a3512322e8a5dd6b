"""The one prompt builder: history window, decision-time rooms, the ranked device list and the usual
operations, by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sim.prompts import (
    HistoryIndex,
    context_rooms,
    history_window,
    make_prompt,
    prompt_text,
    rank_devices,
    rewindow,
    usual_operations,
)
from sim.records import Action, Operation, parse_prompt

DAY0 = datetime(2026, 3, 2)
LAMP, AC, LOCK, FAN = ("bedroom", "light"), ("living_room", "ac"), ("hallway", "lock"), ("study", "fan")
DEVICES = (LAMP, AC, LOCK, FAN)


def op(t: datetime, *targets: tuple[str, str], logged: bool = True) -> Operation:
    return Operation(time=t, actions=tuple(Action(r, d, "power", "on") for r, d in targets), logged=logged)


def test_rank_devices_hand_worked():
    history = [
        op(DAY0 + timedelta(hours=7, minutes=10), LOCK),           # near 07:30 (20 min)
        op(DAY0 + timedelta(hours=8, minutes=15), LOCK),           # near (45 min)
        op(DAY0 + timedelta(hours=12), AC),                        # far
        op(DAY0 + timedelta(hours=12, minutes=5), AC),             # far
        op(DAY0 + timedelta(hours=12, minutes=9), AC),             # far: AC has the most operations overall
        op(DAY0 + timedelta(hours=6, minutes=40), FAN),            # near (50 min)
        op(DAY0 + timedelta(hours=6, minutes=50), FAN, logged=False),  # unlogged: never counts
        op(DAY0 + timedelta(days=1, hours=7, minutes=29), LAMP),   # at the decision minute: not before it
    ]
    now = DAY0 + timedelta(days=1, hours=7, minutes=29, seconds=30)
    # near counts: LOCK 2, FAN 1; then totals: AC 3; LAMP 0 (its operation is not strictly before now)
    assert rank_devices(history, now, DEVICES) == (LOCK, FAN, AC, LAMP)
    # the time of day wraps around midnight: 23:50 is 20 min from 00:10
    late = [op(DAY0 + timedelta(hours=23, minutes=50), FAN), op(DAY0 + timedelta(hours=12), AC)]
    assert rank_devices(late, DAY0 + timedelta(days=1, minutes=10), DEVICES) == (FAN, AC, LAMP, LOCK)
    # no history: the home's own order
    assert rank_devices([], now, DEVICES) == DEVICES


def test_prompt_ranks_from_the_whole_history_and_a_parsed_prompt_keeps_its_order():
    history = [op(DAY0 + timedelta(days=d, hours=7), LOCK) for d in range(5)]
    history += [op(DAY0 + timedelta(days=5, hours=h), AC) for h in range(8, 20)]  # the window: 12 AC ops
    now = DAY0 + timedelta(days=6, hours=7)
    p = make_prompt(history, now, (), DEVICES, k=12)
    assert all(o.actions[0].target == AC for o in p.history)  # the window holds no LOCK operation
    assert p.devices[0] == LOCK  # ... yet the lock leads: five mornings at 07:00
    text = prompt_text(history, now, (), DEVICES, k=12)
    back = parse_prompt(text)
    assert back.usual == ((Action(*LOCK, "power", "on"),), (Action(*AC, "power", "on"),))
    assert prompt_text(back.history, back.time, back.environment, back.devices, k=12, rank=False,
                       usual=back.usual, state=back.state) == text
    assert make_prompt(history, now, (), DEVICES, k=12, rank=False).devices == DEVICES


def test_context_rooms_are_the_last_operation_rooms():
    ops = [op(DAY0, LOCK), op(DAY0 + timedelta(hours=1), AC, LAMP)]
    assert context_rooms(ops) == ("living_room", "bedroom")
    assert context_rooms((), ("kitchen", "hallway")) == ("kitchen",)
    assert context_rooms(()) == ()
    assert history_window(ops, DAY0 + timedelta(hours=1)) == (ops[0],)  # strictly before now


def test_usual_operations_hand_worked():
    on = lambda t: Action(*t, "power", "on")  # noqa: E731
    off = lambda t: Action(*t, "power", "off")  # noqa: E731
    history = [
        Operation(time=DAY0 + timedelta(hours=7), actions=(on(LOCK), on(LAMP))),        # near 07:30
        Operation(time=DAY0 + timedelta(hours=12), actions=(on(AC),)),                  # far
        Operation(time=DAY0 + timedelta(hours=13), actions=(on(AC),)),                  # far: AC on 2x overall
        Operation(time=DAY0 + timedelta(hours=14), actions=(off(FAN),)),                 # far, once
        Operation(time=DAY0 + timedelta(days=1, hours=7), actions=(on(LAMP), on(LOCK))),  # the same set, new order
        Operation(time=DAY0 + timedelta(days=1, hours=7, minutes=5), actions=(off(LAMP),), logged=False),
        Operation(time=DAY0 + timedelta(days=1, hours=7, minutes=20), actions=(on(FAN),)),  # near, once
        Operation(time=DAY0 + timedelta(days=1, hours=7, minutes=30), actions=(on(AC),)),  # at the decision: not before
    ]
    now = DAY0 + timedelta(days=1, hours=7, minutes=30)
    # near: {lamp, lock} 2 (shown in its latest order), fan on 1; then totals: AC on 2, fan off 1;
    # the unlogged lamp-off never counts
    assert usual_operations(history, now, DEVICES) == (
        (on(LAMP), on(LOCK)), (on(FAN),), (on(AC),), (off(FAN),))
    assert usual_operations(history, now, DEVICES, n=2) == ((on(LAMP), on(LOCK)), (on(FAN),))
    # only operations on the listed devices: without the lock, the lamp+lock set is not offered
    assert usual_operations(history, now, (LAMP, AC, FAN)) == ((on(FAN),), (on(AC),), (off(FAN),))
    assert usual_operations([], now, DEVICES) == ()
    # a full tie (same counts, same latest minute): the operation seen first leads
    tie = [Operation(time=DAY0 + timedelta(hours=7), actions=(on(FAN),)),
           Operation(time=DAY0 + timedelta(hours=7), actions=(on(AC),))]
    assert usual_operations(tie, now, DEVICES) == ((on(FAN),), (on(AC),))
    # an index built once answers like the plain list, at any time
    index = HistoryIndex(history)
    for t in (now, DAY0 + timedelta(hours=13, minutes=30), DAY0):
        assert usual_operations(index, t, DEVICES) == usual_operations(list(history), t, DEVICES)
        assert rank_devices(index, t, DEVICES) == rank_devices(list(history), t, DEVICES)
    assert usual_operations(index, DAY0 + timedelta(hours=13, minutes=30), DEVICES) == (
        (on(AC),), (on(LOCK), on(LAMP)))  # 13:30: AC on near twice; lock+lamp once, in its order then
    with pytest.raises(ValueError, match="usual operations must be >= 0"):
        usual_operations(history, now, DEVICES, n=-1)
    # the prompt lists them after the devices, each behind <usual>, the most likely last (next to
    # <rec>), and parses back most likely first
    text = prompt_text(history, now, (), DEVICES)
    assert text.endswith("<usual> [study][fan][power][off] <usual> [living_room][ac][power][on] <usual> "
                         "[study][fan][power][on] <usual> [bedroom][light][power][on] [hallway][lock][power][on] "
                         "<rec>")
    assert parse_prompt(text).usual == usual_operations(history, now, DEVICES)


def test_device_state_hand_worked():
    """Each listed device carries the settings the logged operations before the decision left it in."""
    from sim.prompts import device_state

    t = DAY0 + timedelta(hours=7)
    curtain = ("bedroom", "curtain")
    history = [
        Operation(t, (Action("bedroom", "light", "power", "off"),)),
        Operation(t + timedelta(minutes=5), (Action("bedroom", "light", "brightness", "60"),)),  # implies power on
        Operation(t + timedelta(minutes=6), (Action("bedroom", "curtain", "action", "open"),)),
        Operation(t + timedelta(minutes=7), (Action("bedroom", "curtain", "action", "close"),), logged=False),
        Operation(t + timedelta(minutes=9), (Action("living_room", "ac", "power", "on"),)),  # at the decision: not before
    ]
    now = t + timedelta(minutes=9)
    devices = (LAMP, curtain, AC, LOCK)
    # light: power from brightness's implication (power=on, catalogue field order); curtain: open
    # means position 100 (the catalogue's alias), the unlogged close is invisible; ac: operated at
    # the decision minute (unknown); lock: never operated
    assert device_state(history, now, devices) == (
        (("power", "on"), ("brightness", "60")), (("action", "open"), ("position", "100")), (), ())
    p = make_prompt(history, now, (), devices, rank=False)
    text = prompt_text(history, now, (), devices, rank=False)
    assert "<devices> [bedroom][light][power][on][brightness][60] [bedroom][curtain][action][open][position][100] " \
           "[living_room][ac] [hallway][lock] <usual>" in text
    back = parse_prompt(text)
    assert back == p and back.known_state() == {LAMP: {"power": "on", "brightness": "60"}, curtain: {"action": "open", "position": "100"}}
    # a prompt without state (generator < 0.4) still parses, every device unknown
    old = "<hist> </hist> <now> 2026-03-02 07:09 Mon <devices> [bedroom][light] [hallway][lock] <rec>"
    assert parse_prompt(old).state == ((), ())
    # the index gives the same answer as the plain list
    assert HistoryIndex(history).state(now, devices) == device_state(history, now, devices)


def test_an_index_asked_in_time_order_answers_as_a_fresh_one():
    """Running counts (a reused index, asked forward) give the numpy passes' answers, also when
    asked back in time, across midnight and with unlogged operations and devices outside the list."""
    import numpy as np

    rng = np.random.default_rng(0)
    settings = {LAMP: [("power", "on"), ("power", "off"), ("brightness", "40")], AC: [("power", "on"),
                ("target_temperature", "26")], LOCK: [("lock", "locked"), ("lock", "unlocked")],
                FAN: [("power", "on"), ("speed", "30")]}
    t, history = DAY0, []
    for _ in range(400):
        t += timedelta(minutes=int(rng.choice([0, 1, 7, 45, 300, 700])))
        acts = {}
        for _ in range(int(rng.integers(1, 4))):
            target = DEVICES[int(rng.integers(4))]
            f, v = settings[target][int(rng.integers(len(settings[target])))]
            acts[Action(*target, f, v)] = None
        history.append(Operation(t, tuple(acts), logged=bool(rng.random() < 0.85)))
    index = HistoryIndex(history)
    forward = sorted(DAY0 + timedelta(minutes=int(m)) for m in rng.integers(0, (t - DAY0).total_seconds() // 60, 60))
    for now in [*forward, DAY0 + timedelta(hours=30), t + timedelta(days=1)]:
        devices = DEVICES if now.minute % 3 else DEVICES[:3]
        # a plain list builds a fresh index: its one answer comes from the numpy passes
        assert prompt_text(index, now, (), devices) == prompt_text(history, now, (), devices)
        assert usual_operations(index, now, devices, n=20) == usual_operations(history, now, devices, n=20)
    assert index._running is not None and index._running.pos > 0  # the forward pass ran on counts


def test_rewindow_rebuilds_only_the_history_window():
    history = [op(DAY0 + timedelta(hours=h), LAMP if h % 2 else AC, logged=h != 9) for h in range(6, 14)]
    now = DAY0 + timedelta(hours=13, minutes=30)
    stored = make_prompt(history, now, (), DEVICES, k=4)
    assert [o.time.hour for o in stored.history] == [10, 11, 12, 13]  # 09:00 is unlogged: a history gap
    for k, hours in ((2, [12, 13]), (4, [10, 11, 12, 13]), (16, [6, 7, 8, 10, 11, 12, 13])):
        p = rewindow(stored, history, k)
        assert [o.time.hour for o in p.history] == hours  # the last k logged operations before 13:30
        assert (p.time, p.devices, p.usual, p.state, p.environment) == (
            stored.time, stored.devices, stored.usual, stored.state, stored.environment)
    assert rewindow(stored, history, 4) == make_prompt(history, now, (), DEVICES, k=4)
    with pytest.raises(ValueError, match="k >= 1"):
        rewindow(stored, history, 0)

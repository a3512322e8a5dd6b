"""The canonical grammar: property-tested round trips and errors that name position and expectation."""

from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.records import (
    Action,
    EnvReading,
    GrammarError,
    Operation,
    Prompt,
    parse_action,
    parse_actions,
    parse_history,
    parse_operation,
    parse_prompt,
    parse_target,
    serialize_action,
    serialize_actions,
    serialize_history,
    serialize_operation,
    serialize_prompt,
    serialize_target,
)

name = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyz_0123456789.-"), min_size=1, max_size=12)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda t: t.replace(second=0, microsecond=0))
words = st.text(alphabet=st.sampled_from("abcdefghij klmnop',.!?-"), max_size=40).map(lambda s: " ".join(s.split()))
actions = st.builds(Action, name, name, name, name)
readings = st.builds(EnvReading, name, name, name)
operations = st.builds(Operation, time=times, actions=st.lists(actions, min_size=1, max_size=4).map(tuple),
                       environment=st.lists(readings, max_size=4).map(tuple), description=words)
device_states = st.lists(st.tuples(st.tuples(name, name),
                                   st.lists(st.tuples(name, name), max_size=3).map(tuple)), max_size=5)
prompts = st.builds(lambda history, time, environment, devs, usual: Prompt(
                        history=history, time=time, environment=environment, devices=tuple(d for d, _ in devs),
                        usual=usual, state=tuple(s for _, s in devs)),
                    history=st.lists(operations, max_size=4).map(tuple), time=times,
                    environment=st.lists(readings, max_size=3).map(tuple), devs=device_states,
                    usual=st.lists(st.lists(actions, min_size=1, max_size=3).map(tuple), max_size=3).map(tuple))


@given(actions)
def test_action_round_trip(a):
    assert parse_action(serialize_action(a)) == a


@given(st.lists(actions, min_size=1, max_size=5))
def test_actions_round_trip(acts):
    assert parse_actions(serialize_actions(acts)) == tuple(acts)


@given(operations)
@settings(max_examples=200)
def test_operation_round_trip(op):
    assert parse_operation(serialize_operation(op)) == op


@given(st.lists(operations, max_size=5))
def test_history_round_trip_compact_and_full(ops):
    full = parse_history(serialize_history(ops, env=True, desc=True))
    assert full == tuple(ops)
    compact = parse_history(serialize_history(ops))
    assert [(o.time, o.actions) for o in compact] == [(o.time, o.actions) for o in ops]


@given(prompts)
@settings(max_examples=100)
def test_prompt_round_trip_and_ends_on_the_rec_marker(p):
    text = serialize_prompt(p, history_env=True, history_desc=True)
    assert text.endswith("<rec>")
    assert parse_prompt(text) == p


@given(st.lists(actions, min_size=1, max_size=3), words, st.sampled_from(["action-first", "text-first"]))
def test_target_round_trip_both_orders(acts, desc, order):
    if order == "text-first" and not desc:
        desc = "do it"
    assert parse_target(serialize_target(acts, desc, order), order) == (tuple(acts), desc)


def test_paper_style_example():
    op = Operation(time=datetime(2026, 3, 2, 7, 31, 45),
                   actions=(Action("bedroom", "curtain", "position", "100"), Action("bedroom", "light", "power", "on")),
                   environment=(EnvReading("bedroom", "temperature", "22.5"),),
                   description="Open the bedroom curtain and turn on the light")
    text = serialize_operation(op)
    assert text == ("<op> 2026-03-02 07:31 Mon <env> [bedroom][temperature][22.5] <act> "
                    "[bedroom][curtain][position][100] [bedroom][light][power][on] "
                    "<desc> Open the bedroom curtain and turn on the light </op>")
    assert op.time.second == 0  # minute resolution
    assert parse_operation(text.replace(" ", "  ").replace("[bedroom]  [", "[bedroom][")) == op


@pytest.mark.parametrize("text, words", [
    ("[bedroom][light][power]", ["position 23", "'[' opening value", "end of text"]),
    ("[bedroom][light][power][on", ["position 23", "value closed by ']'"]),
    ("[bedroom][light][power][on] x", ["position 28", "end of text", "'x'"]),
    ("bedroom", ["position 0", "'[' opening room"]),
])
def test_action_parse_errors_name_position_and_expectation(text, words):
    with pytest.raises(GrammarError) as e:
        parse_action(text)
    for w in words:
        assert w in str(e.value)


def test_operation_parse_errors():
    with pytest.raises(GrammarError, match="weekday Mon"):
        parse_operation("<op> 2026-03-02 07:31 Tue <act> [a][b][c][d] </op>")
    with pytest.raises(GrammarError, match="expected '<act>'"):
        parse_operation("<op> 2026-03-02 07:31 Mon </op>")
    with pytest.raises(GrammarError, match="valid calendar date"):
        parse_operation("<op> 2026-02-30 07:31 Mon <act> [a][b][c][d] </op>")
    with pytest.raises(GrammarError, match="expected '</op>'"):
        parse_operation("<op> 2026-03-02 07:31 Mon <act> [a][b][c][d]")


def test_records_reject_bad_names_and_empty_operations():
    with pytest.raises(GrammarError, match="room"):
        Action("living room", "light", "power", "on")
    with pytest.raises(GrammarError, match="at least one action"):
        Operation(time=datetime(2026, 1, 1), actions=())
    with pytest.raises(GrammarError, match="description"):
        Operation(time=datetime(2026, 1, 1), actions=(Action("a", "b", "c", "d"),), description="x [y]")
    with pytest.raises(GrammarError, match="source"):
        Operation(time=datetime(2026, 1, 1), actions=(Action("a", "b", "c", "d"),), source="telepathy")


def test_a_target_may_name_the_usual_operation_it_is():
    from sim.records import parse_ref, usual_ref

    off = (Action("bedroom", "light", "power", "off"),)
    scene = (Action("bedroom", "light", "power", "on"), Action("bedroom", "light", "brightness", "40"))
    usual = (scene, off)  # most likely first
    assert usual_ref(off, usual) == 2 and usual_ref(tuple(reversed(scene)), usual) == 1  # a set: order aside
    assert usual_ref((Action("hall", "lock", "lock", "locked"),), usual) == 0 and usual_ref(off, ()) == 0
    t = serialize_target(off, "Turn off the light", usual=usual)
    assert t == "<act> [2] [bedroom][light][power][off] <desc> Turn off the light"
    assert parse_target(t) == (off, "Turn off the light") and parse_ref(t) == 2
    tf = serialize_target(scene, "Light up", "text-first", usual=usual)
    assert tf == "<desc> Light up <act> [1] [bedroom][light][power][on] [bedroom][light][brightness][40]"
    assert parse_target(tf, "text-first") == (scene, "Light up") and parse_ref(tf, "text-first") == 1
    plain = serialize_target(off, "Turn off the light")
    assert parse_ref(plain) is None and parse_target(plain) == (off, "Turn off the light")
    # a room named "2" is a room, not a ref: a ref is never glued to the next bracket
    assert parse_target("<act> [2][light][power][off]")[0] == (Action("2", "light", "power", "off"),)
    with pytest.raises(GrammarError):
        parse_target("<act> [2] [3] [bedroom][light][power][off]")

"""The usual-operation rule (hand-worked): the prompt's most likely usual operation that the known
state does not already hold, and the Usual row it gives the evaluation."""

from __future__ import annotations

from datetime import datetime

from agent.baselines.usual import usual_rule
from sim.records import Action, Prompt, parse_prompt, serialize_prompt

LIGHT, CURTAIN = ("bedroom", "light"), ("bedroom", "curtain")


def on(*fv):
    return Action("bedroom", "light", *fv)


def curtain(*fv):
    return Action("bedroom", "curtain", *fv)


def prompt(usual, state=((("power", "on"), ("brightness", "40")), (("action", "open"),))):
    return Prompt(history=(), time=datetime(2026, 3, 2, 21, 30), environment=(), devices=(LIGHT, CURTAIN),
                  usual=usual, state=state)


def test_skips_usual_operations_already_in_place():
    # the light is on at 40: "light on" changes nothing, so the curtain is the answer
    p = prompt(((on("power", "on"),), (curtain("action", "close"),), (on("power", "off"),)))
    assert usual_rule(p) == (curtain("action", "close"),)
    # the rule reads the prompt as the model does: the same after writing and parsing the text
    assert usual_rule(parse_prompt(serialize_prompt(p))) == (curtain("action", "close"),)


def test_a_partly_new_operation_counts_and_all_in_place_gives_the_first():
    assert usual_rule(prompt(((on("power", "on"), on("brightness", "60")),))) == (on("power", "on"), on("brightness", "60"))
    assert usual_rule(prompt(((on("power", "on"),), (curtain("action", "open"),)))) == (on("power", "on"),)
    # unknown state (never operated): nothing is in place
    assert usual_rule(prompt(((on("power", "on"),),), state=((), ()))) == (on("power", "on"),)


def test_no_usual_operation_abstains():
    assert usual_rule(prompt(())) == ()


def test_with_the_true_state_nothing_in_place_is_answered():
    usual = ((on("power", "on"),), (curtain("action", "close"),))
    types = {LIGHT: "light", CURTAIN: "curtain"}
    # the logged state says the light is on; the true state says it is off: the light is the answer
    assert usual_rule(prompt(usual), {LIGHT: {"power": "off"}, CURTAIN: {}}, types) == (on("power", "on"),)
    # everything already holds: abstain instead of the prompt-only rule's fallback to the first
    held = {LIGHT: {"power": "on"}, CURTAIN: {"action": "close", "position": "0"}}
    assert usual_rule(prompt(usual), held, types) == ()
    assert usual_rule(prompt(usual, state=((("power", "on"),), (("action", "close"),)))) == (on("power", "on"),)

"""Records and the one canonical text grammar (paper Fig. 4 style, bracketed).

Every stage speaks this grammar: dataset configs (pretrain, sft, dpo), the tokenizer, decoding,
the gym action space and the app. ``parse(serialize(x)) == x`` holds for every record below.

Grammar (``sp`` is one space; parsers accept any run of whitespace where one space is written)::

    action      := "[" room "][" device "][" field "][" value "]"
    actions     := action (sp action)*
    reading     := "[" room "][" indicator "][" value "]"
    time        := YYYY-MM-DD sp HH:MM sp Weekday          e.g. 2026-03-02 07:31 Mon
    operation   := "<op>" sp time [sp "<env>" sp readings] sp "<act>" sp actions
                   [sp "<desc>" sp text] sp "</op>"
    history     := "<hist>" (sp operation)* sp "</hist>"
    device      := "[" room "][" device "]" ("[" field "][" value "]")*   the device and its last
                                                           known state, glued (no space inside)
    devices     := device (sp device)*
    usual       := "<usual>" sp actions                      one operation the home often does now
    prompt      := history sp "<now>" sp time [sp "<env>" sp readings] sp "<devices>" sp devices
                   (sp usual)* sp "<rec>"            usual operations least likely first: the
                                                           most likely one sits right before <rec>
    target      := "<act>" sp [ref sp] actions [sp "<desc>" sp text]  (action-first, default)
                 | "<desc>" sp text sp "<act>" sp [ref sp] actions    (text-first)
    ref         := "[" digits "]"      which usual operation of the prompt the actions are (1 = the
                                       most likely, ``usual_ref``), 0: none of them. A model's copy
                                       pointer (``training.scoring.completion_text``): a small model
                                       names a listed operation by its number far more easily than
                                       it spells it out; the dataset's stored targets carry none

Names (room, device, field, indicator, value) are non-empty and contain no brackets, angle
brackets or whitespace. Description text contains no ``<``, ``>``, ``[`` or ``]`` and is
stripped. Times are minute-resolution: ``Operation`` truncates seconds on construction.
Every prompt ends on the dedicated ``<rec>`` marker so that a BPE merge can never cross the
prompt/completion boundary (see NOTES: TRL tokenises prompt and completion separately).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

OP, END_OP, HIST, END_HIST = "<op>", "</op>", "<hist>", "</hist>"
ENV, ACT, DESC, NOW, DEVICES, REC = "<env>", "<act>", "<desc>", "<now>", "<devices>", "<rec>"
USUAL = "<usual>"
#: Every grammar marker; the tokenizer keeps each as one special token.
MARKERS: tuple[str, ...] = (OP, END_OP, HIST, END_HIST, ENV, ACT, DESC, NOW, DEVICES, REC, USUAL)
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SOURCES: tuple[str, ...] = ("app", "voice", "physical", "automation")
Order = Literal["action-first", "text-first"]
ORDERS: tuple[str, ...] = ("action-first", "text-first")

_NAME_BAD = re.compile(r"[\[\]<>\s]")
_TEXT_BAD = re.compile(r"[\[\]<>]")
_TIME_RE = re.compile(r"(\d{4}-\d{2}-\d{2})\s+(\d{2}:\d{2})\s+([A-Z][a-z]{2})")
_REF_RE = re.compile(r"\[(\d+)\](?!\[)")  # a target's ref: a number in brackets, not glued to a next bracket


class GrammarError(ValueError):
    """A text that does not follow the grammar; the message names the position and what was expected."""


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value or _NAME_BAD.search(value):
        raise GrammarError(f"{kind} must be a non-empty name without brackets or spaces, got {value!r}")


def _check_text(text: str) -> str:
    if _TEXT_BAD.search(text):
        raise GrammarError(f"description may not contain '<', '>', '[' or ']': {text!r}")
    return " ".join(text.split())


# ---------------------------------------------------------------- records


@dataclass(frozen=True, order=True)
class Action:
    """One operated attribute, the paper's O^act quadruple ``[room][device][field][value]``."""

    room: str
    device: str
    field: str
    value: str

    def __post_init__(self) -> None:
        for kind in ("room", "device", "field", "value"):
            _check_name(kind, getattr(self, kind))

    @property
    def target(self) -> tuple[str, str]:
        """The home-device this action operates: (room, device)."""
        return (self.room, self.device)

    def __str__(self) -> str:
        return serialize_action(self)


@dataclass(frozen=True)
class EnvReading:
    """One environment triplet ``[room][indicator][value]`` (room may be ``outdoor``)."""

    room: str
    indicator: str
    value: str

    def __post_init__(self) -> None:
        for kind in ("room", "indicator", "value"):
            _check_name(kind, getattr(self, kind))


@dataclass(frozen=True)
class Operation:
    """A record of the paper's Fig. 2d: time, environment, ordered actions, description.

    Metadata (home, user, source, logged) is carried along but is not part of the grammar;
    it is excluded from equality so that ``parse(serialize(op)) == op``.
    """

    time: datetime
    actions: tuple[Action, ...]
    environment: tuple[EnvReading, ...] = ()
    description: str = ""
    home: str = field(default="", compare=False)
    user: str = field(default="", compare=False)
    source: str = field(default="app", compare=False)
    logged: bool = field(default=True, compare=False)

    def __post_init__(self) -> None:
        if not self.actions:
            raise GrammarError("an operation needs at least one action")
        if self.source not in SOURCES:
            raise GrammarError(f"source {self.source!r} not one of {', '.join(SOURCES)}")
        object.__setattr__(self, "time", self.time.replace(second=0, microsecond=0))
        object.__setattr__(self, "actions", tuple(self.actions))
        object.__setattr__(self, "environment", tuple(self.environment))
        object.__setattr__(self, "description", _check_text(self.description))


@dataclass(frozen=True)
class Prompt:
    """What the recommender sees: history window, current time, environment, candidate devices with
    their last known state and the home's usual operations at this time of day
    (``sim.prompts.usual_operations``; may be empty). ``usual`` is most likely first; the text
    writes it the other way round, so that the most likely operation is the one nearest ``<rec>``:
    a small model copies what sits a fixed distance before its answer far more easily (quickstart
    preset, one SFT epoch: candidate-scoring EM-Acc 0.178 against 0.140 with the most likely first).

    ``state[i]`` is the last known setting of ``devices[i]``, as (field, value) pairs from the
    logged operations before ``time`` (``sim.prompts.device_state``); ``()`` = never operated
    (unknown). A prompt without state (older data) has every entry empty.
    """

    history: tuple[Operation, ...]
    time: datetime
    environment: tuple[EnvReading, ...]
    devices: tuple[tuple[str, str], ...]
    usual: tuple[tuple[Action, ...], ...] = ()
    state: tuple[tuple[tuple[str, str], ...], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "time", self.time.replace(second=0, microsecond=0))
        object.__setattr__(self, "environment", tuple(self.environment))
        object.__setattr__(self, "devices", tuple(tuple(d) for d in self.devices))
        object.__setattr__(self, "usual", tuple(tuple(u) for u in self.usual))
        state = tuple(tuple(tuple(fv) for fv in s) for s in self.state) or ((),) * len(self.devices)
        object.__setattr__(self, "state", state)
        if any(not u for u in self.usual):
            raise GrammarError("a usual operation needs at least one action")
        if len(state) != len(self.devices):
            raise GrammarError(f"state has {len(state)} entries for {len(self.devices)} devices")
        for room, device in self.devices:
            _check_name("room", room)
            _check_name("device", device)
        for fv in state:
            for f, v in fv:
                _check_name("field", f)
                _check_name("value", v)

    def known_state(self) -> dict[tuple[str, str], dict[str, str]]:
        """(room, device) -> {field: value} for the devices whose state is known."""
        return {d: dict(s) for d, s in zip(self.devices, self.state, strict=True) if s}


# ---------------------------------------------------------------- serialise


def serialize_action(a: Action) -> str:
    return f"[{a.room}][{a.device}][{a.field}][{a.value}]"


def serialize_actions(actions: tuple[Action, ...] | list[Action]) -> str:
    return " ".join(serialize_action(a) for a in actions)


def serialize_readings(readings: tuple[EnvReading, ...] | list[EnvReading]) -> str:
    return " ".join(f"[{r.room}][{r.indicator}][{r.value}]" for r in readings)


def serialize_time(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M} {WEEKDAYS[t.weekday()]}"


def serialize_operation(op: Operation, *, env: bool = True, desc: bool = True) -> str:
    """One operation; ``env``/``desc`` False drop those sections (compact history entries)."""
    parts = [OP, serialize_time(op.time)]
    if env and op.environment:
        parts += [ENV, serialize_readings(op.environment)]
    parts += [ACT, serialize_actions(op.actions)]
    if desc and op.description:
        parts += [DESC, op.description]
    parts.append(END_OP)
    return " ".join(parts)


def serialize_history(ops: tuple[Operation, ...] | list[Operation], *, env: bool = False, desc: bool = False) -> str:
    """History of operations, compact by default (time and actions only)."""
    return " ".join([HIST, *(serialize_operation(o, env=env, desc=desc) for o in ops), END_HIST])


def serialize_prompt(p: Prompt, *, history_env: bool = False, history_desc: bool = False) -> str:
    parts = [serialize_history(p.history, env=history_env, desc=history_desc), NOW, serialize_time(p.time)]
    if p.environment:
        parts += [ENV, serialize_readings(p.environment)]
    parts += [DEVICES, " ".join(f"[{r}][{d}]" + "".join(f"[{f}][{v}]" for f, v in s)
                                for (r, d), s in zip(p.devices, p.state, strict=True))]
    for u in reversed(p.usual):  # most likely last, next to <rec>
        parts += [USUAL, serialize_actions(u)]
    parts.append(REC)
    return " ".join(parts)


def usual_ref(actions: tuple[Action, ...] | list[Action], usual: tuple[tuple[Action, ...], ...]) -> int:
    """The ``ref`` of a target: 1 + the position of ``actions`` (as a set) among ``usual`` (a
    ``Prompt.usual``, most likely first), 0 when it is none of them."""
    s = frozenset(actions)
    return next((i + 1 for i, u in enumerate(usual) if frozenset(u) == s), 0)


def serialize_target(actions: tuple[Action, ...] | list[Action], description: str, order: Order = "action-first",
                     usual: tuple[tuple[Action, ...], ...] | None = None) -> str:
    """The completion the model learns to produce after ``<rec>``; with ``usual`` (the prompt's
    usual operations), the actions carry their ``ref`` (``usual_ref``)."""
    description = _check_text(description)
    ref = "" if usual is None else f"[{usual_ref(actions, usual)}] "
    act = f"{ACT} {ref}{serialize_actions(actions)}"
    if order == "action-first":
        return f"{act} {DESC} {description}" if description else act
    if order == "text-first":
        return f"{DESC} {description} {act}"
    raise GrammarError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")


# ---------------------------------------------------------------- parse


class _Cursor:
    """A position in a text with helpers that raise GrammarError naming position and expectation."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, expected: str) -> GrammarError:
        found = self.text[self.pos:self.pos + 20]
        return GrammarError(f"at position {self.pos}: expected {expected}, found {found!r}" if found
                            else f"at position {self.pos}: expected {expected}, found end of text")

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at(self, token: str) -> bool:
        self.skip_ws()
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.at(token):
            raise self.fail(repr(token))
        self.pos += len(token)

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def bracketed(self, kind: str) -> str:
        """``[name]`` with no whitespace inside."""
        self.skip_ws()
        if not self.text.startswith("[", self.pos):
            raise self.fail(f"'[' opening {kind}")
        end = self.text.find("]", self.pos + 1)
        if end < 0:
            raise self.fail(f"{kind} closed by ']'")
        name = self.text[self.pos + 1:end]
        if not name or _NAME_BAD.search(name):
            raise self.fail(f"{kind} name without brackets or spaces")
        self.pos = end + 1
        return name

    def text_until_marker(self) -> str:
        self.skip_ws()
        end = self.text.find("<", self.pos)
        end = len(self.text) if end < 0 else end
        chunk = self.text[self.pos:end]
        if "[" in chunk or "]" in chunk or ">" in chunk:
            raise self.fail("description text without '[', ']' or '>'")
        self.pos = end
        return " ".join(chunk.split())

    def time(self) -> datetime:
        self.skip_ws()
        m = _TIME_RE.match(self.text, self.pos)
        if not m:
            raise self.fail("a time 'YYYY-MM-DD HH:MM Www'")
        try:
            t = datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H:%M")
        except ValueError:
            raise self.fail("a valid calendar date and time") from None
        if WEEKDAYS[t.weekday()] != m.group(3):
            raise self.fail(f"weekday {WEEKDAYS[t.weekday()]} for {m.group(1)}")
        self.pos = m.end()
        return t


def _action(c: _Cursor) -> Action:
    return Action(c.bracketed("room"), c.bracketed("device"), c.bracketed("field"), c.bracketed("value"))


def _actions(c: _Cursor) -> tuple[Action, ...]:
    out = [_action(c)]
    while c.at("["):
        out.append(_action(c))
    return tuple(out)


def _readings(c: _Cursor) -> tuple[EnvReading, ...]:
    out = []
    while c.at("["):
        out.append(EnvReading(c.bracketed("room"), c.bracketed("indicator"), c.bracketed("value")))
    return tuple(out)


def _operation(c: _Cursor) -> Operation:
    c.expect(OP)
    t = c.time()
    env: tuple[EnvReading, ...] = ()
    if c.at(ENV):
        c.expect(ENV)
        env = _readings(c)
    c.expect(ACT)
    acts = _actions(c)
    desc = ""
    if c.at(DESC):
        c.expect(DESC)
        desc = c.text_until_marker()
    c.expect(END_OP)
    return Operation(time=t, actions=acts, environment=env, description=desc)


def _history(c: _Cursor) -> tuple[Operation, ...]:
    c.expect(HIST)
    ops = []
    while c.at(OP):
        ops.append(_operation(c))
    c.expect(END_HIST)
    return tuple(ops)


def _whole(text: str, rule):
    c = _Cursor(text)
    out = rule(c)
    if not c.at_end():
        raise c.fail("end of text")
    return out


def parse_action(text: str) -> Action:
    return _whole(text, _action)


def parse_actions(text: str) -> tuple[Action, ...]:
    return _whole(text, _actions)


def parse_operation(text: str) -> Operation:
    return _whole(text, _operation)


def parse_history(text: str) -> tuple[Operation, ...]:
    return _whole(text, _history)


def _prompt(c: _Cursor) -> Prompt:
    hist = _history(c)
    c.expect(NOW)
    t = c.time()
    env: tuple[EnvReading, ...] = ()
    if c.at(ENV):
        c.expect(ENV)
        env = _readings(c)
    c.expect(DEVICES)
    devices, state = [], []
    while c.at("["):
        devices.append((c.bracketed("room"), c.bracketed("device")))
        pairs = []
        while c.text.startswith("[", c.pos):  # glued: the device's known state
            pairs.append((c.bracketed("field"), c.bracketed("value")))
        state.append(tuple(pairs))
    usual = []
    while c.at(USUAL):
        c.expect(USUAL)
        usual.append(_actions(c))
    c.expect(REC)
    return Prompt(history=hist, time=t, environment=env, devices=tuple(devices), usual=tuple(reversed(usual)),
                  state=tuple(state))


def parse_prompt(text: str) -> Prompt:
    return _whole(text, _prompt)


def prompt_time(text: str) -> datetime:
    """The decision time (``<now> TIME``) of a serialised prompt, read without parsing the rest (70x
    faster than ``parse_prompt(text).time``: the validation slice asks it of every train prompt)."""
    c = _Cursor(text)
    start = text.find(NOW)  # the one <now>: free text (descriptions) never holds a marker
    if start < 0:
        raise GrammarError(f"expected {NOW!r} in a prompt: {text[:80]!r}")
    c.pos = start + len(NOW)
    return c.time()


def _ref(c: _Cursor) -> int | None:
    """An optional ``ref`` after ``<act>`` (a bracketed number not glued to a next bracket)."""
    c.skip_ws()
    m = _REF_RE.match(c.text, c.pos)
    if m is None:
        return None
    c.pos = m.end()
    return int(m.group(1))


def parse_target(text: str, order: Order = "action-first") -> tuple[tuple[Action, ...], str]:
    """(actions, description) from a completion in either order; a ``ref`` is read and dropped
    (``parse_ref`` returns it)."""
    return _target(text, order)[:2]


def parse_ref(text: str, order: Order = "action-first") -> int | None:
    """The ``ref`` of a completion (None: it carries none)."""
    return _target(text, order)[2]


def _target(text: str, order: Order) -> tuple[tuple[Action, ...], str, int | None]:
    c = _Cursor(text)
    if order == "action-first":
        c.expect(ACT)
        ref = _ref(c)
        acts = _actions(c)
        desc = ""
        if c.at(DESC):
            c.expect(DESC)
            desc = c.text_until_marker()
    elif order == "text-first":
        c.expect(DESC)
        desc = c.text_until_marker()
        c.expect(ACT)
        ref = _ref(c)
        acts = _actions(c)
    else:
        raise GrammarError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    if not c.at_end():
        raise c.fail("end of text")
    return acts, desc, ref

"""What both HomePilot envs share: text spaces with an explicit charset, the observation layout,
and the never-raising parser that turns an agent's action text into legal actions.

An action is a recommendation in the canonical grammar (``sim.records``), in any of three forms:
bare actions ``[room][device][field][value] ...``, an action-first target ``<act> ... <desc> ...``
or a text-first target ``<desc> ... <act> ...``. The empty (or all-whitespace) string abstains.
Anything else, a non-string, or an action the home cannot perform (unknown device, field or
value outside the catalogue's value space) is *invalid*: it counts as shown and rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from gymnasium import spaces

from sim.catalog import is_legal
from sim.records import Action, GrammarError, parse_actions, parse_target

#: Printable ASCII plus newline and tab: covers the grammar's brackets and markers, times,
#: signed decimals, names with underscores and descriptions (NOTES: the default Text charset is
#: letters and digits only, which a prompt never satisfies).
CHARSET: str = "".join(chr(c) for c in range(32, 127)) + "\n\t"
_CHARSET_SET = frozenset(CHARSET)
ACTION_MAX = 2048  # characters in one recommendation
PROMPT_MIN = 8192  # prompt space size floor; grows to the longest prompt in the data
TEXT_MAX = 4096  # environment and candidate texts

# observation "time": [minute of day 0..1439, weekday 0=Mon..6]
TIME_LOW = np.array([0, 0], dtype=np.int64)
TIME_HIGH = np.array([1439, 6], dtype=np.int64)


def text_space(max_length: int) -> spaces.Text:
    return spaces.Text(max_length=max_length, min_length=0, charset=CHARSET)


def observation_space(prompt_max: int) -> spaces.Dict:
    return spaces.Dict({
        "prompt": text_space(prompt_max),
        "time": spaces.Box(TIME_LOW, TIME_HIGH, shape=(2,), dtype=np.int64),
        "environment": text_space(TEXT_MAX),
        "candidates": text_space(TEXT_MAX),
    })


def action_space() -> spaces.Text:
    return text_space(ACTION_MAX)


def sanitize(text: str, max_length: int) -> str:
    """Keep the text inside the space: unknown characters become '?', long texts are cut."""
    if not _CHARSET_SET.issuperset(text):
        text = "".join(c if c in _CHARSET_SET else "?" for c in text)
    return text[:max_length]


def time_features(t: datetime) -> np.ndarray:
    return np.array([t.hour * 60 + t.minute, t.weekday()], dtype=np.int64)


def split_prompt(prompt: str) -> tuple[str, str]:
    """(environment readings, candidate devices) texts of a prompt, by the grammar's markers.

    The current environment sits between ``<now>`` and ``<devices>``; the history before
    ``<now>`` may carry its own ``<env>`` sections, hence the search from ``<now>``. The devices
    end at the first ``<usual>`` operation (the full prompt is in the observation) or ``<rec>``.
    """
    now = prompt.rfind("<now>")
    dev = prompt.find("<devices>", max(now, 0))
    ends = [i for i in (prompt.find("<usual>", max(dev, 0)), prompt.find("<rec>", max(dev, 0))) if i >= 0]
    rec = min(ends) if ends else -1
    if now < 0 or dev < 0:
        return "", ""
    env = prompt.find("<env>", now, dev)
    environment = prompt[env + 5:dev].strip() if env >= 0 else ""
    candidates = prompt[dev + 9:rec if rec >= 0 else len(prompt)].strip()
    return environment, candidates


@dataclass(frozen=True)
class Parsed:
    """An agent action, parsed. ``reason`` says why an action is invalid ("" when valid)."""

    actions: tuple[Action, ...]
    description: str
    valid: bool
    abstained: bool
    reason: str = ""


ABSTAIN = Parsed((), "", True, True)


def parse_recommendation(action: object, types: Mapping[tuple[str, str], str]) -> Parsed:
    """Parse and check an agent's action against a home's devices (``(room, device) -> type``).

    Never raises: every failure is an invalid ``Parsed`` with the reason.
    """
    if not isinstance(action, str):
        return Parsed((), "", False, False, f"action must be a string, got {type(action).__name__}")
    text = action.strip()
    if not text:
        return ABSTAIN
    try:
        if text.startswith("<act>"):
            acts, desc = parse_target(text, "action-first")
        elif text.startswith("<desc>"):
            acts, desc = parse_target(text, "text-first")
        else:
            acts, desc = parse_actions(text), ""
    except (GrammarError, ValueError) as e:
        return Parsed((), "", False, False, str(e))
    for a in acts:
        t = types.get(a.target)
        if t is None:
            return Parsed(acts, desc, False, False, f"no device {a.room}/{a.device} in this home")
        if not is_legal(t, a.field, a.value):
            return Parsed(acts, desc, False, False, f"{a.field}={a.value} is not legal for {t}")
    return Parsed(acts, desc, True, False)

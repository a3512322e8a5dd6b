"""Named checks of input values, shared by ``homepilot import-log`` (``sim.dataset.importer``) and
``homepilot validate`` (``sim.dataset.validate``).

Each check raises ``InputError`` whose message says what is wrong and what is allowed; the
caller adds where (file, line and column for a CSV; file and row for a shard):

- ``check_name``: a room, device or home id: printable (no NUL, ESC, RTL override or other
  control and format characters), no whitespace or brackets, 1..``MAX_NAME`` characters;
- ``check_time``: ``TIME_MIN`` <= time < ``TIME_MAX`` (a year-9999 row would make the whole log
  its test period);
- ``check_reading``: an indicator of ``sim.catalog.INDICATORS`` (or ``weather``) with a finite
  value in the catalogue's range, returned in canonical spelling.

Device actions are checked by the catalogue itself (``sim.catalog.validate``: type, field, value).
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from sim.catalog import INDICATORS, WEATHER, format_value

MAX_NAME = 64  # characters in a room, device or home id
TIME_MIN, TIME_MAX = datetime(2000, 1, 1), datetime(2100, 1, 1)
_NAME_BAD = re.compile(r"[\[\]<>\s]")


class InputError(ValueError):
    """A value that breaks a named check; the message says what is allowed."""


def check_name(text: str) -> str:
    if not text or len(text) > MAX_NAME or _NAME_BAD.search(text) or not text.isprintable():
        shown = repr(text if len(text) <= 80 else text[:60] + "...")
        raise InputError(f"{shown} ({len(text)} characters) must be a name of 1..{MAX_NAME} printable characters "
                         "without spaces, brackets or control characters")
    return text


def check_time(t: datetime) -> datetime:
    if not TIME_MIN <= t.replace(tzinfo=None) < TIME_MAX:
        raise InputError(f"{t.isoformat()} is outside {TIME_MIN.year}-01-01..{TIME_MAX.year - 1}-12-31")
    return t


def check_reading(indicator: str, value: str) -> str:
    """The canonical spelling of a sensor reading (``weather``: one of ``sim.catalog.WEATHER``)."""
    if indicator == "weather":
        if value not in WEATHER:
            raise InputError(f"weather {value!r} not one of {', '.join(WEATHER)}")
        return value
    if indicator not in INDICATORS:
        raise InputError(f"indicator {indicator!r} not one of {', '.join((*INDICATORS, 'weather'))}")
    unit, low, high = INDICATORS[indicator]
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not (math.isfinite(x) and low <= x <= high):
        raise InputError(f"{indicator} {value[:40]!r} must be a number in {format_value(low)}..{format_value(high)} {unit}")
    return format_value(x)

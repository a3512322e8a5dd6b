"""The one prompt builder: used to make the SFT/DPO data and by the recommender at inference.

A prompt (paper Fig. 4) holds the last ``k`` *logged* operations before ``now`` (unlogged
physical operations are history gaps the recommender cannot see), the current time, the
environment readings and the home's candidate devices, ranked (``rank_devices``: by how often each
was operated around this time of day before, from every earlier logged operation, not only the
window). ``prompt_text`` is what the model reads; it ends on ``<rec>``.

The environment is what the home knows *at the decision*, never the operation being predicted:
the latest sensor readings strictly before ``now`` of the rooms named by ``context_rooms`` (the
rooms of the most recent logged operation in the window, where the household was last active)
plus outdoor. An operation record's own environment (the readings of *its* rooms) would reveal
the target room, so it is never put in a prompt.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from datetime import datetime

from sim.negatives import TIME_TOLERANCE_MIN, circular_minutes, minute_of_day
from sim.records import EnvReading, Operation, Prompt, serialize_prompt

# Operations in the history window (about 2.5 days at ~10 logged operations a day). Measured on the
# quickstart preset's test contexts: the label is among the window's operations for 26% of
# contexts at K=8, 54% at 24, 60% at 32, 71% at 64; a "most frequent within +-1 h" vote over the
# window scores EM-Acc 0.07 / 0.15 / 0.17 / 0.21 against 0.23 for frequency over the whole history.
# K=8 starved every history-reading model; 24 is the CPU compromise (a prompt is ~450 tokens).
HISTORY_K = 24


def history_window(history: Sequence[Operation], now: datetime, k: int = HISTORY_K) -> tuple[Operation, ...]:
    """The last ``k`` logged operations strictly before ``now`` (``history`` sorted by time)."""
    if k < 0:
        raise ValueError(f"history window k must be >= 0, got {k}")
    times = [o.time for o in history]
    end = bisect.bisect_left(times, now.replace(second=0, microsecond=0))
    out: list[Operation] = []
    for op in reversed(history[:end]):
        if len(out) >= k:
            break
        if op.logged:
            out.append(op)
    return tuple(reversed(out))


def rank_devices(history: Sequence[Operation], now: datetime,
                 devices: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The candidate devices in the order a prompt lists them: by how often the household operated
    each one within +-``TIME_TOLERANCE_MIN`` (60) min of ``now``'s time of day (any earlier day), then how
    often at all, then the home's own order. Only logged operations strictly before ``now`` count:
    what a deployed recommender has seen. A small model reads the first devices as the likely ones
    instead of having to count them out of a long history itself."""
    cut = now.replace(second=0, microsecond=0)
    minute = minute_of_day(now)
    near: dict[tuple[str, str], int] = {}
    total: dict[tuple[str, str], int] = {}
    for op in history:  # sorted by time
        if op.time >= cut:
            break
        if not op.logged:
            continue
        close = circular_minutes(minute_of_day(op.time), minute) <= TIME_TOLERANCE_MIN
        for t in dict.fromkeys(a.target for a in op.actions):
            total[t] = total.get(t, 0) + 1
            if close:
                near[t] = near.get(t, 0) + 1
    order = {t: i for i, t in enumerate(devices)}
    return tuple(sorted(devices, key=lambda t: (-near.get(t, 0), -total.get(t, 0), order[t])))


def context_rooms(window: Sequence[Operation], rooms: Sequence[str] = ()) -> tuple[str, ...]:
    """Rooms whose readings a prompt shows: those of the last operation in ``window`` (in action
    order), else the home's first room (``rooms``), else none (outdoor only)."""
    if window:
        return tuple(dict.fromkeys(a.room for a in window[-1].actions))
    return tuple(rooms[:1])


def make_prompt(history: Sequence[Operation], now: datetime, environment: Sequence[EnvReading],
                devices: Sequence[tuple[str, str]], k: int = HISTORY_K, rank: bool = True) -> Prompt:
    """Prompt record for a decision at ``now``; ``devices`` are the home's (room, device) pairs.

    ``history``: the household's operations by time (the window is cut from it; pass all of them:
    the device ranking counts every earlier logged operation). ``rank=False`` keeps ``devices`` in
    the given order (a prompt parsed back from text is already ranked)."""
    devs = rank_devices(history, now, devices) if rank else tuple(devices)
    return Prompt(history=history_window(history, now, k), time=now, environment=tuple(environment), devices=devs)


def prompt_text(history: Sequence[Operation], now: datetime, environment: Sequence[EnvReading],
                devices: Sequence[tuple[str, str]], k: int = HISTORY_K, rank: bool = True) -> str:
    """The prompt string the model reads (compact history: time and actions per operation)."""
    return serialize_prompt(make_prompt(history, now, environment, devices, k, rank))

"""The one prompt builder: used to make the SFT/DPO data and by the recommender at inference.

A prompt (paper Fig. 4) holds the last ``k`` *logged* operations before ``now`` (unlogged
physical operations are history gaps the recommender cannot see), the current time, the
environment readings, the home's candidate devices, ranked (``rank_devices``: by how often each
was operated around this time of day before, from every earlier logged operation, not only the
window), and the home's usual operations at this time of day (``usual_operations``, the same
count over whole operations). ``prompt_text`` is what the model reads; it ends on ``<rec>``.

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
from sim.records import Action, EnvReading, Operation, Prompt, serialize_prompt

# Operations in the history window (about a day at ~10 logged operations a day). Measured on the
# quickstart preset's test contexts: the label is among the window's operations for 26% of
# contexts at K=8, 54% at 24, 71% at 64; a "most frequent within +-1 h" vote over the window
# scores EM-Acc 0.07 / 0.15 / 0.21 (0.23 over the whole history). The usual operations below carry
# that long-range count into the prompt, so the window only has to show what happened lately; at
# K=8 a prompt is ~230 tokens instead of ~500 at K=24, and a fine-tuning step costs half as much.
HISTORY_K = 8
# Usual operations listed in a prompt. On the quickstart preset's 1,328 test contexts the label is
# the first of them for 26%, among the first 3 / 6 for 50% / 66%; 8 would add ~1 point per extra
# operation for ~8 more prompt tokens each.
USUAL_N = 6


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


class _Tally:
    """One pass over the logged operations strictly before ``now`` (``history`` sorted by time):
    per device and per operation (action set), how often within +-``TIME_TOLERANCE_MIN`` min of
    ``now``'s time of day (any earlier day) and how often at all. A prompt needs both the device
    ranking and the usual operations; the dataset builder makes one prompt per row."""

    def __init__(self, history: Sequence[Operation], now: datetime) -> None:
        cut = now.replace(second=0, microsecond=0)
        minute = minute_of_day(now)
        self.device: dict[tuple[str, str], list[int]] = {}  # target -> [near, total]
        self.ops: dict[frozenset, list] = {}  # action set -> [near, total, last time, actions]
        for op in history:
            if op.time >= cut:
                break
            if not op.logged:
                continue
            close = circular_minutes(minute_of_day(op.time), minute) <= TIME_TOLERANCE_MIN
            for t in dict.fromkeys(a.target for a in op.actions):
                d = self.device.setdefault(t, [0, 0])
                d[0] += close
                d[1] += 1
            e = self.ops.setdefault(frozenset(op.actions), [0, 0, op.time, op.actions])
            e[0] += close
            e[1] += 1
            e[2], e[3] = op.time, op.actions

    def ranked(self, devices: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        order = {t: i for i, t in enumerate(devices)}
        zero = (0, 0)
        return tuple(sorted(devices, key=lambda t: (-self.device.get(t, zero)[0], -self.device.get(t, zero)[1],
                                                    order[t])))

    def usual(self, devices: Sequence[tuple[str, str]], n: int) -> tuple[tuple[Action, ...], ...]:
        if n < 0:
            raise ValueError(f"number of usual operations must be >= 0, got {n}")
        allowed = set(map(tuple, devices))
        ok = [e for e in self.ops.values() if all(a.target in allowed for a in e[3])]
        ok.sort(key=lambda e: (-e[0], -e[1], -e[2].timestamp()))
        return tuple(e[3] for e in ok[:n])


def usual_operations(history: Sequence[Operation], now: datetime, devices: Sequence[tuple[str, str]],
                     n: int = USUAL_N) -> tuple[tuple[Action, ...], ...]:
    """Up to ``n`` operations (action sets) the household did most often within
    +-``TIME_TOLERANCE_MIN`` min of ``now``'s time of day, then most often at all, then most
    recently; only logged operations strictly before ``now`` on ``devices`` count. Two operations
    with the same actions in another order are one (as in ``agent.metrics``); the most recent order
    is shown. The first is the time-of-day frequency baseline's kind of answer; the prompt lists
    the rest so that a model chooses among the likely operations instead of counting them out of
    a long history itself."""
    return _Tally(history, now).usual(devices, n)


def rank_devices(history: Sequence[Operation], now: datetime,
                 devices: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The candidate devices in the order a prompt lists them: by how often the household operated
    each one within +-``TIME_TOLERANCE_MIN`` (60) min of ``now``'s time of day (any earlier day), then how
    often at all, then the home's own order. Only logged operations strictly before ``now`` count:
    what a deployed recommender has seen. A small model reads the first devices as the likely ones
    instead of having to count them out of a long history itself."""
    return _Tally(history, now).ranked(devices)


def context_rooms(window: Sequence[Operation], rooms: Sequence[str] = ()) -> tuple[str, ...]:
    """Rooms whose readings a prompt shows: those of the last operation in ``window`` (in action
    order), else the home's first room (``rooms``), else none (outdoor only)."""
    if window:
        return tuple(dict.fromkeys(a.room for a in window[-1].actions))
    return tuple(rooms[:1])


def make_prompt(history: Sequence[Operation], now: datetime, environment: Sequence[EnvReading],
                devices: Sequence[tuple[str, str]], k: int = HISTORY_K, rank: bool = True,
                usual: Sequence[Sequence[Action]] | None = None) -> Prompt:
    """Prompt record for a decision at ``now``; ``devices`` are the home's (room, device) pairs.

    ``history``: the household's operations by time (the window is cut from it; pass all of them:
    the device ranking and the usual operations count every earlier logged operation).
    ``rank=False`` keeps ``devices`` in the given order and ``usual`` (when given) replaces
    ``usual_operations``: a prompt parsed back from text already carries both."""
    tally = _Tally(history, now) if rank or usual is None else None
    devs = tally.ranked(devices) if rank else tuple(devices)
    uses = tally.usual(devs, USUAL_N) if usual is None else tuple(tuple(u) for u in usual)
    return Prompt(history=history_window(history, now, k), time=now, environment=tuple(environment), devices=devs,
                  usual=uses)


def prompt_text(history: Sequence[Operation], now: datetime, environment: Sequence[EnvReading],
                devices: Sequence[tuple[str, str]], k: int = HISTORY_K, rank: bool = True,
                usual: Sequence[Sequence[Action]] | None = None) -> str:
    """The prompt string the model reads (compact history: time and actions per operation)."""
    return serialize_prompt(make_prompt(history, now, environment, devices, k, rank, usual))

"""The one prompt builder: used to make the SFT/DPO data and by the recommender at inference.

A prompt (paper Fig. 4) holds the last ``k`` *logged* operations before ``now`` (unlogged
physical operations are history gaps the recommender cannot see), the current time, the
environment readings, the home's candidate devices, ranked (``rank_devices``: by how often each
was operated around this time of day before, from every earlier logged operation, not only the
window) with their last known state (``device_state``: what the logged operations before ``now``
set; a recommender that cannot see state recommends settings a device already has), and the
home's usual operations at this time of day (``usual_operations``, the same count over whole
operations). ``prompt_text`` is what the model reads; it ends on ``<rec>``.

The environment is what the home knows *at the decision*, never the operation being predicted:
the latest sensor readings (temperature, humidity, illuminance, occupancy) strictly before ``now``
of the rooms named by ``context_rooms`` (the room someone last walked into, the last logged
operation's rooms, the usual operations' rooms: at most ``CONTEXT_ROOMS``) plus outdoor
(temperature, illuminance, weather). An operation record's own environment (the readings of *its* rooms) would reveal
the target room, so it is never put in a prompt.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

import numpy as np

from sim.catalog import DEVICE_TYPES, CatalogError, effects, type_of_device_name
from sim.records import Action, EnvReading, Operation, Prompt, serialize_prompt

# Operations in the history window (about a day at ~10 logged operations a day). Measured on the
# quickstart preset's test contexts: the label is among the window's operations for 26% of
# contexts at K=8, 54% at 24, 71% at 64; a "most frequent within +-1 h" vote over the window
# scores EM-Acc 0.07 / 0.15 / 0.21 (0.23 over the whole history). The usual operations below carry
# that long-range count into the prompt, so the window only has to show what happened lately; at
# K=8 a prompt is ~230 tokens instead of ~450 at K=24, and a fine-tuning step costs half as much.
HISTORY_K = 8
# Usual operations listed in a prompt. On the quickstart preset's 1,328 test contexts the label is
# the first of them for 26%, among the first 3 / 6 for 50% / 66%; each listed operation costs ~6
# prompt tokens.
USUAL_N = 6
# "Around this time of day" for the usual operations and for time-sensitive DPO negatives
# (``sim.dataset.negatives``): +-1 h, across midnight (paper Sec. 3.3).
TIME_TOLERANCE_MIN = 60
MINUTES_PER_DAY = 1440


def minute_of_day(t: datetime) -> int:
    return t.hour * 60 + t.minute


def circular_minutes(a: int, b: int) -> int:
    """Distance between two times of day in minutes, across midnight (23:30 vs 00:10 -> 40)."""
    d = abs(a - b) % MINUTES_PER_DAY
    return min(d, MINUTES_PER_DAY - d)


def history_window(history: Sequence[Operation], now: datetime, k: int = HISTORY_K,
                   times: Sequence[datetime] | None = None) -> tuple[Operation, ...]:
    """The last ``k`` logged operations strictly before ``now`` (``history`` sorted by time;
    ``times``: their times, when already at hand)."""
    if k < 0:
        raise ValueError(f"history window k must be >= 0, got {k}")
    times = [o.time for o in history] if times is None else times
    end = bisect.bisect_left(times, now.replace(second=0, microsecond=0))
    out: list[Operation] = []
    i = end - 1
    while i >= 0 and len(out) < k:
        if history[i].logged:
            out.append(history[i])
        i -= 1
    return tuple(reversed(out))


class HistoryIndex:
    """A household's operations (sorted by time) with what every prompt counts precomputed once:
    time of day, logged flag, action-set id and operated devices per operation. A prompt at any
    time then costs a few numpy passes over the earlier operations instead of a Python loop (the
    dataset builder makes one prompt per row; ``make_prompt`` builds an index for a plain list).

    An index asked again at a later time keeps running counts (``_Running``) and adds only the
    operations since its last answer, so a pass over a long history in time order (one prompt
    per operation of a year-long imported log) costs time linear in the operations, not
    quadratic; an earlier time is answered by the numpy passes. Both give the same counts."""

    def __init__(self, history: Sequence[Operation]) -> None:
        self.history = tuple(history)
        self.times = [o.time for o in self.history]
        n = len(self.history)
        self.minute = np.fromiter((minute_of_day(t) for t in self.times), np.int64, n)
        self.logged = np.fromiter((o.logged for o in self.history), bool, n)
        keys: dict[frozenset, int] = {}  # action set -> id, in order of first appearance
        self.key = np.full(n, -1, np.int64)  # -1: unlogged (never counted)
        pair_op: list[int] = []
        pair_dev: list[int] = []
        self.devices: dict[tuple[str, str], int] = {}
        for i, op in enumerate(self.history):
            if not op.logged:
                continue
            self.key[i] = keys.setdefault(frozenset(op.actions), len(keys))
            for t in dict.fromkeys(a.target for a in op.actions):
                pair_op.append(i)
                pair_dev.append(self.devices.setdefault(t, len(self.devices)))
        self.n_keys = len(keys)
        self.pair_op = np.asarray(pair_op, np.int64)
        self.pair_dev = np.asarray(pair_dev, np.int64)
        # rank of each operation's time among the distinct times (equal times, equal rank)
        self.time_rank = np.unique(np.array(self.times, "datetime64[us]"), return_inverse=True)[1].astype(np.int64)
        self._answers = 0
        self._running: _Running | None = None
        # per operation: the settings it leaves, (target, field, value) in order (none when unlogged)
        self.op_settings: list[tuple[tuple[tuple[str, str], str, str], ...]] = [
            tuple((a.target, f, v) for a in op.actions for f, v in _effects(a.device, a.field, a.value))
            if op.logged else () for op in self.history]
        # (room, device) -> field -> (operation indices, values): every logged setting, by time
        self.settings: dict[tuple[str, str], dict[str, tuple[list[int], list[str]]]] = {}
        for i, sets in enumerate(self.op_settings):
            for target, f, v in sets:
                idx, vals = self.settings.setdefault(target, {}).setdefault(f, ([], []))
                idx.append(i)
                vals.append(v)

    def end(self, now: datetime) -> int:
        """Number of operations strictly before ``now``'s minute."""
        return bisect.bisect_left(self.times, now.replace(second=0, microsecond=0))

    def tally(self, now: datetime) -> _Tally:
        return _Tally(self, *self.counts(now))

    def counts(self, now: datetime) -> tuple[np.ndarray, ...]:
        """(op_near, op_total, op_last, dev_near, dev_total) over the logged operations strictly before
        ``now``'s minute: per action set and per device, how often within +-``TIME_TOLERANCE_MIN``
        min of ``now``'s time of day and how often at all; ``op_last``: each set's latest operation
        index (-1: none)."""
        end, m = self.end(now), minute_of_day(now)
        self._answers += 1
        if self._running is None and self._answers > 1 and MINUTES_PER_DAY * self.n_keys <= _RUNNING_CELLS:
            self._running = _Running(self)
        if self._running is not None and end >= self._running.pos:
            return self._running.advance(end).counts(m)
        # numpy passes over the operations before end
        d = np.abs(self.minute[:end] - m) % MINUTES_PER_DAY  # circular_minutes over the array
        close = (np.minimum(d, MINUTES_PER_DAY - d) <= TIME_TOLERANCE_MIN) & self.logged[:end]
        keys = self.key[:end]
        seen = keys >= 0
        k, c = keys[seen], close[seen].astype(np.int64)
        op_near = np.bincount(k, weights=c, minlength=self.n_keys).astype(np.int64)
        op_total = np.bincount(k, minlength=self.n_keys)
        op_last = np.full(self.n_keys, -1, np.int64)
        np.maximum.at(op_last, k, np.flatnonzero(seen))
        pairs = self.pair_op < end
        dev, pc = self.pair_dev[pairs], close[self.pair_op[pairs]].astype(np.int64)
        n_dev = len(self.devices)
        return (op_near, op_total, op_last, np.bincount(dev, weights=pc, minlength=n_dev).astype(np.int64),
                np.bincount(dev, minlength=n_dev))

    def state(self, now: datetime, devices: Sequence[tuple[str, str]]) -> tuple[tuple[tuple[str, str], ...], ...]:
        """Per device: its (field, value) settings as the logged operations strictly before ``now``
        left them (catalogue field order where the type is known, else by name); () = unknown."""
        end = self.end(now)
        out = []
        running = self._running.known if self._running is not None and self._running.pos == end else None
        for target in devices:
            if running is not None:
                known = running.get(tuple(target), {})
            else:
                known = {}
                for f, (idx, vals) in self.settings.get(tuple(target), {}).items():
                    j = bisect.bisect_left(idx, end) - 1
                    if j >= 0:
                        known[f] = vals[j]
            out.append(tuple((f, known[f]) for f in _field_order(target[1], tuple(known))))
        return tuple(out)


def _effects(device: str, field: str, value: str) -> tuple[tuple[str, str], ...]:
    """What a logged setting says about the device's state: itself and what it implies
    (``sim.catalog.effects``: brightness 60 -> power on) where the device name tells the type."""
    t = type_of_device_name(device)
    if t is None:
        return ((field, value),)
    try:
        implied = effects(t, field, value)
    except CatalogError:
        return ((field, value),)
    return ((field, value), *sorted(e for e in implied if e[0] != field))


@lru_cache(maxsize=4096)
def _field_order(device: str, known: tuple[str, ...]) -> tuple[str, ...]:
    t = type_of_device_name(device)
    order = list(DEVICE_TYPES[t].fields) if t in DEVICE_TYPES else []
    return tuple([f for f in order if f in known] + sorted(f for f in known if f not in order))


# Running counts keep one row of counts per minute of the day for every action set: at most this
# many cells (128 MiB of int32, ~23k distinct action sets); a history with more answers by numpy passes.
_RUNNING_CELLS = 1 << 25


class _Running:
    """The counts of ``HistoryIndex.counts`` for the operations ``[0, pos)``, advanced forward only:
    per minute of the day, how many operations of each action set (each device) lie within
    +-``TIME_TOLERANCE_MIN`` min of it, so the near counts at a time are one row; and every
    device's settings as those operations left them (``HistoryIndex.state`` at ``pos``)."""

    def __init__(self, index: HistoryIndex) -> None:
        self.index = index
        n_dev = len(index.devices)
        self.op_cover = np.zeros((MINUTES_PER_DAY, index.n_keys), np.int32)  # (1440, action sets)
        self.dev_cover = np.zeros((MINUTES_PER_DAY, n_dev), np.int32)  # (1440, devices)
        self.op_total = np.zeros(index.n_keys, np.int64)
        self.op_last = np.full(index.n_keys, -1, np.int64)
        self.dev_total = np.zeros(n_dev, np.int64)
        self.known: dict[tuple[str, str], dict[str, str]] = {}
        self.pos = self.pair_pos = 0

    def advance(self, end: int) -> _Running:
        ix = self.index
        for i in range(self.pos, end):
            k = int(ix.key[i])
            if k < 0:  # unlogged
                continue
            m = int(ix.minute[i])
            _cover(self.op_cover, m, k)
            self.op_total[k] += 1
            self.op_last[k] = i
            for target, f, v in ix.op_settings[i]:
                self.known.setdefault(target, {})[f] = v
        p_end = int(np.searchsorted(ix.pair_op, end)) if end > self.pos else self.pair_pos
        for p in range(self.pair_pos, p_end):
            d = int(ix.pair_dev[p])
            _cover(self.dev_cover, int(ix.minute[ix.pair_op[p]]), d)
            self.dev_total[d] += 1
        self.pos, self.pair_pos = max(self.pos, end), p_end
        return self

    def counts(self, minute: int) -> tuple[np.ndarray, ...]:
        return (self.op_cover[minute].astype(np.int64), self.op_total.copy(), self.op_last.copy(),
                self.dev_cover[minute].astype(np.int64), self.dev_total.copy())


def _cover(cover: np.ndarray, minute: int, col: int) -> None:
    """Add 1 to ``cover[:, col]`` at every minute of the day within +-``TIME_TOLERANCE_MIN`` of ``minute``."""
    lo, hi = minute - TIME_TOLERANCE_MIN, minute + TIME_TOLERANCE_MIN + 1
    if lo < 0:
        cover[lo + MINUTES_PER_DAY:, col] += 1
        cover[:hi, col] += 1
    elif hi > MINUTES_PER_DAY:
        cover[lo:, col] += 1
        cover[:hi - MINUTES_PER_DAY, col] += 1
    else:
        cover[lo:hi, col] += 1


class _Tally:
    """Per device and per operation (action set): how often the household did it within
    +-``TIME_TOLERANCE_MIN`` min of ``now``'s time of day (any earlier day) and how often at all,
    over the logged operations strictly before ``now`` (``HistoryIndex.counts``)."""

    def __init__(self, index: HistoryIndex, op_near: np.ndarray, op_total: np.ndarray, op_last: np.ndarray,
                 dev_near: np.ndarray, dev_total: np.ndarray) -> None:
        self.index = index
        self.op_near, self.op_total, self.op_last = op_near, op_total, op_last
        self.dev_near, self.dev_total = dev_near, dev_total

    def ranked(self, devices: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        ids = self.index.devices

        def key(item: tuple[int, tuple[str, str]]) -> tuple[int, int, int]:
            i, t = item
            j = ids.get(t)
            return (0, 0, i) if j is None else (-int(self.dev_near[j]), -int(self.dev_total[j]), i)

        return tuple(t for _, t in sorted(enumerate(devices), key=key))

    def _order(self, take: int) -> tuple[np.ndarray, bool]:
        """Action-set ids, most often near this time of day, then at all, then the latest time, then
        first seen; at least the first ``take`` of them (True when that is all of them)."""
        ids = np.flatnonzero(self.op_total > 0)
        near, total = self.op_near[ids], self.op_total[ids]
        latest = self.index.time_rank[self.op_last[ids]]
        whole = True
        if len(ids) > take and len(self.index.times) < 1 << 21:
            # one int64 score in that order (each count < 2**21); keep every set tied with the take-th
            score = (near << 42) | (total << 21) | latest
            keep = score >= np.partition(score, len(ids) - take)[len(ids) - take]
            ids, near, total, latest = ids[keep], near[keep], total[keep], latest[keep]
            whole = bool(keep.all())
        return ids[np.lexsort((ids, -latest, -total, -near))], whole

    def usual(self, devices: Sequence[tuple[str, str]], n: int) -> tuple[tuple[Action, ...], ...]:
        if n < 0:
            raise ValueError(f"number of usual operations must be >= 0, got {n}")
        allowed = set(map(tuple, devices))
        hist = self.index.history
        take = n + 8
        while n:
            order, whole = self._order(take)
            out: list[tuple[Action, ...]] = []
            for j in order.tolist():
                acts = hist[self.op_last[j]].actions
                if all(a.target in allowed for a in acts):
                    out.append(acts)
                    if len(out) == n:
                        return tuple(out)
            if whole:
                return tuple(out)
            take *= 4  # operations on devices outside the list took places: look further
        return ()


def usual_operations(history: Sequence[Operation] | HistoryIndex, now: datetime,
                     devices: Sequence[tuple[str, str]], n: int = USUAL_N) -> tuple[tuple[Action, ...], ...]:
    """Up to ``n`` operations (action sets) the household did most often within
    +-``TIME_TOLERANCE_MIN`` min of ``now``'s time of day, then most often at all, then most
    recently; only logged operations strictly before ``now`` on ``devices`` count. Two operations
    with the same actions in another order are one (as in ``agent.metrics``); the most recent order
    is shown. The first is the time-of-day frequency baseline's kind of answer; the prompt lists
    the rest so that a model chooses among the likely operations instead of counting them out of
    a long history itself."""
    return _index(history).tally(now).usual(devices, n)


def rank_devices(history: Sequence[Operation] | HistoryIndex, now: datetime,
                 devices: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The candidate devices in the order a prompt lists them: by how often the household operated
    each one within +-``TIME_TOLERANCE_MIN`` (60) min of ``now``'s time of day (any earlier day), then how
    often at all, then the home's own order. Only logged operations strictly before ``now`` count:
    what a deployed recommender has seen. A small model reads the first devices as the likely ones
    instead of having to count them out of a long history itself."""
    return _index(history).tally(now).ranked(devices)


def _index(history: Sequence[Operation] | HistoryIndex) -> HistoryIndex:
    return history if isinstance(history, HistoryIndex) else HistoryIndex(history)


def device_state(history: Sequence[Operation] | HistoryIndex, now: datetime,
                 devices: Sequence[tuple[str, str]]) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Each device's last known state: the (field, value) settings the logged operations strictly
    before ``now`` left it in (implied settings included: brightness 60 -> power on); () when it
    was never operated in the logged history. Unlogged physical operations are invisible, so the
    known state can be stale (8% of the quickstart preset's test labels set a field to the value
    the logged history already shows)."""
    return _index(history).state(now, devices)


# Rooms whose readings a prompt shows. Each costs 4 readings (~25 prompt tokens); three cover the
# room someone just walked into, the last operation's and the likeliest operations' rooms.
CONTEXT_ROOMS = 3


def context_rooms(window: Sequence[Operation], rooms: Sequence[str] = (),
                  usual: Sequence[Sequence[Action]] = (), entered: Sequence[str] = (),
                  n: int = CONTEXT_ROOMS) -> tuple[str, ...]:
    """Rooms whose readings a prompt shows, at most ``n``: the occupied room most recently
    entered (``entered``, newest first, from the presence sensors), the rooms of the last
    operation in ``window`` (in action order), then those of the usual operations (most likely
    first); else the home's first room (``rooms``), else none (outdoor only). All of it is known
    before the decision."""
    out = dict.fromkeys(entered[:1])
    for acts in ((window[-1].actions if window else ()), *usual):
        for a in acts:
            out.setdefault(a.room)
    return tuple(out)[:n] if out else tuple(rooms[:1])


def make_prompt(history: Sequence[Operation] | HistoryIndex, now: datetime,
                environment: Sequence[EnvReading], devices: Sequence[tuple[str, str]], k: int = HISTORY_K, rank: bool = True,
                usual: Sequence[Sequence[Action]] | None = None,
                state: Sequence[Sequence[tuple[str, str]]] | None = None) -> Prompt:
    """Prompt record for a decision at ``now``; ``devices`` are the home's (room, device) pairs.

    ``history``: the household's operations by time, or their ``HistoryIndex`` (the window is cut
    from it; pass all of them: the device ranking and the usual operations count every earlier
    logged operation).
    ``rank=False`` keeps ``devices`` in the given order, and ``usual`` / ``state`` (when given)
    replace ``usual_operations`` / ``device_state``: a prompt parsed back from text carries all three."""
    index = _index(history)
    tally = index.tally(now) if rank or usual is None else None
    devs = tally.ranked(devices) if rank else tuple(devices)
    uses = tally.usual(devs, USUAL_N) if usual is None else tuple(tuple(u) for u in usual)
    known = index.state(now, devs) if state is None else tuple(tuple(s) for s in state)
    return Prompt(history=history_window(index.history, now, k, index.times), time=now,
                  environment=tuple(environment), devices=devs, usual=uses, state=known)


def rewindow(prompt: Prompt, history: Sequence[Operation], k: int, times: Sequence[datetime] | None = None) -> Prompt:
    """``prompt`` with its history window rebuilt from ``history`` (the household's operations by
    time; ``times``: theirs, when at hand) with the last ``k`` logged operations before the
    prompt's time. Everything else stays: the device ranking, state and usual operations count
    every earlier operation, not the window, and the readings' rooms (``context_rooms``) depend
    on the window only through its last operation, the same for every ``k >= 1``. So a dataset's
    prompt rebuilt with its own ``k`` is the stored prompt, and with another ``k`` the prompt the
    dataset would have held with ``HISTORY_K = k`` (the training-context and test-time history
    studies of ``homepilot reproduce``)."""
    if k < 1:
        raise ValueError(f"a rebuilt history window needs k >= 1 (the readings' rooms follow its last operation), got {k}")
    return replace(prompt, history=history_window(history, prompt.time, k, times))


def prompt_text(history: Sequence[Operation] | HistoryIndex, now: datetime,
                environment: Sequence[EnvReading], devices: Sequence[tuple[str, str]], k: int = HISTORY_K, rank: bool = True,
                usual: Sequence[Sequence[Action]] | None = None,
                state: Sequence[Sequence[tuple[str, str]]] | None = None) -> str:
    """The prompt string the model reads (compact history: time and actions per operation)."""
    return serialize_prompt(make_prompt(history, now, environment, devices, k, rank, usual, state))

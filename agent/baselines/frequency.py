"""Time-of-day frequency baseline: recommend what this home did most often at this time of day.

``FrequencyBaseline(slot_minutes=60).fit(ops)`` counts each logged operation's action set
(compared as a set: order does not make a different operation, as in ``agent.metrics``) in
the time-of-day slot of its time. ``predict(time)`` returns the most frequent action set of
``time``'s slot; ties go to the set seen most recently. Fallback, documented: when the slot
is empty, the nearest non-empty slot by circular distance (the earlier one on a tie); with no
history at all, ``()`` (abstain). Unlogged operations are skipped: a recommender never sees them.
Pure Python/numpy; the evaluation and the simulator's report share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sim.records import Action, Operation

Key = frozenset


class FrequencyBaseline:
    """Most frequent action set per time-of-day slot, with the nearest-slot fallback."""

    def __init__(self, slot_minutes: int = 60) -> None:
        if not isinstance(slot_minutes, int) or slot_minutes < 1 or 1440 % slot_minutes:
            raise ValueError(f"slot_minutes must be a divisor of 1440 (e.g. 15, 30, 60), got {slot_minutes!r}")
        self.slot_minutes = slot_minutes
        self.n_slots = 1440 // slot_minutes
        # per slot: action-set key -> [count, last time, actions in their first-seen order]
        self.slots: list[dict[Key, list]] = [{} for _ in range(self.n_slots)]

    def slot(self, time: datetime) -> int:
        return (time.hour * 60 + time.minute) // self.slot_minutes

    def fit(self, ops: Iterable[Operation]) -> FrequencyBaseline:
        """Count the logged operations (adds to earlier fits; call on a fresh object to refit)."""
        for op in ops:
            if not op.logged:
                continue
            entry = self.slots[self.slot(op.time)].setdefault(Key(op.actions), [0, op.time, op.actions])
            entry[0] += 1
            entry[1] = max(entry[1], op.time)
        return self

    def _best(self, s: int, keep: Callable[[tuple[Action, ...]], bool] | None) -> tuple[Action, ...] | None:
        best = None
        for count, last, acts in self.slots[s].values():
            if keep is not None and not keep(acts):
                continue
            if best is None or (count, last) > best[:2]:
                best = (count, last, acts)
        return None if best is None else best[2]

    def predict(self, time: datetime, keep: Callable[[tuple[Action, ...]], bool] | None = None
                ) -> tuple[Action, ...]:
        """Most frequent action set of ``time``'s slot (nearest non-empty slot as fallback).

        ``keep`` restricts the candidates (e.g. curtain operations only).
        """
        s0 = self.slot(time)
        for d in range(self.n_slots // 2 + 1):
            for s in ((s0 - d) % self.n_slots, (s0 + d) % self.n_slots):
                acts = self._best(s, keep)
                if acts is not None:
                    return tuple(acts)
        return ()

    def confidence(self, time: datetime, actions: tuple[Action, ...]) -> float:
        """The baseline's one confidence: the share of ``actions`` among the operations counted in
        the nearest slot (to ``time``'s) that holds them, halved per slot of distance; 0 if none does."""
        if not actions:
            return 0.0
        s0, key = self.slot(time), Key(actions)
        for d in range(self.n_slots // 2 + 1):
            for s in ((s0 - d) % self.n_slots, (s0 + d) % self.n_slots):
                entry = self.slots[s].get(key)
                if entry is not None:
                    return entry[0] / sum(e[0] for e in self.slots[s].values()) * 0.5 ** d
        return 0.0

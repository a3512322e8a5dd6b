"""DPO negative mining (paper Sec. 3.3), pure: no files, no global state.

Two kinds of rejected recommendations are mined for a real operation ``op`` of a home at time ``t``:

- **time** (time-sensitive): an action of this home (performed by someone in the home before
  ``t``) that *this user* never performed within +-1 h of ``t``'s time of day in their history
  strictly before ``t``. Recommending it now is untimely.
- **conflict**: the inverse (``sim.catalog.inverse``) of an action on the same device that was
  performed in this home within the conflict window before ``t`` (10 min; 2 min for
  high-frequency devices, ``sim.catalog.conflict_window_s``). Recommending it undoes what a
  person just did.

"History" means logged operations strictly before ``t`` at minute resolution, the same ones the
prompt's history window sees. A negative never equals a chosen action, and every negative is
legal for its device (``sim.catalog.validate``). ``NegativeMiner`` keeps incremental state so a
home's operations are mined in one pass: call ``mine`` for every operation of a minute, then
``observe`` them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from sim.catalog import conflict_window_s, inverse, validate
from sim.prompts import MINUTES_PER_DAY, TIME_TOLERANCE_MIN, minute_of_day
from sim.records import Action, Operation

NEGATIVE_KINDS: tuple[str, ...] = ("time", "conflict")


@dataclass(frozen=True)
class Negative:
    """A mined rejected recommendation: its actions and which rule produced it."""

    actions: tuple[Action, ...]
    kind: str  # time | conflict


class NegativeMiner:
    """Incremental miner over one home's logged operations in time order.

    State: for every (user, action) a boolean coverage over the 1440 minutes of the day
    (True within +-1 h of a time the user performed the action), the home's actions in order of
    first appearance, and the recent actions for the conflict rule.
    """

    def __init__(self, types: Mapping[tuple[str, str], str]) -> None:
        self.types = dict(types)  # (room, device) -> catalogue type
        self.home_actions: dict[Action, bool] = {}  # action -> legal here, in order of first appearance
        self.coverage: dict[tuple[str, Action], np.ndarray] = {}  # (user, action) -> (1440,) bool
        self.recent: list[tuple[datetime, Action]] = []  # (time, action), time-ordered
        self._max_window_s = max([conflict_window_s(t) for t in self.types.values()] or [0])

    def observe(self, op: Operation) -> None:
        """Add a logged operation to the history (call after mining every operation of its minute)."""
        m = minute_of_day(op.time)
        span = (np.arange(m - TIME_TOLERANCE_MIN, m + TIME_TOLERANCE_MIN + 1)) % MINUTES_PER_DAY
        for a in op.actions:
            if a not in self.home_actions:
                self.home_actions[a] = a.target in self.types and _legal(self.types[a.target], a)
            cov = self.coverage.setdefault((op.user, a), np.zeros(MINUTES_PER_DAY, dtype=bool))
            cov[span] = True
            self.recent.append((op.time, a))

    def conflict(self, op: Operation) -> Negative | None:
        """Inverse of the most recent in-window action on a device, if legal and not chosen."""
        chosen = set(op.actions)
        # forget actions older than the widest window (recent is time-ordered)
        while self.recent and (op.time - self.recent[0][0]).total_seconds() > self._max_window_s:
            self.recent.pop(0)
        for when, a in reversed(self.recent):
            if when >= op.time:
                continue
            t = self.types.get(a.target)
            if t is None or (op.time - when).total_seconds() > conflict_window_s(t):
                continue
            inv = inverse(t, a.field, a.value)
            if inv is None:
                continue
            neg = Action(a.room, a.device, inv[0], inv[1])
            if neg in chosen or not _legal(t, neg):
                continue
            return Negative((neg,), "conflict")
        return None

    def time_candidates(self, op: Operation) -> list[Action]:
        """Home actions the user never performed within +-1 h of this time of day (history order)."""
        m = minute_of_day(op.time)
        chosen = set(op.actions)
        out = []
        for a, legal in self.home_actions.items():
            if not legal or a in chosen:
                continue
            cov = self.coverage.get((op.user, a))
            if cov is None or not cov[m]:
                out.append(a)
        return out

    def mine(self, op: Operation, rng: np.random.Generator) -> Negative | None:
        """One negative for ``op``: a conflict negative when one exists, else a time-sensitive one."""
        neg = self.conflict(op)
        if neg is not None:
            return neg
        cands = self.time_candidates(op)
        if not cands:
            return None
        return Negative((cands[int(rng.integers(len(cands)))],), "time")


def _legal(type_name: str, a: Action) -> bool:
    try:
        validate(type_name, a.field, a.value)
    except ValueError:
        return False
    return True


def inverse_action(a: Action, type_name: str) -> Action | None:
    """The action that undoes ``a`` on the same device, or None."""
    inv = inverse(type_name, a.field, a.value)
    return None if inv is None else Action(a.room, a.device, inv[0], inv[1])


__all__ = ["NEGATIVE_KINDS", "Negative", "NegativeMiner", "inverse_action"]

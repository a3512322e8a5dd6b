"""The logging policy: what the app showed at decision points, with known randomised propensities.

At an app-open decision point the policy builds a small candidate set:

- up to ``TOP_K`` action sets the home's *logged* history performed most often in this hour
  of the day (a simple time-of-day recommender, updated online as operations are logged);
- one exploratory candidate: a random device of the home switched to the opposite of its
  current power/open/lock state (so that replay and IPS see off-habit recommendations too).

It shows one candidate drawn from ``(1 - EPSILON) * softmax(count / TEMPERATURE) + EPSILON *
uniform``; every candidate has probability >= EPSILON / n, the recorded ``propensity`` is the
probability of the shown candidate and ``candidates`` the full distribution. The simulated
user's answer comes from the acceptance model (``sim.world.acceptance``); an accepted
recommendation is carried out as an app operation and satisfies the matching pending intent.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from sim.catalog import DEVICE_TYPES
from sim.describe import describe
from sim.log import Exposure, HomeSpec
from sim.records import Action, Operation
from sim.world.acceptance import judge_minute
from sim.world.activity import action, perform

if TYPE_CHECKING:
    from sim.world.world import World

TOP_K = 3
EPSILON = 0.2
TEMPERATURE = 2.0


class LoggingPolicy:
    def __init__(self, home: HomeSpec) -> None:
        self.home = home
        self.by_hour: list[Counter] = [Counter() for _ in range(24)]

    def observe(self, op: Operation) -> None:
        """Count a logged operation in its hour-of-day slot."""
        self.by_hour[op.time.hour][op.actions] += 1

    def distribution(self, hour: int, explore: tuple[Action, ...] | None) -> list[tuple[tuple[Action, ...], float]]:
        """(candidate, probability) pairs; probabilities sum to 1."""
        top = self.by_hour[hour].most_common(TOP_K)
        cands = [(acts, float(n)) for acts, n in top]
        if explore is not None and all(explore != c for c, _ in cands):
            cands.append((explore, 0.0))
        if not cands:
            return []
        m = max(s for _, s in cands)
        ws = [math.exp((s - m) / TEMPERATURE) for _, s in cands]
        z = sum(ws)
        n = len(cands)
        return [(c, (1 - EPSILON) * wgt / z + EPSILON / n) for (c, _), wgt in zip(cands, ws, strict=True)]


def explore_candidate(w: World) -> tuple[Action, ...] | None:
    """A random device switched to the inverse of its current power/open/lock state."""
    d = w.home.devices[w.ch.index(len(w.home.devices))]
    dt = DEVICE_TYPES[d.type]
    st = w.state[d.target]
    for a, b in dt.inverse_pairs:
        if st.get(a[0]) == a[1]:
            return (action(d.room, d.name, *b),)
        if st.get(b[0]) == b[1]:
            return (action(d.room, d.name, *a),)
    return None


def expose(w: World, user: str) -> Exposure | None:
    """Run the logging policy at a decision point: show, record, let the user answer."""
    now = w.env.now
    hour = int((now % 1440) // 60)
    dist = w.policy.distribution(hour, explore_candidate(w))
    if not dist:
        return None
    u = w.ch.uniform(0.0, 1.0)
    acc = 0.0
    shown, prop = dist[-1]
    for cand, p in dist:
        acc += p
        if u < acc:
            shown, prop = cand, p
            break
    desc = describe(shown, w.ch.index(3))
    j = judge_minute(w.log, now, shown, desc)
    accepted = w.ch.uniform(0.0, 1.0) < j.p
    exp = Exposure(w.datetime_of(now), user, shown, desc, prop, accepted, j.p, tuple(dist))
    w.log.exposures.append(exp)
    if accepted:
        settle_intents(w, shown)
        perform(w, user, shown, "app", description=desc, logged=True, cause="recommendation")
    return exp


def settle_intents(w: World, shown: tuple[Action, ...]) -> None:
    """Pending intents whose actions the accepted recommendation carries out are done."""
    now = w.env.now
    s = set(shown)
    for it in w.timeline.pending_intents(now, 60.0):
        if it.status == "pending" and set(it.actions) <= s:
            it.status, it.end = "accepted", now

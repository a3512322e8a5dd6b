"""The oracle: a predictor that reads the simulator's hidden truth (the ceiling for every method).

``oracle_predict(log, time)`` returns the actions of the pending intent due next (formed by
``time``, not yet carried out, due within ``HORIZON`` minutes), less the actions the device
state at ``time`` already satisfies (a plan formed earlier may be partly done by someone else).
It cannot know unplanned (noise) operations, accepted recommendations that matched no plan, or
a person's deviation from their own plan, so it is not perfect. With no pending intent it
abstains (returns ``()``).
"""

from __future__ import annotations

from datetime import datetime

from sim.catalog import effects
from sim.log import HomeLog
from sim.records import Action

HORIZON = 60.0  # minutes


def oracle_predict(log: HomeLog, time: datetime) -> tuple[Action, ...]:
    """Actions of the next pending intent at ``time`` (minute resolution), or ``()``."""
    if log.hidden is None:
        raise ValueError("oracle_predict needs a simulated HomeLog (log.hidden); a real log has none")
    tl = log.hidden["timeline"]
    t = (time - log.start).total_seconds() / 60.0
    types = log.home.types()
    for it in sorted((i for i in tl.pending_intents(t, HORIZON) if i.due >= t), key=lambda i: i.due):
        acts = tuple(a for a in it.actions if not all(
            tl.device_state(a.target, t).get(f) == v for f, v in effects(types[a.target], a.field, a.value)))
        if acts:
            return acts
    return ()

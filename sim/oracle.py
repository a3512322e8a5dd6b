"""The oracle: a predictor that reads the simulator's hidden truth (the ceiling for every method).

``oracle_predict(log, time)`` returns the actions of the resident's pending intent that is due
next (formed by ``time``, not yet carried out, due within ``HORIZON`` minutes). It cannot know
unplanned (noise) operations, accepted recommendations that matched no plan, or a person's
deviation from their own plan, so it is not perfect. With no pending intent it abstains
(returns ``()``).
"""

from __future__ import annotations

from datetime import datetime

from sim.log import HomeLog
from sim.records import Action

HORIZON = 60.0  # minutes


def oracle_predict(log: HomeLog, time: datetime) -> tuple[Action, ...]:
    """Actions of the next pending intent at ``time`` (minute resolution), or ``()``."""
    if log.hidden is None:
        raise ValueError("oracle_predict needs a simulated HomeLog (log.hidden); a real log has none")
    t = (time - log.start).total_seconds() / 60.0
    pending = [i for i in log.hidden["timeline"].pending_intents(t, HORIZON) if i.due >= t]
    if not pending:
        return ()
    return min(pending, key=lambda i: i.due).actions

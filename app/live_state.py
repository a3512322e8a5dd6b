"""The live-home session behind the Streamlit app: pure, testable logic with no Streamlit in it.

A ``LiveSession`` owns one simulated home (``sim.world.live.LiveHome``, a plain SimPy environment kept
in the app's session state and advanced on each tick), an *advisor* (``app.advisors``: the
trained recommender, or the frequency baseline when there is none) and the decisions so far:

- ``step()`` advances the home to its next app-open decision point, asks the advisor for a
  recommendation and records a ``Decision``. The gate shows it when confidence >= ``threshold``
  (the paper's exposure gate, default 0.7). The simulated user's acceptance probability
  (``LiveHome.judge``) is recorded for every decision, shown or not: it draws the Fig. 7a curve
  for thresholds below the gate and answers in auto mode.
- ``accept()`` / ``reject()`` answer the pending shown recommendation as the person at the
  screen; an accepted one is applied to the home (``LiveHome.apply``), so the home changes.
- ``tick(auto)`` is what the timer calls: in auto mode the simulated user answers (a draw from
  ``Generator([seed, index, decision])`` against the judged probability); in manual mode the
  clock holds while a shown recommendation waits for the person.
- ``metrics()``, ``exposure_curve()`` and ``acceptance_by_hour()`` are the live figures: acceptance
  = accepted / answered shown recommendations, exposure = shown / decision points (the
  definitions of ``agent.selective``), the threshold trade-off (Fig. 7a) and acceptance by hour
  of day for each device category (Fig. 5).

A shown recommendation still unanswered when the person steps on counts as ignored (not
accepted), as in the paper's acceptance rate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from agent.confidence import gate
from agent.selective import acceptance_rate, exposure_rate
from app.advisors import (  # noqa: F401  (re-exported: the app's one import point)
    Advisor,
    AdvisorChoice,
    FrequencyAdvisor,
    ModelAdvisor,
    Suggestion,
    _clip01,
    _first,
    choose_advisor,
    suggestion_from,
)
from sim.catalog import device_type
from sim.records import Action, Operation

DEFAULT_THRESHOLD = 0.7  # the paper's exposure gate


# ---------------------------------------------------------------- decisions and the session


@dataclass
class Decision:
    """One decision point: what was recommended, whether the gate showed it, what happened."""

    index: int
    time: datetime
    user: str
    suggestion: Suggestion
    exposed: bool
    p_accept: float  # the simulated user's probability of accepting (LiveHome.judge)
    factors: Mapping[str, Any] = field(default_factory=dict)
    categories: tuple[str, ...] = ()  # catalogue categories of the recommended devices
    answer: str | None = None  # accepted | rejected | ignored; None = not answered (or not shown)
    by: str = ""  # you | simulated user

    @property
    def accepted(self) -> bool:
        return self.answer == "accepted"

    @property
    def awaiting(self) -> bool:
        """Shown and not answered yet."""
        return self.exposed and self.answer is None


def categories_of(actions: Sequence[Action], types: Mapping[tuple[str, str], str]) -> tuple[str, ...]:
    """Distinct catalogue categories (paper sub-datasets) of the devices ``actions`` operate."""
    out: list[str] = []
    for a in actions:
        t = types.get(a.target)
        c = device_type(t).category if t else "Other"
        if c not in out:
            out.append(c)
    return tuple(out)


@dataclass(frozen=True)
class SessionConfig:
    """What the live page starts: a home, a run, the gate and the speed."""

    seed: int = 0  # simulator global seed (>= 0)
    index: int = 0  # home index: rooms, devices and residents' personas come from (seed, index)
    days: int = 14  # simulated days the home runs for, 1..365
    warmup_days: int = 2  # days simulated before going live (history for the advisor), 0..days-1
    model: str | None = None  # trained run directory; None = frequency baseline
    threshold: float = DEFAULT_THRESHOLD  # exposure gate: show when confidence >= threshold
    app_opens_per_day: float = 6.0  # decision points per resident per day (simulator default 3: livelier demo)

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.index, int) or self.index < 0:
            raise ValueError(f"home index must be an integer >= 0, got {self.index!r}")
        if not 1 <= self.days <= 365:
            raise ValueError(f"days must be in 1..365, got {self.days}")
        if not 0 <= self.warmup_days < self.days:
            raise ValueError(f"warmup_days must be in 0..days-1, got {self.warmup_days}")
        if not 0.0 < self.app_opens_per_day <= 50.0:
            raise ValueError(f"app_opens_per_day must be in (0, 50], got {self.app_opens_per_day}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")


def make_live_home(config: SessionConfig) -> Any:
    """The simulator's live home for ``config`` (``sim.world.live.LiveHome``)."""
    from sim.world import SimConfig
    from sim.world.live import LiveHome

    return LiveHome(SimConfig(seed=config.seed, days=config.days, app_opens_per_day=config.app_opens_per_day),
                    config.index)


def _judged(j: Any) -> tuple[float, dict[str, Any]]:
    p = _clip01(_first(j, ("p", "p_accept", "probability"), 0.0))
    factors = _first(j, ("factors",), {}) or {}
    return p, dict(factors) if isinstance(factors, Mapping) else {"factors": factors}


class LiveSession:
    """One live home with its advisor and decisions (see the module docstring)."""

    def __init__(self, config: SessionConfig, home: Any = None, advisor_choice: AdvisorChoice | None = None,
                 load_model: Callable[[str], Advisor] = ModelAdvisor) -> None:
        self.config = config
        self.threshold = config.threshold
        self.home = home if home is not None else make_live_home(config)
        if config.warmup_days > 0:
            start = self.home.now
            self.home.advance(start.replace(hour=0, minute=0, second=0, microsecond=0)
                              + timedelta(days=config.warmup_days))
        self.choice = advisor_choice if advisor_choice is not None else choose_advisor(
            config.model, self.home.log.operations, load_model=load_model)
        self.advisor = self.choice.advisor
        self.decisions: list[Decision] = []
        self.finished = False  # the home reached the end of its simulated days
        self.last_error = ""  # the last advisor/apply failure, for an error box

    # ------------------------------------------------------------ reading the home

    @property
    def now(self) -> datetime:
        return self.home.now

    @property
    def types(self) -> dict[tuple[str, str], str]:
        return self.home.log.home.types()

    @property
    def pending(self) -> Decision | None:
        """The last decision if it is shown and waits for an answer."""
        if self.decisions and self.decisions[-1].awaiting:
            return self.decisions[-1]
        return None

    def context(self) -> Any:
        """The recommender's view of the home now (``agent.context.Context``)."""
        from agent.context import Context
        from sim.dataset.rows import Environment
        from sim.prompts import context_rooms, history_window

        log = self.home.log
        now = self.home.now
        # the same decision-time readings as the dataset's prompts (sim.prompts: context_rooms)
        rooms = context_rooms(history_window(log.operations, now), log.home.rooms)
        env = Environment(log.events, log.start).at(now, rooms, before=True)
        return Context.from_home(log.home, log.operations, self.home.now, env)

    # ------------------------------------------------------------ advancing

    def step(self) -> Decision | None:
        """Advance to the next decision point and record its recommendation; None at the end.

        A shown recommendation still waiting for an answer is marked ignored first."""
        if self.finished:
            return None
        p = self.pending
        if p is not None:
            p.answer, p.by = "ignored", "you"
        t = self.home.step_to_next_decision()
        if t is None:
            self.finished = True
            return None
        return self._decide(t)

    def _decide(self, t: datetime) -> Decision:
        user = str(getattr(self.home, "decision_user", "") or "")
        sug = Suggestion((), "", 0.0, (), "no advisor")
        if self.advisor is not None:
            try:
                sug = self.advisor.suggest(self.context())
                self.last_error = ""
            except Exception as e:  # a model that fails on this context abstains, and the page says why
                self.last_error = f"The recommender failed at {t:%Y-%m-%d %H:%M}: {type(e).__name__}: {e}"
                sug = Suggestion((), "", 0.0, (), self.last_error)
        p_acc, factors = 0.0, {}
        if not sug.abstained:
            p_acc, factors = _judged(self.home.judge(sug.actions, sug.description))
        d = Decision(index=len(self.decisions), time=t, user=user, suggestion=sug,
                     exposed=not sug.abstained and gate(sug.confidence, self.threshold, sug.relax), p_accept=p_acc,
                     factors=factors, categories=categories_of(sug.actions, self.types))
        self.decisions.append(d)
        return d

    def answer(self, accepted: bool, by: str = "you") -> Decision:
        """Answer the pending shown recommendation; an accepted one is applied to the home."""
        d = self.pending
        if d is None:
            raise ValueError("no shown recommendation is waiting for an answer")
        if accepted:
            self.home.apply(d.suggestion.actions, description=d.suggestion.description, user=d.user or None)
        d.answer, d.by = ("accepted" if accepted else "rejected"), by
        return d

    def accept(self) -> Decision:
        return self.answer(True)

    def reject(self) -> Decision:
        return self.answer(False)

    def auto_answer(self) -> Decision | None:
        """The simulated user answers the pending recommendation: accept with the judged probability."""
        d = self.pending
        if d is None:
            return None
        u = np.random.default_rng([self.config.seed, self.config.index, d.index]).random()
        return self.answer(bool(u < d.p_accept), by="simulated user")

    def tick(self, auto: bool) -> Decision | None:
        """One timer tick: answer (auto) or hold (manual) a pending recommendation, else step."""
        if self.pending is not None:
            if not auto:
                return None
            self.auto_answer()
        d = self.step()
        if auto and d is not None and d.awaiting:
            self.auto_answer()
        return d

    # ------------------------------------------------------------ metrics

    def metrics(self) -> dict[str, float | int]:
        """Live counters and rates (acceptance over answered shown recommendations)."""
        ds = self.decisions
        exposed = [d.exposed for d in ds]
        answered = [d for d in ds if d.exposed and d.answer is not None]
        acc = acceptance_rate([d.accepted for d in answered], [True] * len(answered)) if answered else float("nan")
        return {
            "decisions": len(ds),
            "shown": sum(exposed),
            "answered": len(answered),
            "accepted": sum(d.accepted for d in answered),
            "exposure_rate": exposure_rate(exposed) if ds else float("nan"),
            "acceptance_rate": acc,
        }

    def exposure_curve(self, thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
        """Fig. 7a over the decisions so far: per threshold, exposure and acceptance rates."""
        return exposure_curve(self.decisions, thresholds)

    def acceptance_by_hour(self) -> dict[str, list[tuple[int, int]]]:
        return acceptance_by_hour(self.decisions)


def outcome(d: Decision) -> float | None:
    """What a decision contributes to an acceptance rate: the answer if there is one, else the
    simulated user's probability (a recommendation the gate withheld has no answer); None when
    the advisor abstained."""
    if d.suggestion.abstained:
        return None
    if d.answer is not None:
        return 1.0 if d.accepted else 0.0
    return d.p_accept


def exposure_curve(decisions: Sequence[Decision], thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
    """Per threshold t: exposure = share of decision points with confidence >= t (abstentions never
    shown); acceptance = mean ``outcome`` of those, nan when none is shown."""
    ts = list(thresholds) if thresholds is not None else [round(0.05 * k, 2) for k in range(21)]
    rows = []
    for t in ts:
        shown = [d for d in decisions if not d.suggestion.abstained and gate(d.suggestion.confidence, t, d.suggestion.relax)]
        outs = [o for o in (outcome(d) for d in shown) if o is not None]
        rows.append({"threshold": float(t),
                     "exposure_rate": len(shown) / len(decisions) if decisions else float("nan"),
                     "acceptance_rate": float(np.mean(outs)) if outs else float("nan")})
    return rows


def acceptance_by_hour(decisions: Sequence[Decision]) -> dict[str, list[tuple[int, int]]]:
    """Fig. 5: category -> 24 (accepted, answered) pairs by hour of day, over answered shown
    recommendations (a recommendation spanning two categories counts in both)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for d in decisions:
        if not d.exposed or d.answer is None:
            continue
        for c in d.categories:
            row = out.setdefault(c, [(0, 0)] * 24)
            a, n = row[d.time.hour]
            row[d.time.hour] = (a + int(d.accepted), n + 1)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- what the page shows (plain rows)

SENSOR_UNITS = {"temperature": "°C", "humidity": "%", "illuminance": "lux", "occupancy": "people"}


def room_views(snapshot: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per room: label, sensor readings with units, and device rows (device, type, state text)."""
    from sim.catalog import room_label

    out = []
    for room, r in (snapshot.get("rooms") or {}).items():
        sensors = {k: f"{r[k]:g} {u}" for k, u in SENSOR_UNITS.items() if isinstance(r.get(k), (int, float))}
        devices = []
        for name, st in (r.get("devices") or {}).items():
            state = {k: v for k, v in st.items() if k != "type"}
            devices.append({"device": name, "type": st.get("type", ""),
                            "state": ", ".join(f"{k}={v}" for k, v in state.items())})
        out.append({"room": room, "label": room_label(room).capitalize(), "sensors": sensors, "devices": devices})
    return out


def timeline_rows(ops: Sequence[Operation], n: int = 15) -> list[dict[str, Any]]:
    """The people's last ``n`` operations, newest first."""
    from sim.records import serialize_actions

    return [{"time": o.time.strftime("%a %m-%d %H:%M"), "user": o.user, "source": o.source,
             "logged": o.logged, "description": o.description, "actions": serialize_actions(o.actions)}
            for o in reversed(ops[-n:])]


def decision_rows(decisions: Sequence[Decision], n: int = 15) -> list[dict[str, Any]]:
    """The last ``n`` decision points, newest first."""
    rows = []
    for d in reversed(decisions[-n:]):
        s = d.suggestion
        rows.append({"time": d.time.strftime("%a %m-%d %H:%M"), "user": d.user,
                     "recommendation": s.description or s.reason, "confidence": round(s.confidence, 3),
                     "shown": d.exposed, "p_accept": round(d.p_accept, 3),
                     "answer": d.answer or ("waiting" if d.awaiting else "—"), "by": d.by})
    return rows


def hour_table(by_hour: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, list[float]]:
    """Fig. 5 as columns: category -> 24 acceptance rates (nan where nothing was answered)."""
    return {c: [a / n if n else float("nan") for a, n in row] for c, row in by_hour.items()}


def fmt_rate(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"

"""The live-home session behind the Streamlit app: pure, testable logic with no Streamlit in it.

A ``LiveSession`` owns one simulated home (``sim.world.live.LiveHome``, a plain SimPy environment kept
in the app's session state and advanced on each tick), an *advisor* (``app.advisors``: the
trained recommender, the GBDT reranker, the usual-operation rule or the frequency baseline;
``SessionConfig.advisor``) and the decisions so far:

- ``step()`` advances the home to its next app-open decision point, asks the advisor for a
  recommendation (given the devices' true state, so it never recommends what is already in
  place) and records a ``Decision``. The gate shows it when confidence >= ``threshold`` (x the
  recommender's adaptive relaxation): by default a trained model's operating point fitted on
  validation (``agent.calibrate.gate_threshold``), else the paper's 0.7. The simulated
  user's acceptance probability (``LiveHome.judge``) is recorded for every decision, shown or
  not: it draws the Fig. 7a curve and answers in auto mode.
- ``accept()`` / ``reject()`` answer the pending shown recommendation as the person at the
  screen; an accepted one is applied to the home (``LiveHome.apply``), so the home changes, and
  ``changed`` holds what it changed (device -> field -> (before, after)) until the next step.
- ``tick(auto)`` is what the timer calls: in auto mode the simulated user answers (a draw from
  ``Generator([seed, index, decision])`` against the judged probability); in manual mode the
  clock holds while a shown recommendation waits for the person.
- ``metrics()``, ``exposure_curve()`` and ``acceptance_by_hour()`` are the live figures. Counters:
  decision points, shown, withheld (below the gate), accepted, rejected, unanswered (shown, then
  stepped past without an answer) and waiting (shown, not answered yet). Acceptance rate =
  accepted / (accepted + rejected): answered recommendations only. Exposure rate = shown /
  decision points (the definitions of ``agent.selective``). Fig. 7a (the threshold trade-off)
  uses the *simulated user's* P(accept) for every recommendation, shown or not, answered or not,
  so it is one quantity whatever was clicked; Fig. 5 is acceptance of answered recommendations
  by hour of day for each device category.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from agent.confidence import DEFAULT_THRESHOLD, gate  # DEFAULT_THRESHOLD: the paper's gate, 0.7
from agent.selective import acceptance_rate, exposure_rate
from app.advisors import (  # noqa: F401  (re-exported: the app's one import point)
    ADVISORS,
    Advisor,
    AdvisorChoice,
    FrequencyAdvisor,
    GBDTAdvisor,
    ModelAdvisor,
    Suggestion,
    UsualAdvisor,
    _clip01,
    _first,
    choose_advisor,
    suggestion_from,
)
from sim.catalog import device_type
from sim.records import Action, Operation

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
    threshold: float = DEFAULT_THRESHOLD  # the gate threshold when it was decided (the slider may move later)
    before: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)  # recommended devices' state then
    answer: str | None = None  # accepted | rejected | unanswered (stepped past); None = waiting or not shown
    by: str = ""  # you | simulated user

    @property
    def accepted(self) -> bool:
        return self.answer == "accepted"

    @property
    def answered(self) -> bool:
        """Accepted or rejected (an unanswered one is not an answer)."""
        return self.answer in ("accepted", "rejected")

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
    advisor: str = "auto"  # who recommends: app.advisors.ADVISORS (auto = the model if given, else frequency)
    # exposure gate: show when confidence >= threshold; None = the advisor's own (a trained model's
    # operating point fitted on validation, agent.calibrate.gate_threshold), else DEFAULT_THRESHOLD
    threshold: float | None = None
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
        if self.advisor not in ADVISORS:
            raise ValueError(f"advisor must be one of {', '.join(ADVISORS)}, got {self.advisor!r}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")


def simulated_gbdt(seed: int) -> GBDTAdvisor:
    """The GBDT reranker trained on simulated homes of simulator seed ``seed``
    (``agent.baselines.gbdt.train_gbdt_simulated``: 30 homes x 14 days, ~20 s on one core), never
    the live home itself."""
    from agent.baselines.gbdt import train_gbdt_simulated

    return GBDTAdvisor(train_gbdt_simulated(seed))


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
                 load_model: Callable[[str], Advisor] = ModelAdvisor,
                 load_gbdt: Callable[[int], Advisor] = simulated_gbdt) -> None:
        self.config = config
        self.home = home if home is not None else make_live_home(config)
        if config.warmup_days > 0:
            start = self.home.now
            self.home.advance(start.replace(hour=0, minute=0, second=0, microsecond=0)
                              + timedelta(days=config.warmup_days))
        self.choice = advisor_choice if advisor_choice is not None else choose_advisor(
            config.model, self.home.log.operations, load_model=load_model, kind=config.advisor,
            load_gbdt=lambda: load_gbdt(config.seed))
        self.advisor = self.choice.advisor
        fitted = getattr(self.advisor, "gate_threshold", None)  # a trained model's fitted operating point
        self.threshold = (config.threshold if config.threshold is not None
                          else float(fitted) if fitted is not None else DEFAULT_THRESHOLD)
        self.decisions: list[Decision] = []
        # what the last accepted recommendation changed, (room, device) -> field -> (before, after);
        # shown on the floor plan until the next step
        self.changed: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
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
        from sim.dataset.rows import DecisionPrompts

        log = self.home.log
        now = self.home.now
        # the same decision-time readings as the dataset's prompts (sim.dataset.rows.DecisionPrompts)
        env = DecisionPrompts(log).prompt(now).environment
        ctx = Context.from_home(log.home, log.operations, self.home.now, env)
        return replace(ctx, current=self.home.device_states())  # the devices' true state: no no-ops

    # ------------------------------------------------------------ advancing

    def step(self) -> Decision | None:
        """Advance to the next decision point and record its recommendation; None at the end.

        A shown recommendation still waiting for an answer is marked unanswered first."""
        if self.finished:
            return None
        p = self.pending
        if p is not None:
            p.answer, p.by = "unanswered", ""
        self.changed = {}
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
        states = self.home.device_states()
        d = Decision(index=len(self.decisions), time=t, user=user, suggestion=sug,
                     exposed=not sug.abstained and gate(sug.confidence, self.threshold, sug.relax), p_accept=p_acc,
                     factors=factors, categories=categories_of(sug.actions, self.types), threshold=self.threshold,
                     before={a.target: states.get(a.target, {}) for a in sug.actions})
        self.decisions.append(d)
        return d

    def answer(self, accepted: bool, by: str = "you") -> Decision:
        """Answer the pending shown recommendation; an accepted one is applied to the home."""
        d = self.pending
        if d is None:
            raise ValueError("no shown recommendation is waiting for an answer")
        if accepted:
            before = self.home.device_states()
            self.home.apply(d.suggestion.actions, description=d.suggestion.description, user=d.user or None)
            after = self.home.device_states()
            self.changed = {k: {f: (before.get(k, {}).get(f, ""), v) for f, v in fv.items()
                                if before.get(k, {}).get(f) != v}
                            for k, fv in after.items() if fv != before.get(k)}
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
        """Live counters and rates (see the module docstring for what each counts)."""
        ds = self.decisions
        exposed = [d.exposed for d in ds]
        answered = [d for d in ds if d.exposed and d.answered]
        acc = acceptance_rate([d.accepted for d in answered], [True] * len(answered)) if answered else float("nan")
        return {
            "decisions": len(ds),
            "shown": sum(exposed),
            "withheld": sum(not d.exposed and not d.suggestion.abstained for d in ds),
            "abstained": sum(d.suggestion.abstained for d in ds),
            "accepted": sum(d.accepted for d in answered),
            "rejected": sum(d.answer == "rejected" for d in answered),
            "unanswered": sum(d.exposed and d.answer == "unanswered" for d in ds),
            "waiting": sum(d.awaiting for d in ds),
            "answered": len(answered),
            "exposure_rate": exposure_rate(exposed) if ds else float("nan"),
            "acceptance_rate": acc,
        }

    def exposure_curve(self, thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
        """Fig. 7a over the decisions so far: per threshold, exposure and acceptance rates."""
        return exposure_curve(self.decisions, thresholds)

    def acceptance_by_hour(self) -> dict[str, list[tuple[int, int]]]:
        return acceptance_by_hour(self.decisions)


def exposure_curve(decisions: Sequence[Decision], thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
    """Fig. 7a over the decisions so far. Per threshold t: exposure = share of decision points whose
    recommendation the gate would show at t (abstentions never shown); acceptance = the simulated
    user's mean P(accept) over those (nan when none would be shown). P(accept) rather than the
    answers: every threshold then counts the same quantity, including recommendations never shown."""
    ts = list(thresholds) if thresholds is not None else [round(0.05 * k, 2) for k in range(21)]
    rows = []
    for t in ts:
        shown = [d for d in decisions if not d.suggestion.abstained and gate(d.suggestion.confidence, t, d.suggestion.relax)]
        rows.append({"threshold": float(t),
                     "exposure_rate": len(shown) / len(decisions) if decisions else float("nan"),
                     "acceptance_rate": float(np.mean([d.p_accept for d in shown])) if shown else float("nan")})
    return rows


def acceptance_by_hour(decisions: Sequence[Decision]) -> dict[str, list[tuple[int, int]]]:
    """Fig. 5: category -> 24 (accepted, answered) pairs by hour of day, over answered shown
    recommendations (a recommendation spanning two categories counts in both)."""
    out: dict[str, list[tuple[int, int]]] = {}
    for d in decisions:
        if not d.exposed or not d.answered:
            continue
        for c in d.categories:
            row = out.setdefault(c, [(0, 0)] * 24)
            a, n = row[d.time.hour]
            row[d.time.hour] = (a + int(d.accepted), n + 1)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- what the page shows (plain rows)

# the simulated user's acceptance factors (sim.world.acceptance) in words; each adds to the log-odds
FACTOR_WORDS: dict[str, str] = {
    "base": "Starting point: an unasked-for recommendation is rarely welcome.",
    "intent_match": "It does what a resident was about to do anyway (within the next 90 min).",
    "habit_window": "It is one of a resident's habits, and this is their usual time for it.",
    "conflict": "It undoes something a resident did by hand a few minutes ago.",
    "time_inappropriate": "Wrong moment: the device is already so, or nobody is at home and awake.",
    "environment_inconsistent": "It does not suit the room now (cooling a cool room, light on in a bright one, ...).",
    "environment_need": "The moment calls for it: a curtain closed after dark, or opened in daylight, with someone home.",
    "unclear_description": "Its description does not say which room or device.",
    "illegal": "The home has no such device or setting.",
}


def factor_rows(factors: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The simulated user's non-zero factors, strongest first: what it means and its effect on the
    log-odds of accepting (+1 multiplies the odds by e = 2.7; P(accept) = 1 / (1 + e^-sum))."""
    rows = []
    for k, v in factors.items():
        if not isinstance(v, (int, float)) or v == 0:
            continue
        rows.append({"factor": k.replace("_", " "), "effect (log-odds)": round(float(v), 2),
                     "pushes towards": "accept" if v > 0 else "reject",
                     "meaning": FACTOR_WORDS.get(k, "")})
    return sorted(rows, key=lambda r: -abs(r["effect (log-odds)"]))


def change_rows(actions: Sequence[Action], current: Mapping[tuple[str, str], Mapping[str, str]],
                types: Mapping[tuple[str, str], str]) -> list[dict[str, str]]:
    """Per action: the device, the field, its value now and the proposed one, in words; ``note``
    "already so" when the action changes nothing (``sim.candidates.is_noop`` with what it implies),
    "unchanged" when its own field already has the value but the action does more (a bath warmer's
    mode "heat" while it is off also turns it on), else ""."""
    from sim.candidates import is_noop
    from sim.catalog import room_label

    rows = []
    for a in actions:
        now = current.get(a.target, {}).get(a.field, "?")
        note = ("already so" if is_noop((a,), current, types) else "unchanged" if now == a.value else "") if current else ""
        rows.append({"room": room_label(a.room), "device": a.device.replace("_", " "),
                     "setting": a.field.replace("_", " "), "now": now, "proposed": a.value, "note": note})
    return rows


def gate_text(confidence: float, threshold: float, relax: float = 1.0) -> str:
    """The gate's decision in words, with the adapted threshold when the recommender relaxes it."""
    thr = threshold * relax
    why = "" if relax == 1.0 else f" (gate {threshold:.2f} x {relax:.2f}: large home or numeric value)"
    op = ">=" if confidence >= thr else "<"
    return f"confidence {confidence:.2f} {op} {thr:.2f}{why}"


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
                     "shown": "shown" if d.exposed else "abstained" if s.abstained else "withheld",
                     "simulated P(accept)": round(d.p_accept, 3),
                     "answer": d.answer or ("waiting" if d.awaiting else "—"), "by": d.by})
    return rows


def hour_table(by_hour: Mapping[str, Sequence[tuple[int, int]]]) -> dict[str, list[float]]:
    """Fig. 5 as columns: category -> 24 acceptance rates (nan where nothing was answered)."""
    return {c: [a / n if n else float("nan") for a, n in row] for c, row in by_hour.items()}


def fmt_rate(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"

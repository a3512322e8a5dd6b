"""Who recommends in the live app: a trained run (``agent.recommender``) or, without one, the
time-of-day frequency baseline (``agent.baselines.frequency``), behind one small interface.

``choose_advisor`` loads the run and falls back to the baseline when there is none or it fails
to load, returning what the page must say (an info line and, for a broken run, an error box).
``Suggestion`` is a recommendation as the app shows it, whatever produced it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sim.records import Action, Operation


@dataclass(frozen=True)
class Suggestion:
    """A recommendation as the app shows it, whatever produced it.

    attributes: per action, the probabilities of its device, field and value (Eq. 6 parts);
    empty when the advisor has none (the frequency baseline).
    """

    actions: tuple[Action, ...]
    description: str
    confidence: float  # in [0, 1]
    attributes: tuple[Mapping[str, float], ...] = ()
    reason: str = ""
    relax: float = 1.0  # the recommender's adapted gate threshold over its base one (agent.confidence.gate)

    @property
    def abstained(self) -> bool:
        return not self.actions


class Advisor(Protocol):
    name: str

    def suggest(self, context: Any) -> Suggestion: ...


def _first(obj: Any, names: Sequence[str], default: Any = None) -> Any:
    for n in names:
        v = obj.get(n) if isinstance(obj, Mapping) else getattr(obj, n, None)
        if v is not None:
            return v
    return default


def _clip01(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if not math.isfinite(v) else min(1.0, max(0.0, v))


def _attribute_rows(raw: Any, n_actions: int) -> tuple[Mapping[str, float], ...]:
    """Normalise attribute probabilities: a mapping, or one mapping per action."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        raw = [raw]
    rows = []
    for r in list(raw)[: max(n_actions, 1)]:
        if isinstance(r, Mapping):
            rows.append({str(k): _clip01(v) for k, v in r.items() if isinstance(v, (int, float))})
        elif hasattr(r, "__dataclass_fields__"):
            rows.append({k: _clip01(getattr(r, k)) for k in r.__dataclass_fields__
                         if isinstance(getattr(r, k), (int, float)) and not isinstance(getattr(r, k), bool)})
    return tuple(rows)


def suggestion_from(rec: Any, base_threshold: float | None = None) -> Suggestion:
    """A ``Suggestion`` from an ``agent.recommender.Recommendation`` (or any object with its fields);
    with ``base_threshold`` (the recommender's configured gate) the adapted threshold it used is
    kept as ``relax``."""
    actions = tuple(_first(rec, ("actions",), ()) or ())
    adapted = _first(rec, ("threshold",), 0.0)
    relax = float(adapted) / base_threshold if base_threshold and adapted else 1.0
    return Suggestion(actions=actions, description=str(_first(rec, ("description",), "") or ""),
                      confidence=_clip01(_first(rec, ("confidence",), 0.0)),
                      attributes=_attribute_rows(_first(rec, ("attribute_probs", "attributes", "attribute_probabilities",
                                                              "probabilities")), len(actions)),
                      reason=str(_first(rec, ("reason",), "") or ""), relax=relax)


class ModelAdvisor:
    """A trained run: ``agent.recommender.Recommender.from_run(run)``."""

    def __init__(self, run: str, config: Any = None) -> None:
        from agent.recommender import Recommender, RecommenderConfig

        self.name = f"model {run}"
        # default: candidate scoring without sets the devices already have (the live home knows its
        # state); config: any agent.recommender.RecommenderConfig
        config = config or RecommenderConfig(search="candidates")
        self.recommender = Recommender.from_run(run, config)

    def suggest(self, context: Any) -> Suggestion:
        return suggestion_from(self.recommender.recommend(context), self.recommender.config.confidence.threshold)


class FrequencyAdvisor:
    """The time-of-day frequency baseline (``agent.baselines.frequency``), refitted online.

    ``observe(ops)`` adds the home's new operations as the home runs. Confidence:
    ``FrequencyBaseline.confidence`` (the share of the set in the nearest slot holding it, halved
    per slot of distance), the same as ``homepilot replay``'s.
    """

    name = "frequency baseline"

    def __init__(self, history: Sequence[Operation]) -> None:
        from agent.baselines.frequency import FrequencyBaseline

        self.baseline = FrequencyBaseline()
        self.seen = 0
        self.observe(history)

    def observe(self, history: Sequence[Operation]) -> None:
        """Fit the operations of ``history`` not seen yet (``history`` only grows)."""
        self.baseline.fit(history[self.seen:])
        self.seen = len(history)

    def confidence(self, time: datetime, actions: tuple[Action, ...]) -> float:
        """``FrequencyBaseline.confidence``: the one definition, shared with ``homepilot replay``."""
        return self.baseline.confidence(time, actions)

    def suggest(self, context: Any) -> Suggestion:
        self.observe(context.history)
        actions = tuple(self.baseline.predict(context.time))
        if not actions:
            return Suggestion((), "", 0.0, (), "no logged operation in the history yet")
        from sim.describe import describe

        return Suggestion(actions, describe(actions), self.confidence(context.time, actions), (),
                          "most frequent operation at this time of day")


@dataclass
class AdvisorChoice:
    """Which advisor runs, and what the page must say about it (``error`` goes in an error box)."""

    advisor: Advisor | None
    notice: str = ""  # info line: which advisor and why
    error: str = ""  # a model (or the fallback) that failed to load, in one line


def choose_advisor(model: str | None, history: Sequence[Operation],
                   load_model: Callable[[str], Advisor] = ModelAdvisor,
                   fallback: Callable[[Sequence[Operation]], Advisor] = FrequencyAdvisor) -> AdvisorChoice:
    """The trained model at ``model``; with none, or one that fails to load, the frequency baseline."""
    error = ""
    if model:
        try:
            adv = load_model(model)
            return AdvisorChoice(adv, f"Recommender: {adv.name}.")
        except Exception as e:  # a corrupt or missing run: fall back and say so
            error = f"Could not load the model run {model!r}: {type(e).__name__}: {e}"
    try:
        fb = fallback(history)
    except Exception as e:
        msg = f"The frequency-baseline fallback is unavailable: {type(e).__name__}: {e}"
        return AdvisorChoice(None, "", f"{error}\n\n{msg}" if error else msg)
    why = "the model failed to load" if model else "no trained model was given"
    return AdvisorChoice(fb, f"Recommender: frequency baseline ({why}).", error)

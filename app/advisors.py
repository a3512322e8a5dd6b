"""Who recommends in the live app, behind one small interface: a trained run
(``agent.recommender``), the gradient-boosted reranker (``agent.baselines.gbdt``), the
usual-operation rule (``agent.baselines.usual``) or the time-of-day frequency baseline
(``agent.baselines.frequency``), so a person can watch the strongest baseline beside the model.

``choose_advisor`` builds the chosen one and falls back to the frequency baseline when a run is
missing or fails to load (or the reranker cannot be trained), returning what the page must say
(an info line and, for a failure, an error box).
``Suggestion`` is a recommendation as the app shows it, whatever produced it.

No advisor recommends what the home already has: the live app passes the devices' true state in
``Context.current`` and both advisors leave out every action set that is already in place
(``sim.candidates.is_noop`` with the catalogue's effects, the simulated user's
definition of a redundant recommendation). The model's candidate scoring drops them before
scoring (``plausible_sets(current=...)``); the frequency baseline takes the most frequent set of
the slot that is not in place (``FrequencyBaseline.predict(keep=...)``); the reranker and the rule
score only sets not in place.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
    reason: str = ""  # why this recommendation, in words (or why there is none)
    relax: float = 1.0  # the recommender's adapted gate threshold over its base one (agent.confidence.gate)
    # the runner-up action sets and their confidences, best first (the model's candidate scoring)
    alternatives: tuple[tuple[tuple[Action, ...], float], ...] = ()

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


def suggestion_from(rec: Any, base_threshold: float | None = None, reason: str | None = None) -> Suggestion:
    """A ``Suggestion`` from an ``agent.recommender.Recommendation`` (or any object with its fields);
    with ``base_threshold`` (the recommender's configured gate) the adapted threshold it used is
    kept as ``relax``; ``reason`` replaces the recommendation's own."""
    actions = tuple(_first(rec, ("actions",), ()) or ())
    adapted = _first(rec, ("threshold",), 0.0)
    relax = float(adapted) / base_threshold if base_threshold and adapted else 1.0
    alts = tuple((tuple(a), _clip01(p)) for a, p in (_first(rec, ("alternatives",), ()) or ()))
    return Suggestion(actions=actions, description=str(_first(rec, ("description",), "") or ""),
                      confidence=_clip01(_first(rec, ("confidence",), 0.0)),
                      attributes=_attribute_rows(_first(rec, ("attribute_probs", "attributes", "attribute_probabilities",
                                                              "probabilities")), len(actions)),
                      reason=str(_first(rec, ("reason",), "") or "") if reason is None else reason, relax=relax,
                      alternatives=alts)


def _in_place(context: Any) -> Callable[[Sequence[Action]], bool]:
    """``actions -> True`` when everything they set already holds in ``context.current`` (the
    devices' true state); always False when the context has no true state."""
    from sim.candidates import is_noop

    current = getattr(context, "current", None)
    if current is None:
        return lambda actions: False
    types = dict(context.types)
    return lambda actions: bool(actions) and is_noop(tuple(actions), current, types)


class ModelAdvisor:
    """A trained run: ``agent.recommender.Recommender.from_run(run)``.

    Default: candidate scoring (``search="candidates"``: no cascade pruning, so the gate alone
    decides what is shown) without the sets the devices already have (``Context.current``)."""

    def __init__(self, run: str, config: Any = None) -> None:
        from agent.calibrate import gate_threshold
        from agent.recommender import Recommender, RecommenderConfig

        self.name = f"model {run}"
        config = config or RecommenderConfig(search="candidates")  # any agent.recommender.RecommenderConfig
        self.recommender = Recommender.from_run(run, config)
        # the gate threshold the live page starts at: the operating point fitted on validation, else 0.7
        self.gate_threshold = gate_threshold(run)

    @property
    def search(self) -> str:
        """How the model answers, in words (the page shows it beside the gate)."""
        cfg = self.recommender.config
        if cfg.search == "candidates":
            return "candidate scoring (no cascade pruning)"
        dev = cfg.confidence.device_threshold if cfg.cascade else 0.0
        return f"{cfg.search} decoding, cascade pruning at P(device) < {dev:.2f}" if dev else f"{cfg.search} decoding"

    def suggest(self, context: Any) -> Suggestion:
        rec = self.recommender.recommend(context)
        in_place = _in_place(context)
        base = self.recommender.config.confidence.threshold
        actions = tuple(getattr(rec, "actions", ()) or ())
        if actions and in_place(actions):  # greedy/beam decoding has no candidate list to drop it from
            return Suggestion((), "", 0.0, (), f"abstained: the model's answer ({describe_actions(actions)}) is "
                              "already in place")
        alts = tuple((a, p) for a, p in (getattr(rec, "alternatives", ()) or ()) if not in_place(a))
        if not actions:
            return suggestion_from(rec, base)
        n = len(alts)
        # the posterior over the weighed settings (the runner-ups' shares are on the same scale); the
        # confidence the gate reads is that posterior calibrated to an acceptance probability
        share = alts[0][1] if alts and frozenset(alts[0][0]) == frozenset(actions) else rec.confidence
        calibrated = self.recommender.config.confidence.calibrated
        usual = getattr(self.recommender.config, "pool", None) == "usual"  # sim.candidates.restrict_pool
        why = (f"Of the settings the model weighed (the home's usual operations at this time, its latest ones and "
               f"their opposites; none already in place) it gives this one {share:.0%} of its probability"
               + (f" (calibrated on held-out days: {rec.confidence:.0%} likely that the user does it next)" if calibrated else "")
               + ("; it answers only with one of the home's usual operations, and this is the likeliest of them"
                  if usual else "")
               + ("; runner-ups below." if n > 1 else "."))
        return replace(suggestion_from(rec, base, why), alternatives=alts[1:] if n > 1 else ())


def describe_actions(actions: Sequence[Action]) -> str:
    """The catalogue's plain-words description of ``actions`` (``sim.describe``)."""
    from sim.describe import describe

    return describe(tuple(actions))


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

    def why(self, time: datetime, actions: tuple[Action, ...]) -> str:
        """The baseline's answer in words: how often the home did it, in which hour of the day."""
        b = self.baseline
        s0, key = b.slot(time), frozenset(actions)
        for d in range(b.n_slots // 2 + 1):
            for s in ((s0 - d) % b.n_slots, (s0 + d) % b.n_slots):
                entry = b.slots[s].get(key)
                if entry is None:
                    continue
                total = sum(e[0] for e in b.slots[s].values())
                m0, m1 = s * b.slot_minutes, (s + 1) * b.slot_minutes
                hours = f"{m0 // 60:02d}:{m0 % 60:02d}-{m1 // 60 % 24:02d}:{m1 % 60:02d}"
                text = (f"Done {entry[0]} time(s) in {hours} on earlier days ({entry[0]} of the {total} operations "
                        f"logged in that hour): the most frequent one there that is not already in place.")
                if d:
                    text += f" That hour is {d} h from now, so the confidence is halved {d} time(s)."
                return text
        return "The most frequent operation at this time of day."

    def suggest(self, context: Any) -> Suggestion:
        self.observe(context.history)
        in_place = _in_place(context)
        actions = tuple(self.baseline.predict(context.time, keep=lambda a: not in_place(a)))
        if not actions:
            why = ("every operation in the home's history is already in place" if self.seen
                   else "no logged operation in the history yet")
            return Suggestion((), "", 0.0, (), why)
        return Suggestion(actions, describe_actions(actions), self.confidence(context.time, actions), (),
                          self.why(context.time, actions))


class UsualAdvisor:
    """The usual-operation rule (``agent.baselines.usual``): the prompt's most likely usual
    operation at this time that the devices do not already have (the true state, ``Context.current``,
    where the app knows it; else the prompt's logged state).

    The rule has no confidence of its own; the app gates it with the frequency baseline's
    (``FrequencyBaseline.confidence`` of the answer: how often the home did it in this hour), the
    same definition as ``FrequencyAdvisor``'s."""

    name = "usual-operation rule"

    def __init__(self, history: Sequence[Operation]) -> None:
        self.counts = FrequencyAdvisor(history)

    def suggest(self, context: Any) -> Suggestion:
        from agent.baselines.usual import usual_rule

        self.counts.observe(context.history)
        prompt = context.prompt()
        current = getattr(context, "current", None)
        usual = [tuple(u) for u in prompt.usual]
        pick = usual_rule(prompt, current, dict(context.types)) if current is not None else usual_rule(prompt)
        if not pick:
            why = ("no usual operation at this time yet" if not usual
                   else "every usual operation at this time is already in place")
            return Suggestion((), "", 0.0, (), why)
        rank = usual.index(pick) + 1
        why = (f"The home's usual operation number {rank} of {len(usual)} around this time"
               + (f" (the {rank - 1} more usual one(s) are already in place)" if rank > 1 else "")
               + ". Confidence: how often the home did it in this hour (the frequency baseline's).")
        return Suggestion(pick, describe_actions(pick), self.counts.confidence(context.time, pick), (), why)


class GBDTAdvisor:
    """The gradient-boosted reranker (``agent.baselines.gbdt``) over the decision's plausible sets,
    leaving out those already in place (``Context.current``). Confidence: its probability
    renormalised over the candidates; the runner-ups come with theirs.

    ``reranker``: a trained ``GBDTReranker``; the live page trains one on simulated homes of the
    same seed (``train_gbdt_simulated``), never the home it advises."""

    name = "GBDT reranker"
    N_ALTERNATIVES = 3

    def __init__(self, reranker: Any) -> None:
        self.reranker = reranker

    def suggest(self, context: Any) -> Suggestion:
        ranked = self.reranker.rank(context.prompt(), context.types, getattr(context, "current", None))
        if not ranked:
            return Suggestion((), "", 0.0, (), "no plausible setting that is not already in place")
        best = ranked[0]
        why = (f"Of the {len(ranked)} settings weighed (the home's usual operations at this time, its latest ones "
               f"and their opposites; none already in place) the reranker gives this one {best.confidence:.0%} "
               "of its probability" + ("; runner-ups below." if len(ranked) > 1 else "."))
        alts = tuple((r.actions, r.confidence) for r in ranked[1:1 + self.N_ALTERNATIVES])
        return Suggestion(best.actions, describe_actions(best.actions), best.confidence, (), why, alternatives=alts)


@dataclass
class AdvisorChoice:
    """Which advisor runs, and what the page must say about it (``error`` goes in an error box)."""

    advisor: Advisor | None
    notice: str = ""  # info line: which advisor and why
    error: str = ""  # a model (or the fallback) that failed to load, in one line


ADVISORS: dict[str, str] = {
    "auto": "the trained model when a run is given, else the frequency baseline",
    "model": "trained model",
    "gbdt": "GBDT reranker",
    "usual": "usual-operation rule",
    "frequency": "frequency baseline",
}
"""Who may advise in the live app (``SessionConfig.advisor``), key -> words."""


def choose_advisor(model: str | None, history: Sequence[Operation],
                   load_model: Callable[[str], Advisor] = ModelAdvisor,
                   fallback: Callable[[Sequence[Operation]], Advisor] = FrequencyAdvisor,
                   kind: str = "auto", load_gbdt: Callable[[], Advisor] | None = None) -> AdvisorChoice:
    """The advisor ``kind`` names (``ADVISORS``). ``auto``/``model``: the trained model at
    ``model``; with none, or one that fails to load, the frequency baseline. ``gbdt``: what
    ``load_gbdt()`` returns (the frequency baseline if it fails). ``usual``, ``frequency``: the rules,
    fitted on ``history``."""
    if kind not in ADVISORS:
        raise ValueError(f"advisor must be one of {', '.join(ADVISORS)}, got {kind!r}")
    error, why = "", ""
    if kind == "usual":
        return AdvisorChoice(UsualAdvisor(history), "Recommender: the usual-operation rule (the first of the "
                             "home's usual operations at this time not already in place).")
    if kind == "gbdt":
        try:
            if load_gbdt is None:
                raise ValueError("no GBDT reranker to load")
            adv = load_gbdt()
            return AdvisorChoice(adv, f"Recommender: {adv.name}.")
        except Exception as e:  # lightgbm missing, a failed training: fall back and say so
            error = f"Could not train the GBDT reranker: {type(e).__name__}: {e}"
            why = "the GBDT reranker is unavailable"
    elif kind in ("auto", "model") and model:
        try:
            adv = load_model(model)
            return AdvisorChoice(adv, f"Recommender: {adv.name}.")
        except Exception as e:  # a corrupt or missing run: fall back and say so
            error = f"Could not load the model run {model!r}: {type(e).__name__}: {e}"
            why = "the model failed to load"
    try:
        fb = fallback(history)
    except Exception as e:
        msg = f"The frequency-baseline fallback is unavailable: {type(e).__name__}: {e}"
        return AdvisorChoice(None, "", f"{error}\n\n{msg}" if error else msg)
    why = why or ("chosen" if kind == "frequency" else "no trained model was given")
    return AdvisorChoice(fb, f"Recommender: frequency baseline ({why}).", error)

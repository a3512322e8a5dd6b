"""``homepilot recommend``: what a recommender would suggest for one home at one time, from a dataset.

The story: rebuild the home from the dataset (``sim.dataset.files.read_home_log``: its devices with
their Home Assistant entity ids, its readings and its operations *strictly before* ``--at``) -> the
decision-time prompt, exactly as the dataset's sft rows are made (``sim.dataset.rows.DecisionPrompts``)
-> one recommender answers (``agent.policy.Recommendation``) -> print it as text, JSON, or Home
Assistant service calls (``sim.ha_export``).

Who answers (``--run``):
- a training run directory: ``agent.recommender.Recommender.from_run`` (candidate scoring, the run's
  calibrated confidence, the recommender's own adapted gate), as ``homepilot replay`` asks it;
- a baseline name: ``frequency`` (alias ``baseline``; time-of-day counts over the home's logged
  operations before ``--at``; confidence ``FrequencyBaseline.confidence``), ``gbdt`` or ``cgc``
  (trained on the dataset's sft train split first: seconds on an imported log, minutes on a large
  dataset), ``usual`` (the prompt's most likely usual operation not already in place,
  ``agent.baselines.usual``; no confidence: never shown), ``random`` (a random legal action, no
  confidence: never shown). The baselines are gated by
  ``agent.confidence.gate`` at ``--threshold`` (``agent.policy.gated``).

Formats: ``text`` (one line per fact), ``json`` (the recommendation, its prompt and its service
calls), ``ha`` (the service calls as a JSON list, for HA's REST API or a script), ``ha-script``
(a YAML ``script:`` block running them). A withheld or empty recommendation is still printed; the
HA formats then say on stderr that the gate would not show it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.policy import Recommendation, gated
from sim.log import HomeSpec
from sim.records import Operation, serialize_actions

BASELINES: tuple[str, ...] = ("frequency", "usual", "gbdt", "cgc", "random")
ALIASES = {"baseline": "frequency"}
FORMATS: tuple[str, ...] = ("text", "json", "ha", "ha-script")


def parse_time(text: str) -> datetime:
    """``--at``: ISO date and time (``2026-01-20T07:30``, ``2026-01-20 07:30:15``), the home's wall clock."""
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--at must be a date and time such as 2026-01-20T07:30, got {text!r}") from None
    if t.tzinfo is not None:
        raise ValueError(f"--at {text!r}: give the home's wall-clock time without a UTC offset (datasets store "
                         "naive local times)")
    return t


@dataclass
class RecommendConfig:
    """Options of ``homepilot recommend``."""

    data: Path  # dataset directory (generated or imported)
    run: str  # a training run directory, or a baseline name (BASELINES, or "baseline" = frequency)
    at: datetime  # decision time (the home's wall clock); only what happened strictly before is used
    home: str  # home id in the dataset's homes config
    format: str = "text"  # text | json | ha | ha-script
    # exposure gate; None = the run's operating point fitted on validation (agent.calibrate.gate_threshold;
    # 0.7 for a baseline or an uncalibrated run), resolved here
    threshold: float | None = None
    seed: int = 0  # random baseline, GBDT and CGC training
    method: str = field(init=False, default="")  # derived: the baseline name, or "run"

    def __post_init__(self) -> None:
        self.data = Path(self.data)
        if isinstance(self.at, str):
            self.at = parse_time(self.at)
        if not (self.data / "data").is_dir():
            raise FileNotFoundError(f"--data {self.data}: not a dataset directory (expected {self.data / 'data'})")
        if self.format not in FORMATS:
            raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"--threshold must be in [0, 1], got {self.threshold}")
        name = ALIASES.get(self.run, self.run)
        if name in BASELINES:
            self.method = name
        elif Path(self.run).is_dir():
            if not (Path(self.run) / "config.json").is_file() and not (Path(self.run) / "model").is_dir():
                raise FileNotFoundError(f"--run {self.run}: not a training run directory (no config.json or model/)")
            self.method = "run"
        else:
            raise FileNotFoundError(f"--run {self.run!r}: no such run directory, and not a baseline "
                                    f"({', '.join((*BASELINES, *ALIASES))})")
        from agent.calibrate import resolve_threshold

        self.threshold = resolve_threshold(self.threshold, self.run if self.method == "run" else None)


@dataclass(frozen=True)
class Decision:
    """One answered decision: where, when, the prompt it saw and the recommendation."""

    home: HomeSpec
    time: datetime
    prompt: str
    history: tuple[Operation, ...]  # the home's operations before ``time`` (logged and unlogged)
    recommendation: Recommendation
    method: str  # what answered: "frequency", ..., or "run:<dir>"


# ---------------------------------------------------------------- answering


def baseline(name: str, data: Path, prompt: str, types: dict[tuple[str, str], str], history: list[Operation],
             at: datetime, threshold: float, seed: int) -> Recommendation:
    """One baseline's gated recommendation for the decision (see the module docstring)."""
    from sim.describe import describe
    from sim.records import parse_prompt

    if name == "frequency":
        from agent.baselines.frequency import FrequencyBaseline

        model = FrequencyBaseline().fit(history)
        actions = model.predict(at)
        return gated(actions, describe(actions) if actions else "", model.confidence(at, actions), threshold,
                     "frequency: the home's most frequent operation at this time of day")
    p = parse_prompt(prompt)
    if name == "usual":
        from agent.baselines.usual import usual_rule

        actions = usual_rule(p)
        return Recommendation(actions, describe(actions) if actions else "", None, False,
                              "usual: the prompt's most likely usual operation not already in place; no confidence, "
                              "never shown", threshold=threshold)
    if name == "random":
        from agent.baselines.random_legal import RandomLegalBaseline

        actions = RandomLegalBaseline(seed).predict(p, types)
        return Recommendation(actions, describe(actions), None, False, "random legal action: no confidence, never shown",
                              threshold=threshold)
    if name == "gbdt":
        from agent.baselines.gbdt import GBDTConfig, train_gbdt

        (ranked,) = train_gbdt(data, GBDTConfig(seed=seed)).predict_batch([(p, types)])
    else:
        from agent.baselines.cgc import CGCConfig
        from agent.baselines.cgc_train import train_cgc

        (ranked,) = train_cgc(data, CGCConfig(seed=seed)).predict_batch([(p, types)])
    actions = tuple(ranked.actions)
    return gated(actions, describe(actions) if actions else "", float(ranked.confidence), threshold,
                 f"{name}: trained on the sft train split of {data}")


def recommend(cfg: RecommendConfig) -> Decision:
    """Rebuild the home before ``cfg.at``, make its decision-time prompt, and ask the recommender."""
    from agent.context import Context
    from sim.dataset.files import read_home_log
    from sim.dataset.rows import DecisionPrompts

    log = read_home_log(cfg.data, cfg.home, before=cfg.at)
    prompt = DecisionPrompts(log)(cfg.at)
    types = log.home.types()
    if cfg.method == "run":
        from agent.confidence import ConfidenceConfig
        from agent.recommender import Recommender, RecommenderConfig

        rec = Recommender.from_run(cfg.run, RecommenderConfig(search="candidates",
                                                              confidence=ConfidenceConfig(threshold=cfg.threshold)))
        answer = rec.recommend(Context.from_prompt(prompt, types))
        method = f"run:{cfg.run}"
    else:
        answer = baseline(cfg.method, cfg.data, prompt, types, log.logged_operations, cfg.at, cfg.threshold, cfg.seed)
        method = cfg.method
    return Decision(log.home, cfg.at, prompt, tuple(log.operations), answer, method)


# ---------------------------------------------------------------- rendering


def ha_calls(decision: Decision) -> list[dict[str, Any]]:
    """The recommended operation as HA service calls (``sim.ha_export.calls_json``)."""
    from sim.ha_export import calls_json, device_map, service_calls

    return calls_json(service_calls(decision.recommendation.actions, device_map(decision.home.devices)))


def _status(r: Recommendation) -> str:
    if not r.actions:
        return "abstained"
    return "exposed" if r.exposed else "withheld"


def as_json(decision: Decision) -> dict[str, Any]:
    r = decision.recommendation
    return {"home_id": decision.home.home_id, "time": decision.time.isoformat(), "method": decision.method,
            "status": _status(r), "actions": serialize_actions(r.actions),
            "action_list": [{"room": a.room, "device": a.device, "field": a.field, "value": a.value} for a in r.actions],
            "description": r.description, "confidence": r.confidence, "exposed": r.exposed, "threshold": r.threshold,
            "reason": r.reason, "ha_calls": ha_calls(decision), "history_operations": len(decision.history),
            "prompt": decision.prompt}


def as_text(decision: Decision) -> str:
    r = decision.recommendation
    conf = "none" if r.confidence is None else f"{r.confidence:.3f}"
    lines = [f"home {decision.home.home_id} at {decision.time:%Y-%m-%d %H:%M} ({decision.time:%a}); "
             f"{len(decision.history)} earlier operations; method {decision.method}",
             f"{_status(r)}: {serialize_actions(r.actions) or '(nothing)'}"]
    if r.description:
        lines.append(f"description: {r.description}")
    lines.append(f"confidence {conf} (gate threshold {r.threshold:.3f}); {r.reason}")
    return "\n".join(lines)


def as_script(decision: Decision) -> str:
    from sim.catalog import ServiceCall
    from sim.ha_export import script_yaml

    r = decision.recommendation
    calls = [ServiceCall.from_json(c) for c in ha_calls(decision)]
    conf = "no confidence" if r.confidence is None else f"confidence {r.confidence:.2f}"
    return script_yaml(calls, "homepilot_recommendation", f"HomePilot: {r.description or 'no recommendation'}",
                       f"Recommended by HomePilot ({decision.method}) for home {decision.home.home_id} at "
                       f"{decision.time:%Y-%m-%d %H:%M}, {conf}, {_status(r)}.")


def render(decision: Decision, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(as_json(decision), indent=2)
    if fmt == "ha":
        return json.dumps(ha_calls(decision), indent=2)
    if fmt == "ha-script":
        return as_script(decision).rstrip("\n")
    return as_text(decision)


def gate_note(decision: Decision) -> str:
    """What to say on stderr for the HA formats when the gate would not show the recommendation."""
    r = decision.recommendation
    if not r.actions:
        return f"no recommendation ({r.reason}): no service calls"
    if not r.exposed:
        conf = "no confidence" if r.confidence is None else f"confidence {r.confidence:.3f} < {r.threshold:.3f}"
        return f"withheld by the gate ({conf}): these calls are what it would have shown"
    return ""

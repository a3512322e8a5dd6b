"""After training: calibrate a model's confidence and check its answers for collapse, on the
held-out validation prompts of the dataset's ``sft`` train split (``sim.dataset.files.is_held_out``:
the train period's last days, never trained on, pre-training included).

For each model of a run (``sft/final``, ``dpo/final``; ``model`` is a copy) the recommender answers the
held-out contexts with the run's search (candidate scoring by default); an answer counts as
accepted when the label accepts it (``sim.envs.replay.label_accepts``: what the replay
environment counts, every recommended action loosely matched by what the user did next). One
temperature and bias on logit(confidence) (``agent.confidence.fit_platt``) are fitted by NLL and
written with the figures to ``<model>/recommender.json``, which ``Recommender.from_run`` reads.
With them the gate's operating point (``agent.confidence.fit_gate``): ``gate_threshold``, the widest
top share of the calibrated answers accepted >= 1.2x the average, the threshold every entry point
uses when none is given (``gate_threshold`` below; None when no share reaches the lift).
Before all that, with candidate scoring, the candidate pool (``sim.candidates.restrict_pool``):
``pool`` = "usual" (answer only with one of the prompt's usual operations) when that answers more
held-out contexts exactly than every plausible set does, else "plausible"; both figures in
``pool_em``, both from one scoring pass (``Recommender.recommend_pools``). The calibration and the
gate are then fitted on the chosen pool's answers, whose confidence is their posterior over every
plausible set. Up to 500 held-out prompts (the quickstart has ~380: its last 2 of 17 train days).

Collapse: when one answer is more than ``COLLAPSE_SHARE`` of the held-out answers, ``check``
returns a warning naming it and its share (``homepilot train`` prints it).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sim.prompts import HISTORY_K

COLLAPSE_SHARE = 0.30  # one answer above this share of the held-out contexts = collapsed
CALIBRATION_FILE = "recommender.json"


@dataclass(frozen=True)
class HeldOut:
    """Held-out validation contexts: prompt text, device types, label."""

    prompts: list[str]
    types: list[dict]
    labels: list[tuple]


def held_out(data: str | Path, max_rows: int = 500, history_k: int | None = None) -> HeldOut:
    """The first ``max_rows`` held-out prompts of the ``sft`` train split (dataset order); ``history_k``:
    their history windows rebuilt with that many operations (``sim.dataset.files.rewindow_prompts``),
    as a run trained with ``TrainConfig.history_k`` read them."""
    from sim.candidates import label_from_row, types_from_devices
    from sim.dataset.files import held_out_since, is_held_out, read_rows, rewindow_prompts

    since = held_out_since(data)
    rows = [r for r in read_rows(data, "sft", "train", ["home_id", "prompt", "devices", "actions"])
            if is_held_out(r["prompt"], since)]
    rows = rows[:max_rows]
    prompts = [r["prompt"] for r in rows]
    if history_k is not None:
        prompts = rewindow_prompts(data, [r["home_id"] for r in rows], prompts, history_k)
    return HeldOut(prompts, [types_from_devices(r["devices"]) for r in rows], [label_from_row(r) for r in rows])


def collapse_warning(answers: Sequence[tuple], share: float = COLLAPSE_SHARE) -> str | None:
    """A warning naming the top answer when it is more than ``share`` of ``answers``, else None."""
    if not answers:
        return None
    top, n = Counter(frozenset(a) for a in answers).most_common(1)[0]
    if n / len(answers) <= share:
        return None
    text = " ".join(sorted(str(a) for a in top)) or "(abstain)"
    return (f"collapsed answers: {text} is {n / len(answers):.0%} of {len(answers)} held-out answers "
            f"(> {share:.0%}); the model is not reading its prompt")


def calibrate_model(model_dir: str | Path, order: str, data: HeldOut, search: str = "candidates",
                    history_k: int = HISTORY_K) -> dict:
    """Fit the confidence calibration (temperature and bias) of one model on the held-out contexts and
    write it next to the model; returns the figures (also for a model with too few answers: none).
    ``history_k``: the history window the model was trained with."""
    from agent.confidence import DEFAULT_THRESHOLD, calibrate, ece, fit_gate, fit_platt
    from agent.context import Context
    from agent.recommender import Recommender, RecommenderConfig
    from sim.envs.replay import label_accepts

    cfg = RecommenderConfig(order=order, search=search, cascade=False, min_history=0, generate_description=False,
                            history_k=history_k, pool="plausible")
    rec = Recommender.from_run(model_dir, cfg, calibrated=False)
    contexts = [Context.from_prompt(p, t) for p, t in zip(data.prompts, data.types, strict=True)]

    def exact_of(recs) -> np.ndarray:
        return np.array([frozenset(lab) == frozenset(r.actions) for lab, r in zip(data.labels, recs, strict=True)])

    pool_em: dict[str, float] = {}
    if search == "candidates" and contexts:
        # the candidate pool (sim.candidates.restrict_pool): "usual" only where it answers more held-out
        # contexts exactly than every plausible set does; both from one scoring pass
        by_pool = rec.recommend_pools(contexts)
        pool_em = {pool: float(exact_of(r).mean()) for pool, r in by_pool.items()}
        rec.config = replace(rec.config, pool="usual" if pool_em["usual"] > pool_em["plausible"] else "plausible")
        recs = by_pool[rec.config.pool]
    else:
        recs = rec.recommend_batch(contexts)
    exact = exact_of(recs)
    answered = np.array([bool(r.actions) for r in recs])
    accepted = np.array([label_accepts(lab, r.actions, t) for lab, r, t in zip(data.labels, recs, data.types,
                                                                                strict=True)])
    conf = np.array([r.confidence for r in recs])
    out: dict = {"search": search, "n": len(recs), "answered": int(answered.sum()), "pool": rec.config.pool,
                 "pool_em": pool_em,
                 "em_acc": float(exact.mean()) if len(recs) else float("nan"),
                 "accepted_rate": float(accepted[answered].mean()) if answered.any() else float("nan"),
                 "temperature": 1.0, "bias": 0.0}
    if answered.sum() >= 10:
        c, a = conf[answered], accepted[answered]
        t, b = fit_platt(c, a)
        cal = calibrate(c, t, b)  # a calibrated confidence is gated without the adaptive relaxation
        out.update(temperature=t, bias=b, ece_before=float(ece(c, a, 10)), ece_after=float(ece(cal, a, 10)),
                   exposure_at_0_7=float((cal >= DEFAULT_THRESHOLD).mean() * answered.mean()))
        fit = fit_gate(cal, a)
        out["gate"] = None if fit is None else {**fit, "exposure": fit["exposure"] * float(answered.mean())}
        out["gate_threshold"] = None if fit is None else fit["threshold"]
    counts = Counter(frozenset(r.actions) for r in recs)
    top, n_top = counts.most_common(1)[0] if recs else (frozenset(), 0)
    out.update(distinct_per_100=100.0 * len(counts) / max(1, len(recs)), top_answer_share=n_top / max(1, len(recs)),
               top_answer=" ".join(sorted(str(a) for a in top)))
    out["collapse_warning"] = collapse_warning([r.actions for r in recs])
    path = Path(model_dir) / CALIBRATION_FILE
    path.write_text(json.dumps(out, indent=2))
    return out


def _fitted(run: str | Path) -> tuple[Path, dict] | None:
    """(path, contents) of the calibration file of ``RUN/model``, else of ``RUN`` itself (a model
    folder); None when neither has one. A file that is not a JSON object is a ValueError naming it."""
    run = Path(run)
    for d in (run / "model", run):
        f = d / CALIBRATION_FILE
        if f.is_file():
            try:
                fit = json.loads(f.read_text())
            except ValueError as e:
                raise ValueError(f"{f}: not a calibration file ({e}); re-run `homepilot train --resume`") from None
            if not isinstance(fit, dict):
                raise ValueError(f"{f}: not a calibration file (a JSON object); re-run `homepilot train --resume`")
            return f, fit
    return None


def gate_threshold(run: str | Path | None) -> float:
    """The exposure threshold a model's gate uses when none is given: the operating point fitted on
    the validation split (``recommender.json`` of ``RUN/model`` or of ``RUN`` itself when it holds the
    model), else ``agent.confidence.DEFAULT_THRESHOLD`` (0.7: no run, an uncalibrated model, or no
    share of its answers reached the lift)."""
    from agent.confidence import DEFAULT_THRESHOLD

    found = None if run is None else _fitted(run)
    if found is None:
        return DEFAULT_THRESHOLD
    f, fit = found
    try:
        value = fit.get("gate_threshold")
        value = None if value is None else float(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{f}: not a calibration file with a numeric gate_threshold ({e}); "
                         "re-run `homepilot train --resume` or pass --threshold") from None
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(f"{f}: gate_threshold {value} is not in [0, 1]; pass --threshold")
    return DEFAULT_THRESHOLD if value is None else value


def fitted_pool(run: str | Path | None) -> str:
    """The candidate pool a model scores when none is given: the one chosen on the held-out prompts
    (``pool`` in ``recommender.json`` of ``RUN/model`` or of ``RUN`` itself), else "plausible" (no run,
    an uncalibrated model, a file from before pools)."""
    from sim.candidates import POOLS

    found = None if run is None else _fitted(run)
    if found is None:
        return "plausible"
    f, fit = found
    pool = fit.get("pool", "plausible")
    if pool not in POOLS:
        raise ValueError(f"{f}: pool must be one of {', '.join(POOLS)}, got {pool!r}")
    return pool


def resolve_threshold(threshold: float | None, run: str | Path | None) -> float:
    """``threshold`` when given (must be in [0, 1]), else the run's fitted ``gate_threshold``."""
    if threshold is None:
        return gate_threshold(run)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return float(threshold)


def calibrate_run(run: str | Path, data: str | Path, search: str = "candidates", max_rows: int = 500,
                  progress=lambda _m: None) -> dict[str, dict]:
    """Calibrate every finished model of a training run (``sft/final``, ``dpo/final``); ``model/``
    (a copy of the last stage's) gets the same file."""
    import shutil

    run = Path(run)
    cfg = json.loads((run / "config.json").read_text())
    order = cfg.get("order", "action-first")
    data_ho = held_out(data, max_rows, cfg.get("history_k"))
    window = int(cfg.get("history_k") or HISTORY_K)
    out: dict[str, dict] = {}
    if not data_ho.prompts:  # a very small log: nothing held out, nothing to calibrate on
        progress(f"{data}: no held-out validation prompt in the sft train split (the train period's last "
                 "days are held out; this split spans one day): calibration skipped, confidence left uncalibrated")
        return out
    for name in ("sft/final", "dpo/final"):
        d = run / name
        if (d / "config.json").is_file():
            progress(f"calibrating {name} on {len(data_ho.prompts)} held-out contexts")
            out[name] = calibrate_model(d, order, data_ho, search, window)
    final = run / str(cfg.get("final_from", ""))
    if (final / CALIBRATION_FILE).is_file() and (run / "model").is_dir():
        shutil.copyfile(final / CALIBRATION_FILE, run / "model" / CALIBRATION_FILE)
    return out

"""``homepilot replay``: offline acceptance-rate evaluation of a recommender from logged feedback.

For one target policy (a trained run, or the time-of-day frequency baseline) over the decision
points of a dataset split it reports, side by side:

- the replay estimate (Li et al. 2011) with its matched count, IPS, SNIPS and DR
  (``agent.ope``) of the target's acceptance rate among the recommendations it would expose
  (confidence >= threshold), each with a percentile-bootstrap interval;
- the live ground truth: ``mode=replay`` averages the acceptance model's true probability
  (``sim.world.acceptance.p_accept``) of each exposed recommendation on the very same contexts, by
  re-simulating the homes from the dataset's generation config; ``mode=live`` instead runs the
  target in ``homepilot/HomeLive-v0`` (the home then drifts from the logged one: accepted
  operations change it), and reports the simulated users' answers;
- the exposure gate's metrics (``agent.selective``): acceptance, exposure, device coverage,
  cumulative reward, AURC and ECE (stating the bins), with acceptance judged by
  ``homepilot/HomeReplay-v0`` (logged feedback where the log showed the same operation, else
  the label).

Splits (``splits``): by default those of ``test`` and ``test_unseen`` the dataset has; several are
replayed together (``--mode live`` takes one, default ``test``).

Imported logs (``homepilot import-log``/``import-ha``) have neither logged recommendations nor a
simulated world. Without a ``feedback`` config the decision points are the split's sft rows (the
moments the user operated something): every recommendation is judged by the label, there are no
propensities and hence no off-policy estimates. Without the generator's manifest there is no live
ground truth (``--mode replay`` drops it, ``--mode live`` is refused). ``replay.json`` says which
(``logged_feedback``, ``simulator``) and ``replay.md`` says so in words.

Writes ``replay.json`` and ``replay.md`` under ``out``. Pure core (``evaluate``), thin shell
(``main``); policies and the truth are injectable for tests. The truth lives in
``agent.replay_truth``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agent.ope import DEFAULT_LEVEL, estimate_all
from agent.policy import Policy, Recommendation, Row, gated
from agent.selective import ece, selective_report
from sim.catalog import device_type
from sim.dataset.files import TEST_SPLITS, DatasetError, existing_splits, parse_splits, read_rows
from sim.envs.common import parse_recommendation
from sim.envs.replay import HomeReplayEnv, read_feedback
from sim.records import Action, parse_actions

MODES = ("replay", "live")
FEW_MATCHED = 30  # below this many matched points the report warns that intervals are unreliable


TruthFn = Callable[[Sequence[Row], Sequence[Recommendation]], np.ndarray]  # -> (n,) true P(accept)


# ---------------------------------------------------------------- the DR reward model


def op_key(actions: Sequence[Action], types: Mapping[tuple[str, str], str]) -> str:
    """The reward model's feature of an operation: its device categories and fields (``AC:power+...``)."""
    parts = []
    for a in actions:
        t = types.get(a.target)
        parts.append(f"{device_type(t).category if t else '?'}:{a.field}")
    return "+".join(sorted(set(parts)))


@dataclass
class RewardModel:
    """rhat(x, a) for DR: logged acceptance rate per ``op_key``, shrunk to the global rate.

    rhat = (accepted_k + prior * global) / (shown_k + prior); fit on the logged feedback of the
    train split (or the evaluated rows when no train feedback exists).
    """

    prior: float = 5.0  # pseudo-count of the shrinkage towards the global acceptance rate
    rates: dict[str, float] = field(default_factory=dict)
    global_rate: float = 0.5

    def fit(self, rows: Sequence[Row]) -> RewardModel:
        acc: dict[str, list[float]] = {}
        for r in rows:
            types = {(d["room"], d["device"]): d["type"] for d in r["devices"]}
            try:
                key = op_key(parse_actions(r["shown"]), types)
            except ValueError:
                continue
            acc.setdefault(key, []).append(float(r["accepted"]))
        every = [x for v in acc.values() for x in v]
        self.global_rate = float(np.mean(every)) if every else 0.5
        self.rates = {k: (sum(v) + self.prior * self.global_rate) / (len(v) + self.prior) for k, v in acc.items()}
        return self

    def predict(self, actions: Sequence[Action], types: Mapping[tuple[str, str], str]) -> float:
        return self.rates.get(op_key(actions, types), self.global_rate) if actions else 0.0


# ---------------------------------------------------------------- config


def min_boot(level: float) -> int:
    """Fewest bootstrap replicates for a percentile interval at ``level``: at least one replicate
    beyond each bound, n_boot * (1 - level) / 2 >= 1 (40 at 95%)."""
    return math.ceil(round(2 / (1 - level), 9))


@dataclass
class ReplayEvalConfig:
    """Options of ``homepilot replay``."""

    data: str  # dataset directory (``sim.dataset.schema`` layout)
    out: str  # output directory for replay.json and replay.md
    model: str = "baseline"  # a run directory (``agent.recommender.Recommender.from_run``) or "baseline"
    # exposure gate: show when confidence >= threshold; None = the run's operating point fitted on
    # validation (agent.calibrate.gate_threshold; 0.7 for the baseline or an uncalibrated run), resolved here
    threshold: float | None = None
    mode: str = "replay"  # replay: truth = p_accept on the logged contexts | live: run HomeLive-v0
    # splits replayed together; None = those of test, test_unseen the dataset has (live: test)
    splits: tuple[str, ...] | str | None = None
    penalty: float = 1.0  # cost of a rejected recommendation in the cumulative reward
    n_boot: int = 1000  # bootstrap replicates of every interval; 0 = no intervals (the report says so)
    level: float = DEFAULT_LEVEL  # interval level
    n_bins: int = 10  # ECE bins (equal width)
    seed: int = 0  # bootstrap and live-env seed
    live_days: int = 0  # mode=live: simulated days per home (0 = the dataset's test days)
    format: str = "report"  # report | ha: also predictions.jsonl, each decision's answer as HA service calls

    def __post_init__(self) -> None:
        from agent.calibrate import resolve_threshold

        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {self.threshold}")
        self.threshold = resolve_threshold(self.threshold, None if self.model == "baseline" else self.model)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")
        if self.n_boot != 0 and self.n_boot < min_boot(self.level):
            raise ValueError(f"n_boot must be 0 (no intervals) or >= {min_boot(self.level)} for {self.level:.0%} "
                             f"intervals, got {self.n_boot}")
        if self.n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {self.n_bins}")
        if self.live_days < 0:
            raise ValueError(f"live_days must be >= 0, got {self.live_days}")
        if self.format not in ("report", "ha"):
            raise ValueError(f"format must be report or ha, got {self.format!r}")
        self.splits = parse_splits(self.splits)
        if self.mode == "live" and self.splits is not None and len(self.splits) != 1:
            raise ValueError(f"--mode live replays one split, got --splits {','.join(self.splits)}")

    @property
    def split(self) -> str:
        """The one split of ``--mode live`` (and of a single-split replay); "a,b" for several."""
        return ",".join(self.splits or ("test",))

    def resolve_splits(self) -> tuple[str, ...]:
        """The splits to replay: the ones asked for (each must exist in the decision points' config:
        feedback, or sft without one), else those of test and test_unseen that exist (live: test)."""
        config = decision_config(self.data)
        have = existing_splits(self.data, config, ("train", *TEST_SPLITS))
        asked = self.splits or (("test",) if self.mode == "live" else tuple(s for s in TEST_SPLITS if s in have))
        missing = [s for s in asked if s not in have] or ([] if asked else ["test"])
        if missing:
            raise DatasetError(f"--data: {Path(self.data) / 'data' / config} has no {missing[0]} rows: nothing to "
                               f"evaluate (it has: {', '.join(have) or 'none'}; pick another --splits)")
        return tuple(asked)


# ---------------------------------------------------------------- the pure core


def order_rows(rows: Sequence[Row]) -> list[Row]:
    """Rows in the replay env's order: by home id, then time (stable)."""
    return sorted(rows, key=lambda r: (str(r["home_id"]), r["time"]))


def judge_in_env(rows: Sequence[Row], recs: Sequence[Recommendation], exposed: np.ndarray,
                 penalty: float) -> tuple[np.ndarray, list[str], float]:
    """Run HomeReplay-v0 over ``rows`` (already in env order) with the exposed recommendations.

    Returns (accepted (n,) bool as judged for *every* recommendation, exposed or not; judged_by
    per row; the env's cumulative reward, abstaining where not exposed).
    """
    env = HomeReplayEnv(list(rows), penalty=penalty)
    accepted = np.zeros(len(rows), dtype=bool)
    judged_by: list[str] = []
    total, k = 0.0, 0
    for ep in env.episodes:
        env.reset(options={"home": ep.home_id})
        for i in range(len(ep.obs)):
            rec = recs[k]
            accepted[k], how = env.judge(i, parse_recommendation(rec.target(), ep.types))
            judged_by.append(how)
            _, reward, _, _, _ = env.step(rec.target() if exposed[k] else "")
            total += reward
            k += 1
    return accepted, judged_by, total


def evaluate(rows: Sequence[Row], recs: Sequence[Recommendation], truth: np.ndarray | None, cfg: ReplayEvalConfig,
             reward_model: RewardModel | None, rng: np.random.Generator,
             truth_own: np.ndarray | None = None) -> dict[str, Any]:
    """The replay report for recommendations ``recs`` at feedback ``rows`` (same order, env order).
    ``reward_model`` None: the rows hold no logged exposures (decision points of an imported log):
    no off-policy estimates, every recommendation is judged by the label."""
    n = len(rows)
    if len(recs) != n:
        raise ValueError(f"{n} rows but {len(recs)} recommendations")
    conf = np.array([r.confidence for r in recs], dtype=float)
    has = np.array([bool(r.actions) for r in recs])
    exposed = has & np.array([r.exposed for r in recs], dtype=bool)  # the policy's gate decision
    types = [{(d["room"], d["device"]): d["type"] for d in r["devices"]} for r in rows]
    shown = [frozenset(parse_actions(r["shown"]) if r["shown"] else ()) for r in rows]  # "": nothing was shown
    matched = np.array([e and frozenset(rec.actions) == s for e, rec, s in zip(exposed, recs, shown, strict=True)])

    # off-policy estimates over the exposed contexts (acceptance among what the target shows)
    ix = np.flatnonzero(exposed)
    est = {}
    if reward_model is not None:
        reward = np.array([float(rows[i]["accepted"]) for i in ix])
        prop = np.array([float(rows[i]["propensity"]) for i in ix])
        rl = np.array([reward_model.predict(tuple(shown[i]), types[i]) for i in ix])
        rt = np.array([reward_model.predict(recs[i].actions, types[i]) for i in ix])
        est = estimate_all(reward, prop, matched[ix].astype(float), rl, rt, rng, cfg.n_boot, cfg.level)

    judged, judged_by, env_reward = judge_in_env(rows, recs, exposed, cfg.penalty)
    exposed_dev = [(str(rows[i]["home_id"]), *a.target) for i in ix for a in recs[i].actions]
    operated = [(str(r["home_id"]), *a.target) for r in rows for a in _label(r)]
    sel = selective_report(np.clip(conf, 0, 1), exposed, judged & has, exposed_dev, operated, cfg.penalty, cfg.n_bins)

    live = float(truth[ix].mean()) if truth is not None and len(ix) else float("nan")
    report: dict[str, Any] = {
        "live_acceptance": live,
        **{k: v.to_dict() for k, v in est.items()},
        "acceptance_rate": sel["acceptance_rate"], "exposure_rate": sel["exposure_rate"],
        "device_coverage": sel["device_coverage"], "cumulative_reward": env_reward,
        "aurc": sel["aurc"], "ece": sel["ece"], "n_bins": cfg.n_bins,
        "n_decisions": n, "n_exposed": int(exposed.sum()), "n_matched": int(matched.sum()),
        "judged_by": {k: judged_by.count(k) for k in ("logged", "label", "abstain", "invalid")},
        "level": cfg.level, "threshold": cfg.threshold, "logged_feedback": reward_model is not None,
    }
    if truth is not None:
        report["ece_true"] = ece(np.clip(conf[has], 0, 1), truth[has], cfg.n_bins)  # against true P(accept)
        if est:
            report["inside"] = {k: bool(est[k].covers(live)) for k in ("replay", "ips", "snips", "dr")}
    if truth_own is not None:
        report["live_acceptance_own_description"] = float(truth_own[ix].mean()) if len(ix) else float("nan")
    return report


def _label(r: Row) -> tuple[Action, ...]:
    try:
        return parse_actions(r["label"]) if r.get("label") else ()
    except ValueError:
        return ()


# ---------------------------------------------------------------- target policies


class FrequencyPolicy:
    """The time-of-day frequency baseline as a target policy (``agent.baselines.frequency``).

    One ``FrequencyBaseline`` per home, fit on the home's logged train-split operations (or, for
    a home with none, e.g. ``test_unseen``, on the history window of its first prompt).
    Confidence = ``FrequencyBaseline.confidence`` (the share of the set in the nearest slot holding
    it, halved per slot of distance; the app's too).
    The description is ``sim.describe.describe(actions)``.
    """

    name = "frequency-baseline"

    def __init__(self, operations: Mapping[str, Sequence[Any]], threshold: float = 0.7) -> None:
        self.operations = operations  # home_id -> logged Operation list (train split)
        self.threshold = threshold

    def recommend(self, rows: Sequence[Row]) -> list[Recommendation]:
        from agent.baselines.frequency import FrequencyBaseline
        from sim.describe import describe
        from sim.records import parse_prompt

        models: dict[str, Any] = {}
        out = []
        for r in rows:
            hid = str(r["home_id"])
            if hid not in models:
                ops = list(self.operations.get(hid, ()))
                if not ops:
                    ops = list(parse_prompt(r["prompt"]).history)
                models[hid] = FrequencyBaseline().fit(ops)
            actions = tuple(models[hid].predict(r["time"]))
            conf = models[hid].confidence(r["time"], actions)
            out.append(gated(actions, describe(actions) if actions else "", conf, self.threshold, "frequency"))
        return out


class RecommenderPolicy:
    """A trained run (``agent.recommender.Recommender.from_run``) as a target policy.

    It answers by candidate scoring with its calibrated confidence, as in ``homepilot evaluate``;
    the recommender's own gate decides exposure (``Recommendation.exposed``: confidence >= the
    threshold, lowered 10% for large candidate pools or numeric values, per the paper), with
    its base threshold set to the evaluation's.
    """

    def __init__(self, run: str, threshold: float = 0.7) -> None:
        from agent.confidence import ConfidenceConfig
        from agent.recommender import Recommender, RecommenderConfig

        self.name = f"run:{run}"
        self.model = Recommender.from_run(run, RecommenderConfig(search="candidates",
                                                                 confidence=ConfidenceConfig(threshold=threshold)))

    def recommend(self, rows: Sequence[Row]) -> list[Recommendation]:
        from agent.context import Context

        contexts = [Context.from_prompt(r["prompt"], {(d["room"], d["device"]): d["type"] for d in r["devices"]})
                    for r in rows]
        return self.model.recommend_batch(contexts)


# ---------------------------------------------------------------- report files


def _fmt(x: Any) -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3f}"


NO_FEEDBACK = ("No logged feedback (an imported log: no recommendations were shown, so there are no propensities): "
               "the decision points are the split's sft rows, every recommendation is judged by the label (what "
               "the user did), and there are no off-policy estimates.")
NO_SIMULATOR = ("No simulator manifest (`.shards/generation.json`): not a simulated dataset, so there is no live "
                "ground truth (the acceptance model's P(accept)) to compare with.")


def render_markdown(report: dict[str, Any]) -> str:
    lv = report["level"]
    sim = report.get("simulator", {})
    notes = [f"**{n}**" for n in (report.get("notes") or [])]
    lines = [
        f"# Offline acceptance evaluation: {report['policy']}", "",
        f"Data `{report['data']}`, split `{report['split']}`, threshold {report['threshold']:.3f}, "
        f"{report['n_decisions']} decision points, {report['n_exposed']} exposed, "
        f"{report['n_matched']} matching the logged operation.", "",
        *(x for n in notes for x in (n, "")),
    ]
    if "replay" in report:
        rows = [f"| live ground truth | {_fmt(report['live_acceptance'])} | | | |"]
        for k, name in (("replay", "replay (Li et al. 2011)"), ("ips", "IPS"), ("snips", "SNIPS"), ("dr", "DR")):
            e = report[k]
            inside = report.get("inside", {}).get(k)
            rows.append(f"| {name} | {_fmt(e['value'])} | [{_fmt(e['lo'])}, {_fmt(e['hi'])}] | "
                        f"{e.get('matched', e['n'])} | {'' if inside is None else ('yes' if inside else 'no')} |")
        lines += [
            (f"Acceptance among exposed recommendations, {lv:.0%} percentile-bootstrap intervals "
             f"({report['n_boot']} replicates):" if report["n_boot"] else
             "Acceptance among exposed recommendations; no intervals (`--n-boot 0`):"), "",
            "| estimate | value | interval | points (matched for replay) | truth inside |", "|---|---|---|---|---|",
            *rows, "",
            *([f"Only {report['n_matched']} exposed recommendations match a logged one (< {FEW_MATCHED}): every "
               "estimate rests on those few answers and the bootstrap intervals understate the uncertainty "
               "(DR leans on its reward model).", ""] if report["n_matched"] < FEW_MATCHED else []),
        ]
    if sim.get("live_truth", True):
        truth_note = {
            "replay": ("the target's true acceptance: the acceptance model's probability `p_accept` of each exposed "
                       "recommendation at the very same logged contexts (homes re-simulated from the generation "
                       "config), averaged. The estimators match the log on actions only, so the descriptions are "
                       "the logging policy's (a uniform draw of `sim.describe`'s phrasings): p is averaged over those "
                       "phrasings, which makes it exactly the quantity the estimators estimate. With the target's "
                       "own descriptions: " + _fmt(report.get("live_acceptance_own_description")) + "."),
            "live": ("the target's acceptance when it runs in `homepilot/HomeLive-v0` over the same homes and "
                     "period: the mean acceptance-model probability of the recommendations it exposed there (the "
                     "simulated users' sampled answers are in `live.sampled`). A fresh rollout: accepted operations "
                     "change the home and the logging policy is off, so the contexts differ from the logged ones."),
        }[report["mode"]]
        lines += [f"**Live ground truth** ({report['mode']} mode): {truth_note}", ""]
    lines += [
        "## Exposure gate", "",
        "| metric | value |", "|---|---|",
        f"| acceptance rate (judged by HomeReplay-v0) | {_fmt(report['acceptance_rate'])} |",
        f"| exposure rate | {_fmt(report['exposure_rate'])} |",
        f"| device coverage | {_fmt(report['device_coverage'])} |",
        f"| cumulative reward (penalty {report['penalty']}) | {report['cumulative_reward']:.1f} |",
        f"| AURC | {_fmt(report['aurc'])} |",
        f"| ECE ({report['n_bins']} bins) | {_fmt(report['ece'])} |",
    ]
    if "ece_true" in report:
        lines.append(f"| ECE vs true P(accept) ({report['n_bins']} bins) | {_fmt(report['ece_true'])} |")
    jb = report["judged_by"]
    lines += ["", f"HomeReplay-v0 judged {jb['logged']} recommendations by the logged answer (same operation shown), "
              f"{jb['label']} by the label (what the user did next), {jb['abstain']} were empty.", ""]
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


REPLAY_PATHS = ("replay.json", "replay.md", "predictions.jsonl")  # what a replay writes in its --out (sim.outdir)


def write_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write replay.json and replay.md into ``out`` (claimed first, ``sim.outdir``)."""
    from sim import outdir

    d = outdir.claim(out, "replay", REPLAY_PATHS)
    rows = report.get("predictions")
    if rows is not None:  # one JSON line per decision (--format ha), not in replay.json
        (d / "predictions.jsonl").write_text("".join(json.dumps(_jsonable(r)) + "\n" for r in rows))
        report = {**{k: v for k, v in report.items() if k != "predictions"}, "predictions_file": "predictions.jsonl"}
    (d / "replay.json").write_text(json.dumps(_jsonable(report), indent=2, sort_keys=True) + "\n")
    (d / "replay.md").write_text(render_markdown(report))
    return d / "replay.json"


# ---------------------------------------------------------------- the shell


def train_operations(data: str | Path) -> dict[str, list[Any]]:
    """home_id -> logged train-split operations, from the ``operations`` config."""
    from sim.dataset.files import logged_operations

    return logged_operations(data, ("train",))


def load_policy(cfg: ReplayEvalConfig) -> Policy:
    if cfg.model == "baseline":
        return FrequencyPolicy(train_operations(cfg.data), cfg.threshold)
    if not Path(cfg.model).exists():
        raise FileNotFoundError(f"--model: run directory {cfg.model!r} not found (or pass 'baseline')")
    return RecommenderPolicy(cfg.model, cfg.threshold)


def decision_config(data: str | Path) -> str:
    """Where the decision points come from: ``feedback`` (logged exposures), or ``sft`` for a dataset
    without one (an imported log)."""
    return "feedback" if (Path(data) / "data" / "feedback").is_dir() else "sft"


def sft_decisions(data: str | Path, split: str) -> list[Row]:
    """The split's sft rows as feedback-shaped decision points without a logged exposure: nothing
    was shown (``shown`` empty, propensity and ``p_accept`` unknown), the label is what the user did."""
    cols = ["home_id", "user", "time", "prompt", "actions", "bucket", "categories", "devices"]
    return [{**{k: r[k] for k in cols if k != "actions"}, "shown": "", "description": "", "propensity": float("nan"),
             "accepted": False, "p_accept": float("nan"), "label": r["actions"]}
            for r in read_rows(data, "sft", split, cols)]


def feedback_rows(cfg: ReplayEvalConfig) -> list[Row]:
    """The decision points of the splits in env order (``sft_decisions`` when the dataset has no
    feedback config); ``DatasetError`` when there are none."""
    splits = cfg.resolve_splits()
    rows: list[Row] = []
    for split in splits:
        got = read_feedback(cfg.data, split) if decision_config(cfg.data) == "feedback" else sft_decisions(cfg.data, split)
        rows += [{"split": split, **r} for r in got]  # where each decision point came from (predictions.jsonl)
    if not rows:
        raise DatasetError(f"--data: {Path(cfg.data) / 'data' / decision_config(cfg.data)} has no {','.join(splits)} "
                           "rows: nothing to evaluate (pick another --splits)")
    return order_rows(rows)


def run(cfg: ReplayEvalConfig, policy: Policy, truth: TruthFn | None,
        live: Callable[[ReplayEvalConfig, Policy], dict[str, float]] | None = None) -> dict[str, Any]:
    """Evaluate ``policy`` on the splits' decision points; the report dict (not written)."""
    cfg.splits = cfg.resolve_splits()
    rows = feedback_rows(cfg)
    logged = decision_config(cfg.data) == "feedback"
    reward_model = None
    if logged:
        try:
            fit_rows = read_feedback(cfg.data, "train") if "train" not in cfg.splits else rows
        except DatasetError:  # no train feedback: fit the reward model on the split itself
            fit_rows = rows
        reward_model = RewardModel().fit(fit_rows or rows)
    recs = policy.recommend(rows)
    reproduced = None
    if truth is not None and cfg.mode == "replay" and hasattr(truth, "check") and logged:
        reproduced = truth.check(rows)
    p_true = truth(rows, recs) if truth is not None and cfg.mode == "replay" else None
    own = getattr(truth, "own", None)
    p_own = own(rows, recs) if own is not None and cfg.mode == "replay" else None
    report = evaluate(rows, recs, p_true, cfg, reward_model, np.random.default_rng(cfg.seed), p_own)
    if cfg.mode == "live":
        if live is None:
            raise ValueError("mode 'live' needs a live runner")
        lv = live(cfg, policy)
        report["live_acceptance"] = lv["expected"]
        report["live"] = lv
        if reward_model is not None:
            report["inside"] = {k: bool(report[k]["lo"] <= lv["expected"] <= report[k]["hi"])
                                for k in ("replay", "ips", "snips", "dr")}
    has_truth = truth is not None or (cfg.mode == "live" and live is not None)
    report["simulator"] = {"live_truth": has_truth, "note": "" if has_truth else NO_SIMULATOR}
    report["notes"] = [n for n in (NO_FEEDBACK if not logged else "", report["simulator"]["note"]) if n]
    report.update(policy=policy.name, data=str(cfg.data), split=cfg.split, splits=list(cfg.splits), mode=cfg.mode,
                  n_boot=cfg.n_boot, penalty=cfg.penalty, seed=cfg.seed)
    if reproduced is not None:
        report["truth_reproduces_log"] = reproduced  # share of logged p_accept the re-simulation reproduces
    if cfg.format == "ha":
        from agent.evaluate import ha_rows

        report["predictions"] = ha_rows(cfg.data, [(str(r["home_id"]), str(r.get("split", "")), r["time"], _label(r), p,
                                                    p.exposed) for r, p in zip(rows, recs, strict=True)], policy.name)
    return report


def main(cfg: ReplayEvalConfig) -> dict[str, Any]:
    """``homepilot replay``: evaluate, write replay.json and replay.md, return the report. The
    decision points and ``--out`` are checked before the policy is loaded. A dataset without the
    generator's manifest (an imported log) has no live ground truth: ``--mode live`` is refused,
    ``--mode replay`` reports without it."""
    from agent.replay_truth import SimulatorTruth, has_generation, live_acceptance
    from sim import outdir

    if not (Path(cfg.data) / "data").is_dir():
        raise FileNotFoundError(f"--data: {cfg.data}/data/ not found: no feedback (or sft) decision points to replay "
                                "(a dataset made by `homepilot generate`, `import-log` or `import-ha`)")
    simulated = has_generation(cfg.data)
    if cfg.mode == "live" and not simulated:
        raise ValueError(f"--mode live runs the simulated homes of a generated dataset; {cfg.data} has no simulator "
                         "manifest (.shards/generation.json): an imported log. Use --mode replay")
    feedback_rows(cfg)
    outdir.check(cfg.out, "replay")
    policy = load_policy(cfg)
    truth = SimulatorTruth(cfg.data) if cfg.mode == "replay" and simulated else None
    report = run(cfg, policy, truth, live_acceptance if cfg.mode == "live" else None)
    write_report(report, cfg.out)
    return report

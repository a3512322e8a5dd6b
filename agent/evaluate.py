"""``homepilot evaluate``: score trained runs and the baselines on a dataset's test splits and write
a report shaped like the paper's tables (``agent.report``).

The story: load the test contexts (sft rows of ``splits``: by default those of ``test`` and
``test_unseen`` the dataset has; an import has no ``test_unseen``) -> every method predicts on the
same contexts -> ``agent.metrics`` scores them per sub-dataset -> where the dataset came from the
simulator, the homes are re-simulated from the dataset's generation manifest (same seed, same
bytes) so that the oracle can read the hidden truth and the simulated users' acceptance model can
judge each exposed recommendation (Fig. 7a) -> report. A dataset without that manifest (an imported
log: no simulated world) has neither: the report drops the oracle row and the simulated acceptance
and says so (``simulator`` in report.json, a line in report.md). With ``format="ha"`` the report
folder also gets ``predictions.jsonl``: per context, the main method's recommendation, whether the
gate shows it, and the operation as Home Assistant service calls on the home's entities
(``sim.ha_export``).

Methods (names used in the tables):
- ``Frequency``: time-of-day frequency over the home's logged operations before the context.
- ``Usual``: the prompt's most likely usual operation that its known state does not already hold
  (``agent.baselines.usual``): counting made state-aware, read from the prompt alone.
- ``CGC``: the paper's feature-based gated baseline (``agent.baselines.cgc``), trained on train.
- ``GBDT``: a LightGBM reranker over the prompt's plausible action sets (``agent.baselines.gbdt``),
  trained on train: the strongest honest feature model (prompt-only features).
- ``Random``: a uniformly random legal action.
- ``Prompted LM`` (with ``prompted_model``): a general local causal LM, zero-shot, reading an
  instruction header and the same prompts (``agent.baselines.prompted``; the paper's LLM rows).
- ``Base LM``: the pre-trained model only, prompted (``RUN/pretrain/final``).
- ``FT``, ``PT+FT``, ``PT+FT+DPO``: the LM variants (Table 3); ``text-first`` (Table 4). They answer
  by candidate scoring by default (``training.scoring``); the report compares greedy and beam search.
- ``Oracle``: the simulator's pending intent (hidden truth; the ceiling).
"""

from __future__ import annotations

import json
import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from agent.metrics import bootstrap_ci, paired_bootstrap, per_sample, score_by_subset, scores_to_json
from agent.policy import Recommendation
from agent.replay_truth import SimulatorTruth, has_generation
from sim.catalog import CatalogError, inverse, is_legal
from sim.dataset.files import TEST_SPLITS, existing_splits, logged_operations, parse_splits, read_rows
from sim.prompts import HISTORY_K
from sim.records import Action, Operation, Prompt, parse_actions, parse_prompt

Types = dict[tuple[str, str], str]


@dataclass(frozen=True)
class EvalSample:
    """One test context with its label and sub-dataset keys."""

    home_id: str
    split: str
    user: str
    time: datetime
    prompt_text: str
    prompt: Prompt
    label: tuple[Action, ...]
    subsets: tuple[str, ...]  # device-count bucket + operated categories
    types: Types  # (room, device) -> catalogue type


Predictor = Callable[[Sequence[EvalSample]], list[Recommendation]]  # one answer per sample (agent.policy)


# ---------------------------------------------------------------- loading


def load_samples(data_dir: str | Path, splits: Sequence[str] = ("test", "test_unseen"),
                 max_samples: int | None = None, seed: int = 0, history_k: int | None = None) -> list[EvalSample]:
    """Test contexts from the sft config; a seeded subsample of ``max_samples`` keeps dataset order
    (the same contexts whatever ``history_k``). ``history_k``: rebuild each prompt's history window
    with that many operations (``with_history``); None keeps the stored prompts."""
    cols = ["home_id", "user", "time", "prompt", "actions", "bucket", "categories", "devices"]
    out: list[EvalSample] = []
    for split in splits:
        for r in read_rows(data_dir, "sft", split, cols):
            out.append(EvalSample(
                home_id=r["home_id"], split=split, user=r["user"], time=r["time"], prompt_text=r["prompt"],
                prompt=parse_prompt(r["prompt"]), label=parse_actions(r["actions"]),
                subsets=(r["bucket"], *r["categories"]),
                types={(d["room"], d["device"]): d["type"] for d in r["devices"]}))
    if not out:
        raise ValueError(f"{data_dir}: no sft rows in splits {', '.join(splits)}")
    if max_samples is not None and len(out) > max_samples:
        keep = np.sort(np.random.default_rng(seed).choice(len(out), max_samples, replace=False))
        out = [out[i] for i in keep]
    return out if history_k is None else with_history(out, data_dir, history_k)


def with_history(samples: Sequence[EvalSample], data_dir: str | Path, k: int) -> list[EvalSample]:
    """The samples with each prompt's history window rebuilt with ``k`` operations from the
    dataset's logged operations (``sim.dataset.files.rewindow_prompts``); labels and everything
    else in the prompt stay."""
    from sim.dataset.files import rewindow_prompts

    texts = rewindow_prompts(data_dir, [s.home_id for s in samples], [s.prompt_text for s in samples], k)
    return [replace(s, prompt_text=t, prompt=parse_prompt(t)) for s, t in zip(samples, texts, strict=True)]


# ---------------------------------------------------------------- hidden truth (simulated datasets)


def oracle_predictor(truth: SimulatorTruth) -> Predictor:
    """The simulator's oracle (hidden truth of the homes as generated; the ceiling)."""

    def predict(samples: Sequence[EvalSample]) -> list[Recommendation]:
        return [Recommendation(truth.oracle(s.home_id, s.time), confidence=1.0) for s in samples]

    return predict


# ---------------------------------------------------------------- baseline predictors


def frequency_predictor(history: dict[str, list[Operation]]) -> Predictor:
    """Time-of-day frequency over the home's logged operations strictly before each context."""
    from agent.baselines.frequency import FrequencyBaseline

    def predict(samples: Sequence[EvalSample]) -> list[Recommendation]:
        out = []
        for s in samples:
            t0 = _time.perf_counter()
            past = [o for o in history.get(s.home_id, []) if o.time < s.time]
            acts = FrequencyBaseline().fit(past).predict(s.time)
            out.append(Recommendation(acts, latency_ms=1000 * (_time.perf_counter() - t0)))
        return out

    return predict


def usual_predictor() -> Predictor:
    """The usual-operation rule (``agent.baselines.usual``) on each context's prompt."""
    from agent.baselines.usual import usual_rule

    def predict(samples: Sequence[EvalSample]) -> list[Recommendation]:
        out = []
        for s in samples:
            t0 = _time.perf_counter()
            acts = usual_rule(s.prompt)
            out.append(Recommendation(acts, latency_ms=1000 * (_time.perf_counter() - t0)))
        return out

    return predict


def _feature_predictor(model, out_dir: Path | None) -> Predictor:
    """A trained feature baseline (``predict_batch([(prompt, types)])`` -> answers with
    ``actions`` and ``confidence``), saved to ``out_dir`` when given."""
    if out_dir is not None:
        model.save(out_dir)

    def predict(samples: Sequence[EvalSample]) -> list[Recommendation]:
        t0 = _time.perf_counter()
        preds = model.predict_batch([(s.prompt, s.types) for s in samples])
        ms = 1000 * (_time.perf_counter() - t0) / max(1, len(samples))
        return [Recommendation(tuple(p.actions), confidence=float(p.confidence), latency_ms=ms) for p in preds]

    return predict


def gbdt_predictor(data_dir: str | Path, seed: int, out_dir: Path | None = None) -> Predictor:
    """The gradient-boosted reranker over the prompt's plausible action sets (``agent.baselines.gbdt``)."""
    from agent.baselines.gbdt import GBDTConfig, train_gbdt

    return _feature_predictor(train_gbdt(data_dir, GBDTConfig(seed=seed)), out_dir)


def random_predictor(seed: int) -> Predictor:
    from agent.baselines.random_legal import RandomLegalBaseline

    base = RandomLegalBaseline(seed)

    def predict(samples: Sequence[EvalSample]) -> list[Recommendation]:
        return [Recommendation(base.predict(s.prompt, s.types)) for s in samples]

    return predict


def cgc_predictor(data_dir: str | Path, seed: int, out_dir: Path | None = None) -> Predictor:
    """The paper's CGC baseline (``agent.baselines.cgc``), trained on the train split."""
    from agent.baselines.cgc import CGCConfig
    from agent.baselines.cgc_train import train_cgc

    return _feature_predictor(train_cgc(data_dir, CGCConfig(seed=seed)), out_dir)


# ---------------------------------------------------------------- scoring pieces


def legal_rate(samples: Sequence[EvalSample], preds: Sequence[Recommendation]) -> float:
    """Share of non-empty predictions whose every action is legal in the sample's home."""
    n = ok = 0
    for s, p in zip(samples, preds, strict=True):
        if not p.actions:
            continue
        n += 1
        ok += all(a.target in s.types and is_legal(s.types[a.target], a.field, a.value) for a in p.actions)
    return ok / n if n else float("nan")


def failure_kind(sample: EvalSample, pred: Recommendation) -> str | None:
    """Which of the failure categories a wrong prediction falls in (None when exact)."""
    lab, prd = set(sample.label), set(pred.actions)
    if lab == prd:
        return None
    if not prd:
        return "abstained"
    if prd < lab:
        return "missed part of a bundle"
    if lab < prd:
        return "extra actions"
    for p in prd:
        t = sample.types.get(p.target)
        try:
            if t and any(inverse(t, lb.field, lb.value) == (p.field, p.value) for lb in lab if lb.target == p.target):
                return "opposite of the user's action"
        except CatalogError:
            pass
    lab_targets = {a.target for a in lab}
    if not any(p.target in lab_targets for p in prd):
        return "wrong device"
    lab_fields = {(a.target, a.field) for a in lab}
    if not any((p.target, p.field) in lab_fields for p in prd):
        return "right device, wrong field"
    return "right field, wrong value"


def summarize(samples: Sequence[EvalSample], preds: Sequence[Recommendation], rng: np.random.Generator,
              n_boot: int) -> tuple[dict, dict]:
    """(whole metrics with ci95 and n, by-subset metrics) of one method; ``n_boot=0``: no ci95."""
    labels = [s.label for s in samples]
    actions = [p.actions for p in preds]
    resolve = _SampleTypes(samples)
    scores = per_sample(labels, actions, types=resolve)
    by = score_by_subset(labels, actions, [s.subsets for s in samples], types=resolve)
    whole = dict(by["Whole"])
    if n_boot > 0:
        whole["ci95"] = {k: list(v) for k, v in bootstrap_ci(scores, rng, n_boot).items()}
    return whole, by


class _SampleTypes:
    """Type resolver for ``agent.metrics``: every action is looked up in the home it was scored in.

    Metrics score samples in order; actions carry only (room, device), so the resolver looks the
    pair up in the union of the samples' homes, falling back to the name rule. Homes built by the
    simulator name devices after their type, so the union never disagrees there.
    """

    def __init__(self, samples: Sequence[EvalSample]) -> None:
        self.types: Types = {}
        for s in samples:
            for k, v in s.types.items():
                self.types.setdefault(k, v)

    def __call__(self, a: Action) -> str | None:
        from sim.catalog import type_of_device_name

        return self.types.get(a.target) or type_of_device_name(a.device)


def diversity(preds: Sequence[Recommendation]) -> dict[str, float]:
    """How varied a method's answers are: distinct answers (action sets) per 100 contexts and the
    share of the most frequent answer (a collapsed model: few distinct, a large top share).
    Abstentions count as one answer, the empty set."""
    from collections import Counter

    if not preds:
        return {"distinct_per_100": float("nan"), "top_answer_share": float("nan")}
    counts = Counter(frozenset(p.actions) for p in preds)
    top, n_top = counts.most_common(1)[0]
    return {"distinct_per_100": 100.0 * len(counts) / len(preds), "top_answer_share": n_top / len(preds),
            "top_answer": " ".join(sorted(str(a) for a in top))}


def exposure_curve(confidences: np.ndarray, p_acc: np.ndarray,
                   thresholds: Sequence[float] = tuple(np.round(np.linspace(0, 1, 21), 2))) -> list[dict]:
    """Fig. 7a: exposure rate and mean acceptance of the exposed recommendations per threshold."""
    out = []
    for th in thresholds:
        shown = confidences >= th
        out.append({"threshold": float(th), "exposure_rate": float(shown.mean()),
                    "acceptance_rate": float(p_acc[shown].mean()) if shown.any() else float("nan")})
    return out


@dataclass
class MethodRun:
    """What one method produced on the samples (kept for the report's tables)."""

    name: str
    preds: list[Recommendation]
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- LM runs


def lm_predictor(model_dir: Path, order: str, search: str = "candidates", describe: bool = True,
                 history_k: int = HISTORY_K) -> Predictor:
    """A trained model behind the recommender: legal-only answers and their confidence.

    ``search``: candidates (score the plausible action sets; confidence = posterior), greedy or
    beam (constrained decoding; Eq. 6 confidence). The cascade is off so that every sample gets the
    model's full answer (the ungated metrics); the gate is applied afterwards from the confidence
    and the recommender's adapted threshold. The run's fitted confidence temperature is used
    (``agent.calibrate`` writes it to ``<model>/recommender.json``). ``describe=False``: template
    descriptions (only the main method's are judged by the simulated users). ``history_k``: operations
    of the prompt's history window the model reads (the samples' prompts must hold at least that many
    where the history has them: ``load_samples(history_k=...)``).
    """
    from agent.recommender import Recommender, RecommenderConfig

    rec = Recommender.from_run(model_dir, RecommenderConfig(order=order, cascade=False, min_history=0, search=search,
                                                            generate_description=describe, history_k=history_k))
    return recommender_predictor(rec)


def prompted_predictor(path: Path, search: str = "candidates", history_k: int = HISTORY_K) -> Predictor:
    """A general local causal LM, zero-shot (``agent.baselines.prompted``): the instruction header and
    the same prompts, answered by the same legal-only search; template descriptions."""
    from agent.baselines.prompted import load_prompted
    from agent.recommender import RecommenderConfig

    return recommender_predictor(load_prompted(path, RecommenderConfig(
        search=search, cascade=False, min_history=0, generate_description=False, history_k=history_k)))


def recommender_predictor(rec) -> Predictor:
    """An ``agent.recommender.Recommender`` over the samples' prompts (batched; mean latency per sample)."""
    from agent.context import Context

    def predict(samples: Sequence[EvalSample]) -> list[Recommendation]:
        contexts = [Context.from_prompt(s.prompt_text, s.types) for s in samples]
        t0 = _time.perf_counter()
        recs = rec.recommend_batch(contexts)
        ms = 1000 * (_time.perf_counter() - t0) / max(1, len(samples))
        return [replace(r, latency_ms=ms) for r in recs]

    return predict


def run_variants(run: Path) -> list[tuple[str, Path, str]]:
    """(method name, model dir, order) for each model a run directory holds (Table 3/4 names)."""
    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{cfg_file}: not a training run directory (homepilot train writes config.json)")
    cfg = json.loads(cfg_file.read_text())
    order = cfg.get("order", "action-first")
    ran = list(cfg.get("stages_run") or cfg.get("stages") or [])
    pretrained = "pretrain" in ran or bool(cfg.get("base_model"))
    out = []
    if order == "text-first":
        return [("text-first", run / "model", order)]
    if "pretrain" in ran and (run / "pretrain" / "final").is_dir():
        out.append(("Base LM", run / "pretrain" / "final", order))
    if "sft" in ran:
        out.append(("PT+FT" if pretrained else "FT", run / "sft" / "final", order))
    if "dpo" in ran:
        out.append(("PT+FT+DPO" if pretrained else "FT+DPO", run / "dpo" / "final", order))
    return out


def run_history_k(run: Path) -> int:
    """The history window a run was trained with (``TrainConfig.history_k``; the dataset's own,
    ``sim.prompts.HISTORY_K``, when the run kept the stored prompts)."""
    cfg = json.loads((run / "config.json").read_text())
    return int(cfg.get("history_k") or HISTORY_K)


def unfinished_stages(run: Path) -> list[str]:
    """The stages a run was asked for (``config.json``) that did not finish, in order; a run whose
    final model was never written counts its last stage as unfinished."""
    from training.runtime import is_done

    cfg = json.loads((run / "config.json").read_text())
    stages = list(cfg.get("stages") or [])
    missing = [s for s in stages if not is_done(run / s)]
    if not missing and stages and not (run / "model" / "config.json").is_file():
        missing = stages[-1:]
    return missing


# ---------------------------------------------------------------- the job


MAIN_ORDER = ("PT+FT+DPO", "PT+FT", "FT+DPO", "FT")
FORMATS: tuple[str, ...] = ("report", "ha")
#: report.md's line (and report.json's ``simulator.note``) for a dataset without a simulated world
NO_SIMULATOR = ("No simulator manifest (`.shards/generation.json`): this dataset is not a simulated one (an imported "
                "log), so there is no hidden truth: the Oracle row and the simulated users' acceptance of exposed "
                "recommendations (Fig. 7a, gate acceptance, ECE) are left out; the metrics compare each answer with "
                "what the user actually did.")
BASELINES: tuple[str, ...] = ("Frequency", "Usual", "CGC", "GBDT", "Random")
PROMPTED = "Prompted LM"  # the --prompted-model row (the paper's DeepSeek / GPT-4o rows)


@dataclass
class EvaluateConfig:
    """``homepilot evaluate``: which runs, which data, where the report goes."""

    data: Path  # dataset directory
    runs: list[Path]  # training run directories (any mix of PT+FT+DPO, FT-only, text-first)
    out: Path  # report directory
    splits: tuple[str, ...] | None = None  # sft splits evaluated; None = those of test, test_unseen that exist
    max_samples: int | None = 600  # seeded subsample of the test contexts (None = all)
    # exposure gate; None = each model's operating point fitted on validation (agent.calibrate.gate_threshold,
    # 0.7 for a model without one). ``gate_at_0_7`` is reported whatever this is
    threshold: float | None = None
    baselines: tuple[str, ...] = BASELINES
    oracle: bool = True  # score the simulator's oracle (simulated datasets only)
    seed: int = 0  # subsampling, bootstrap, random baseline, CGC init
    n_boot: int = 500  # bootstrap resamples for the 95% intervals
    search: str = "candidates"  # how the LMs answer: candidates | greedy | beam (agent.recommender)
    compare_searches: tuple[str, ...] = ("greedy", "beam")  # also run the main model with these ...
    compare_samples: int = 200  # ... on the first this many contexts (accuracy and time per search)
    format: str = "report"  # report | ha: also predictions.jsonl with each decision's HA service calls
    # operations in every prompt's history window: None = the stored prompts, each LM reading the
    # window it was trained with (``run_history_k``); an int rebuilds the test prompts with that many
    # (``with_history``) and every LM reads them all (the test-time history-length study)
    history_k: int | None = None
    prompted_model: Path | None = None  # a local HF causal LM scored zero-shot as the "Prompted LM" baseline

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        self.runs = [Path(r) for r in self.runs]
        if self.prompted_model is not None:
            from agent.baselines.prompted import check_model_dir

            self.prompted_model = check_model_dir(self.prompted_model)  # PromptedModelError (a ValueError)
        if not (self.data / "data").is_dir():
            raise FileNotFoundError(f"{self.data}: not a dataset directory (expected {self.data / 'data'})")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        self.splits = parse_splits(self.splits)
        for r in self.runs:
            if not (r / "config.json").is_file():
                raise FileNotFoundError(f"{r}: not a training run directory (no config.json)")
            unfinished = unfinished_stages(r)
            if unfinished:
                raise ValueError(f"--runs {r}: stage {unfinished[0]} never finished (no {r / unfinished[0] / 'stage_done.json'}"
                                 "); finish it with `homepilot train --resume` or leave the run out")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        unknown = set(self.baselines) - set(BASELINES)
        if unknown:
            raise ValueError(f"unknown baselines {sorted(unknown)}; choose from {', '.join(BASELINES)}")
        from agent.recommender import SEARCHES

        for sname in (self.search, *self.compare_searches):
            if sname not in SEARCHES:
                raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {sname!r}")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1 or None, got {self.max_samples}")
        if self.history_k is not None and self.history_k < 1:
            raise ValueError(f"history_k must be >= 1 or None, got {self.history_k}")

    def resolve_splits(self) -> tuple[str, ...]:
        """The sft splits to evaluate: the ones asked for (each must exist), else those of test and
        test_unseen the dataset has; ``ValueError`` naming the dataset's splits otherwise."""
        have = existing_splits(self.data, "sft", ("train", *TEST_SPLITS))
        asked = self.splits or tuple(s for s in TEST_SPLITS if s in have)
        if not asked:
            raise ValueError(f"{self.data}: no sft test or test_unseen split to evaluate (has: {', '.join(have) or 'none'})")
        missing = [s for s in asked if s not in have]
        if missing:
            raise ValueError(f"--splits: {self.data} has no sft {missing[0]} split (has: {', '.join(have) or 'none'})")
        return tuple(asked)


def _gate(p: Recommendation, threshold: float) -> bool:
    from agent.confidence import gate

    return bool(p.actions) and gate(p.confidence, threshold, p.relax)


def _latency(preds: Sequence[Recommendation]) -> dict[str, float]:
    ms = np.array([p.latency_ms for p in preds])
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95))}




def evaluate(cfg: EvaluateConfig, progress: Callable[[str], None] = lambda _m: None) -> dict:
    """Every method on the same contexts -> the report dict of ``agent.report``. Claims ``cfg.out``
    (``sim.outdir``) first: the feature baselines are saved there."""
    from agent.report import REPORT_PATHS
    from sim import outdir

    outdir.claim(cfg.out, "report", REPORT_PATHS)
    cfg.splits = cfg.resolve_splits()
    t_start = _time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    progress("loading test contexts")
    samples = load_samples(cfg.data, cfg.splits, cfg.max_samples, cfg.seed, cfg.history_k)
    window = cfg.history_k or HISTORY_K  # operations the samples' prompts hold (at most)
    truth = SimulatorTruth(cfg.data) if has_generation(cfg.data) else None

    predictors: list[tuple[str, Callable[[], Predictor]]] = []
    if "Frequency" in cfg.baselines:
        predictors.append(("Frequency", lambda: frequency_predictor(logged_operations(cfg.data))))
    if "Usual" in cfg.baselines:
        predictors.append(("Usual", usual_predictor))
    if "CGC" in cfg.baselines:
        predictors.append(("CGC", lambda: cgc_predictor(cfg.data, cfg.seed, cfg.out / "cgc")))
    if "GBDT" in cfg.baselines:
        predictors.append(("GBDT", lambda: gbdt_predictor(cfg.data, cfg.seed, cfg.out / "gbdt")))
    if "Random" in cfg.baselines:
        predictors.append(("Random", lambda: random_predictor(cfg.seed)))
    if cfg.prompted_model is not None:
        predictors.append((PROMPTED, lambda: prompted_predictor(cfg.prompted_model, cfg.search, window)))
    orders: dict[str, str] = {}
    windows: dict[str, int] = {}  # LM -> history window it reads
    variants = [(*v, cfg.history_k or run_history_k(run)) for run in cfg.runs for v in run_variants(run)]
    main_name = next((n for n in MAIN_ORDER if n in {v[0] for v in variants}), None)
    from agent.calibrate import fitted_pool, resolve_threshold

    # each model's gate, read before any predicting (a broken calibration file fails here, not after minutes)
    thresholds = {n: resolve_threshold(cfg.threshold, d) for n, d, _, _ in variants}
    pools = {n: fitted_pool(d) for n, d, _, _ in variants}  # candidate pool chosen on the held-out prompts

    def lm(model_dir: Path, order: str, search: str, describe: bool, k: int) -> Predictor:
        """An LM reading its own history window: the samples' prompts rebuilt where it differs."""
        inner = lm_predictor(model_dir, order, search, describe, k)
        return inner if k == window else lambda part: inner(with_history(part, cfg.data, k))

    for name, model_dir, order, k in variants:
        orders[name], windows[name] = order, k
        predictors.append((name, lambda d=model_dir, o=order, m=name == main_name, k=k: lm(d, o, cfg.search, m, k)))
    if cfg.oracle and truth is not None:
        predictors.append(("Oracle", lambda: oracle_predictor(truth)))
    progress(f"splits: {', '.join(cfg.splits)}; simulator truth: {'yes' if truth is not None else 'no (imported data)'}")

    runs: dict[str, MethodRun] = {}
    for name, make in predictors:
        progress(f"predicting: {name}")
        t0 = _time.perf_counter()
        preds = make()(samples)
        runs[name] = MethodRun(name, preds, _time.perf_counter() - t0)

    report: dict[str, Any] = {"data": str(cfg.data), "runs": [str(r) for r in cfg.runs],
                              "seeds": {"evaluation": cfg.seed, "dataset": truth.gen.seed if truth else None},
                              "n_samples": len(samples), "splits": list(cfg.splits), "whole": {}, "by_subset": {},
                              "simulator": {"oracle": cfg.oracle and truth is not None,
                                            "simulated_acceptance": truth is not None,
                                            "note": "" if truth is not None else NO_SIMULATOR}}
    progress("scoring")
    for name, mr in runs.items():
        report["whole"][name], report["by_subset"][name] = summarize(samples, mr.preds, rng, cfg.n_boot)
    resolve, labels = _SampleTypes(samples), [s.label for s in samples]
    scores = {name: per_sample(labels, [p.actions for p in mr.preds], resolve) for name, mr in runs.items()}
    report["per_sample"] = {name: scores_to_json(sc) for name, sc in scores.items()}  # agent.report: per_sample.json
    report["counts"] = {k: v["n"] for k, v in next(iter(report["by_subset"].values())).items()}
    report["by_split"] = {}
    for split in cfg.splits:
        idx = [i for i, s in enumerate(samples) if s.split == split]
        if idx:
            report["by_split"][split] = {
                name: summarize([samples[i] for i in idx], [mr.preds[i] for i in idx], rng, 0)[0]
                for name, mr in runs.items()}
    report["history_k"] = windows  # LM -> operations of the history window it read
    report["diversity"] = {name: diversity(mr.preds) for name, mr in runs.items()}
    report["legal_rate"] = {n: legal_rate(samples, mr.preds) for n, mr in runs.items()}
    report["latency_ms"] = {n: _latency(mr.preds) for n, mr in runs.items()}

    main = next((n for n in MAIN_ORDER if n in runs), None)
    baselines = [n for n in runs if n in (*BASELINES, PROMPTED, "Base LM")]
    report["main_method"] = main
    if main and baselines:
        report["gain"] = {}
        for subset, m in report["by_subset"][main].items():
            report["gain"][subset] = {}
            for k in ("em_acc", "lm_f1", "rule"):
                best = max(report["by_subset"][b].get(subset, {}).get(k, float("nan")) for b in baselines)
                report["gain"][subset][k] = (m[k] - best) / abs(best) if best and not np.isnan(best) else float("nan")

    if main and baselines and cfg.n_boot > 0:  # the main model against the best baseline by EM-Acc
        best = max((b for b in baselines if b != "Base LM"), key=lambda b: report["whole"][b]["em_acc"], default=None)
        if best:
            diff = paired_bootstrap(scores[main], scores[best], rng, cfg.n_boot)
            report["paired_diff_vs_best_baseline"] = {"method": main, "baseline": best, **diff}

    report["search"] = {}
    main_dir = next((d for n, d, _, _ in variants if n == main), None)
    if main and main_dir is not None and cfg.compare_searches:
        part = samples[:cfg.compare_samples]
        for sname in (cfg.search, *cfg.compare_searches):
            progress(f"comparing searches: {main} with {sname}")
            t0 = _time.perf_counter()
            preds = (runs[main].preds[:len(part)] if sname == cfg.search
                     else lm(main_dir, orders[main], sname, True, windows[main])(part))
            secs = runs[main].seconds * len(part) / len(samples) if sname == cfg.search else _time.perf_counter() - t0
            m = summarize(part, preds, rng, 0)[0]
            report["search"][sname] = {**{k: m[k] for k in ("em_acc", "lm_f1", "rule")}, "n": len(part),
                                       "ms_per_context": 1000 * secs / len(part), **diversity(preds)}

    report["thresholds"] = thresholds
    report["pools"] = pools
    report["ablation"] = {}
    for name in ("FT", "PT+FT", "PT+FT+DPO"):
        if name not in runs:
            continue
        preds = runs[name].preds
        shown = [i for i, p in enumerate(preds) if _gate(p, thresholds[name])]
        gated = summarize([samples[i] for i in shown], [preds[i] for i in shown], rng, 0)[0] if shown else {
            "em_acc": float("nan"), "lm_f1": float("nan"), "rule": float("nan")}
        gated.pop("ci95", None)
        gated["exposure_rate"] = len(shown) / len(samples)
        gated["threshold"] = thresholds[name]
        ungated = {k: report["whole"][name][k] for k in ("em_acc", "lm_f1", "rule")}
        report["ablation"][name] = {"ungated": ungated, "gated": gated}
    report["order"] = {}
    if "text-first" in runs:
        af = next((n for n in MAIN_ORDER if n in runs), None)
        if af:
            report["order"]["action-first"] = {k: report["whole"][af][k] for k in ("em_acc", "lm_f1", "rule")}
        report["order"]["text-first"] = {k: report["whole"]["text-first"][k] for k in ("em_acc", "lm_f1", "rule")}

    if main and truth is not None:
        progress("judging exposures with the simulated users")
        preds = runs[main].preds
        p_acc = np.array([truth.p_accept(s.home_id, s.time, p.actions, p.description)
                          for s, p in zip(samples, preds, strict=True)])
        conf = np.array([(p.confidence or 0.0) / p.relax if p.actions else -1.0 for p in preds])
        report["exposure_curve"] = exposure_curve(conf, p_acc)
        has = np.array([bool(p.actions) for p in preds])
        for key, th in (("gate_at_0_7", 0.7), ("gate", thresholds[main])):
            shown = np.array([_gate(p, th) for p in preds])
            report[key] = {"method": main, "threshold": th, "exposure_rate": float(shown.mean()),
                           "acceptance_rate": float(p_acc[shown].mean()) if shown.any() else float("nan"),
                           "ungated_acceptance_rate": float(p_acc[has].mean()) if has.any() else float("nan")}
        from agent.selective import ece

        report["ece"] = {"n_bins": 10, "value": float(ece(np.clip(conf[has], 0, 1), p_acc[has], n_bins=10))}
    report["failures"] = {}
    if main:
        for s, p in zip(samples, runs[main].preds, strict=True):
            kind = failure_kind(s, p)
            if kind:
                report["failures"][kind] = report["failures"].get(kind, 0) + 1
    if cfg.format == "ha":
        report["predictions"] = predictions(cfg, samples, runs, main, report["whole"], thresholds)
    report["method_seconds"] = {n: round(mr.seconds, 2) for n, mr in runs.items()}
    from training.runtime import software

    report["software"] = software()  # what the figures were computed with (they differ across machines)
    report["wall_seconds"] = round(_time.perf_counter() - t_start, 2)
    return report


def predictions(cfg: EvaluateConfig, samples: Sequence[EvalSample], runs: dict[str, MethodRun],
                main: str | None, whole: dict[str, dict], thresholds: dict[str, float] | None = None
                ) -> list[dict[str, Any]]:
    """``predictions.jsonl`` rows: per context, one method's answer (the main LM; without a run, the
    baseline with the best EM-Acc), whether the gate shows it (at the method's threshold in
    ``thresholds``, else ``cfg.threshold`` or 0.7), and the operation
    as Home Assistant service calls on the home's entities (real ids of an import, else derived)."""
    name = main or max((n for n in runs if n != "Oracle"), key=lambda n: whole[n]["em_acc"], default=None)
    if name is None:
        return []
    from agent.calibrate import resolve_threshold

    th = (thresholds or {}).get(name, resolve_threshold(cfg.threshold, None))
    return ha_rows(cfg.data, [(s.home_id, s.split, s.time, s.label, p, _gate(p, th))
                              for s, p in zip(samples, runs[name].preds, strict=True)], name)


def ha_rows(data: str | Path, decisions: Sequence[tuple[str, str, Any, Sequence[Action], Recommendation, bool]],
            method: str) -> list[dict[str, Any]]:
    """One JSON-ready row per decision ``(home_id, split, time, label, recommendation, exposed)``: the
    answer, whether it is shown, and its Home Assistant service calls on the home's entities
    (``sim.ha_export``); ``ha_error`` names why a decision has none (a home missing from the homes
    config). Shared by ``evaluate --format ha`` and ``replay --format ha``."""
    from sim.catalog import CatalogError
    from sim.dataset.files import read_homes
    from sim.ha_export import calls_json, device_map, service_calls
    from sim.records import serialize_actions

    homes = {h: device_map(spec.devices) for h, spec in read_homes(data).items()}
    out = []
    for home_id, split, t, label, p, exposed in decisions:
        try:
            calls = calls_json(service_calls(p.actions, homes.get(home_id, {})))
        except CatalogError as e:
            calls, why = [], str(e)
        else:
            why = ""
        out.append({"home_id": home_id, "split": split, "time": t.isoformat() if hasattr(t, "isoformat") else str(t),
                    "method": method, "label": serialize_actions(label), "actions": serialize_actions(p.actions),
                    "description": p.description, "confidence": p.confidence, "exposed": bool(exposed),
                    "ha_calls": calls, **({"ha_error": why} if why else {})})
    return out


def evaluate_model(data: str | Path, model_dir: str | Path, order: str = "action-first", *,
                   history_k: int = HISTORY_K, splits: Sequence[str] = ("test", "test_unseen"),
                   max_samples: int | None = 600, seed: int = 0, n_boot: int = 500) -> dict:
    """One model alone on the test contexts, reading ``history_k`` operations of history (the prompts
    rebuilt with that window): ``{em_acc, lm_f1, rule, n, ci95, history_k, seconds, distinct_per_100,
    top_answer_share, top_answer}``. The same contexts, predictor and scoring as ``evaluate``, without
    the baselines: the sensitivity studies of ``homepilot reproduce`` (Fig. 7b-d) call it once per
    model or window."""
    samples = load_samples(data, splits, max_samples, seed, history_k)
    t0 = _time.perf_counter()
    preds = lm_predictor(Path(model_dir), order, "candidates", False, history_k)(samples)
    seconds = _time.perf_counter() - t0
    whole, _ = summarize(samples, preds, np.random.default_rng(seed), n_boot)
    return {**whole, "history_k": history_k, "seconds": round(seconds, 2), **diversity(preds)}


def main(cfg: EvaluateConfig, progress: Callable[[str], None] = lambda _m: None) -> Path:
    """Evaluate and write ``report.md``, ``report.json`` and plots into ``cfg.out``."""
    from agent.report import write_report

    report = evaluate(cfg, progress)
    return write_report(report, cfg.out)

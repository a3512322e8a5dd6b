"""The paper's offline metrics (Sec. 4.1 and App. B), one implementation for every report.

Each sample is a label (the actions the user performed) and a prediction (the actions the
recommender proposed; empty = abstained). Actions are compared as sets: two lists with the same
actions in another order are the same operation (dependency order is a property of how the
operation is executed, not of which operation it is).

- ``em_acc``: share of samples whose predicted action set equals the label's.
- ``lm_f1``: micro F1 over actions with a loose one-to-one match: same home-device and either
  the same (field, value), a numeric value within 20% relative error of the label's, or a
  functionally equivalent setting per the catalogue ("Turn on bedroom AC" ~ "Set bedroom AC
  to 26"). Precision = matched / predicted actions, recall = matched / label actions, summed
  over all samples before dividing.
- ``rule``: per sample, 1 if identical; 0.9 if the label is strictly contained in the
  prediction; -0.1 if the prediction is the opposite of the label (every predicted action is the
  inverse of a label action on the same device); otherwise the share of label actions recovered
  exactly, |label & prediction| / |label| (the paper writes 1/|E|; we read it as the recovered
  share, which equals 1/|E| when one of |E| label actions is recovered); 0 when none is. Averaged.

Across seeds (``across_seeds``): the mean of a metric over independent runs (seeds), its sample
standard deviation and a 95% Student-t interval of the mean, mean +- t(0.975, n-1) std / sqrt(n).

Loose matching of one action (``sim.matching.loose_match``) needs each action's device type. By
default it is read from the device name (``light_2`` -> ``light``); pass ``types`` (a mapping
(room, device) -> type) for other names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from sim.catalog import is_inverse
from sim.matching import TypeOf, loose_match, type_resolver
from sim.records import Action

Actions = Sequence[Action]
WHOLE = "Whole"


def _loose_matches(label: Actions, pred: Actions, type_of: TypeOf) -> int:
    """Size of a one-to-one loose matching (greedy after exact pairs; lists are short)."""
    remaining = list(pred)
    matched = 0
    unmatched = []
    for lab in label:
        if lab in remaining:
            remaining.remove(lab)
            matched += 1
        else:
            unmatched.append(lab)
    for lab in unmatched:
        for i, p in enumerate(remaining):
            if loose_match(lab, p, type_of):
                del remaining[i]
                matched += 1
                break
    return matched


def is_opposite(label: Actions, pred: Actions, type_of: TypeOf | None = None) -> bool:
    """Every predicted action undoes a label action on the same device ("turn off" vs "turn on")."""
    if not pred or not label:
        return False
    type_of = type_of or type_resolver(None)
    for p in pred:
        t = type_of(p)
        if t is None or not any(
            lab.target == p.target and is_inverse(t, (p.field, p.value), (lab.field, lab.value)) for lab in label
        ):
            return False
    return True


def rule_score_one(label: Actions, pred: Actions, type_of: TypeOf | None = None) -> float:
    """Rule score of one sample (module docstring gives the branches)."""
    lab, prd = set(label), set(pred)
    if not lab:
        raise ValueError("a label needs at least one action")
    if prd == lab:
        return 1.0
    if lab < prd:
        return 0.9
    if is_opposite(label, pred, type_of):
        return -0.1
    return len(lab & prd) / len(lab)


@dataclass(frozen=True)
class SampleScores:
    """Per-sample pieces from which every aggregate (and its bootstrap) is computed."""

    exact: np.ndarray  # (n,) 1.0 / 0.0
    rule: np.ndarray  # (n,)
    matched: np.ndarray  # (n,) loose one-to-one matches
    n_pred: np.ndarray  # (n,) predicted actions
    n_label: np.ndarray  # (n,) label actions


def per_sample(labels: Sequence[Actions], predictions: Sequence[Actions],
               types: Mapping[tuple[str, str], str] | TypeOf | None = None) -> SampleScores:
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    type_of = type_resolver(types)
    exact, rule, matched, n_pred, n_label = [], [], [], [], []
    for lab, prd in zip(labels, predictions, strict=True):
        if not lab:
            raise ValueError("every label needs at least one action")
        exact.append(float(set(lab) == set(prd)))
        rule.append(rule_score_one(lab, prd, type_of))
        matched.append(_loose_matches(lab, prd, type_of))
        n_pred.append(len(prd))
        n_label.append(len(lab))
    return SampleScores(*(np.asarray(x, dtype=float) for x in (exact, rule, matched, n_pred, n_label)))


def aggregate(s: SampleScores, idx: np.ndarray | None = None) -> dict[str, float]:
    """EM-Acc, LM-F1 (micro) and Rule over the samples ``idx`` (all when None)."""
    if idx is not None:
        s = SampleScores(*(getattr(s, f)[idx] for f in ("exact", "rule", "matched", "n_pred", "n_label")))
    if len(s.exact) == 0:
        return {"em_acc": float("nan"), "lm_f1": float("nan"), "rule": float("nan")}
    m, p, lab = s.matched.sum(), s.n_pred.sum(), s.n_label.sum()
    precision = m / p if p else 0.0
    recall = m / lab if lab else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"em_acc": float(s.exact.mean()), "lm_f1": float(f1), "rule": float(s.rule.mean())}


def score(labels: Sequence[Actions], predictions: Sequence[Actions],
          types: Mapping[tuple[str, str], str] | TypeOf | None = None) -> dict[str, float]:
    """``{"em_acc", "lm_f1", "rule"}`` over lists of action lists."""
    return aggregate(per_sample(labels, predictions, types))


def bootstrap_ci(s: SampleScores, rng: np.random.Generator, n_boot: int = 1000,
                 level: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of each metric, resampling samples with replacement."""
    if n_boot < 1 or len(s.exact) == 0:
        raise ValueError(f"bootstrap needs n_boot >= 1 and at least one sample, got n_boot={n_boot}, "
                         f"{len(s.exact)} samples")
    n = len(s.exact)
    draws = {k: [] for k in ("em_acc", "lm_f1", "rule")}
    for _ in range(n_boot):
        for k, v in aggregate(s, rng.integers(0, n, n)).items():
            draws[k].append(v)
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {k: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) for k, v in draws.items()}


def paired_bootstrap(a: SampleScores, b: SampleScores, rng: np.random.Generator, n_boot: int = 1000,
                     level: float = 0.95) -> dict[str, dict[str, float]]:
    """Metric of ``a`` minus metric of ``b`` on the same samples, with a paired percentile
    bootstrap interval (each draw resamples the samples once for both methods):
    ``{metric: {diff, lo, hi}}``. An interval that excludes 0 is a difference the test set shows."""
    n = len(a.exact)
    if n_boot < 1 or n == 0 or len(b.exact) != n:
        raise ValueError(f"paired bootstrap needs n_boot >= 1 and the same non-empty samples for both methods, "
                         f"got n_boot={n_boot}, {n} and {len(b.exact)} samples")
    whole_a, whole_b = aggregate(a), aggregate(b)
    draws: dict[str, list[float]] = {k: [] for k in whole_a}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        da, db = aggregate(a, idx), aggregate(b, idx)
        for k in draws:
            draws[k].append(da[k] - db[k])
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    return {k: {"diff": whole_a[k] - whole_b[k], "lo": float(np.percentile(v, lo)), "hi": float(np.percentile(v, hi))}
            for k, v in draws.items()}


def score_by_subset(labels: Sequence[Actions], predictions: Sequence[Actions],
                    subsets: Sequence[Sequence[str]],
                    types: Mapping[tuple[str, str], str] | TypeOf | None = None) -> dict[str, dict[str, float]]:
    """Metrics per sub-dataset (device-count bucket, operated category) plus ``Whole``.

    ``subsets[i]`` lists the sub-datasets sample i belongs to (e.g. ``["11-20", "Light", "AC"]``).
    Each entry also carries ``n``, its sample count.
    """
    if len(subsets) != len(labels):
        raise ValueError(f"{len(labels)} labels but {len(subsets)} subset keys")
    s = per_sample(labels, predictions, types)
    members: dict[str, list[int]] = {}
    for i, keys in enumerate(subsets):
        for k in dict.fromkeys(keys):
            members.setdefault(k, []).append(i)
    out = {k: {**aggregate(s, np.asarray(v)), "n": len(v)} for k, v in members.items()}
    out[WHOLE] = {**aggregate(s), "n": len(labels)}
    return out


# Student t quantiles t(0.975, df) for df = 1..30 (two-sided 95%); beyond, the Cornish-Fisher
# expansion around the normal quantile (error < 1e-3 there).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959964


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom (two-sided 95% intervals)."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def across_seeds(values: Sequence[float | None]) -> dict[str, float]:
    """``{mean, std, lo, hi, n}`` of one metric over seeds: the mean, the sample standard deviation
    (ddof=1) and the 95% t-interval of the mean, mean +- t975(n-1) * std / sqrt(n). Values that are
    None or NaN (a metric a seed could not compute, e.g. the acceptance of a gate that showed
    nothing) are left out; ``n`` counts the rest. One value: std, lo and hi are NaN; none: all NaN."""
    v = np.array([float(x) for x in values if x is not None and not np.isnan(float(x))])
    nan = float("nan")
    if len(v) == 0:
        return {"mean": nan, "std": nan, "lo": nan, "hi": nan, "n": 0}
    mean = float(v.mean())
    if len(v) == 1:
        return {"mean": mean, "std": nan, "lo": nan, "hi": nan, "n": 1}
    std = float(v.std(ddof=1))
    half = t975(len(v) - 1) * std / np.sqrt(len(v))
    return {"mean": mean, "std": std, "lo": mean - half, "hi": mean + half, "n": int(len(v))}


def scores_to_json(s: SampleScores) -> dict[str, list[float]]:
    """Per-sample scores as plain lists (``agent.evaluate`` writes them to ``per_sample.json``)."""
    return {f: getattr(s, f).tolist() for f in ("exact", "rule", "matched", "n_pred", "n_label")}


def scores_from_json(d: dict[str, Sequence[float]]) -> SampleScores:
    return SampleScores(*(np.asarray(d[f], dtype=float) for f in ("exact", "rule", "matched", "n_pred", "n_label")))


def concat_scores(parts: Sequence[SampleScores]) -> SampleScores:
    """The samples of several evaluations (seeds) as one set (a pooled bootstrap draws from all of them)."""
    return SampleScores(*(np.concatenate([getattr(p, f) for p in parts])
                          for f in ("exact", "rule", "matched", "n_pred", "n_label")))

"""Confidence of a recommendation (paper Eq. 6), the exposure gate's thresholds, cascade pruning
and temperature calibration. Pure functions over probabilities.

Eq. 6, per action i with device, field and value spans::

    c_i = alpha_device * P_i(device) + alpha_field * P_i(field) + alpha_value * P_i(value)

where each P is the product of the probabilities of the sub-tokens generated inside that span
(``device`` = the ``[room][device]`` characters, ``field`` = ``[field]``, ``value`` = ``[value]``;
a token belongs to the span of its last non-space character, see ``agent.decoding``). The
recommendation's Eq. 6 score is the mean of c_i over its actions.

Fusion with the first-token probability (ours; the paper fuses the two without a formula)::

    confidence = (1 - beta) * mean_i c_i + beta * P(first decisive token)

The first decisive token is the first token of the action section at which the grammar left the
model more than one choice and which spells part of a name, not a bracket or a space (``<act>`` and
``[`` are forced or formatting; the first decisive token is usually the room);
it is the model's commitment to *which* device, the decision the paper singles out. Default
beta = 0.3 and alpha = (0.5, 0.2, 0.3): the device decides whether a recommendation is welcome at
all, the value next (a wrong temperature is rejected), the field least (it is nearly implied by
device and value). The paper leaves these as hyper-parameters; they are configurable.

Which distribution (``distribution``):
- ``raw`` (default): the model's softmax over the whole vocabulary. Mass the model puts on tokens
  the grammar forbids lowers the confidence: a model unsure of the grammar is unsure.
- ``legal``: renormalised over the tokens the grammar allowed at that step; forced tokens count 1.
  Higher, and optimistic for homes with few devices (two candidates start at 0.5 each).
The decoder records both per token, so switching needs no new decoding.

Adaptive thresholds: a threshold is multiplied by ``relax`` (0.9, "10% lower") when the candidate
pool has more than ``large_pool`` devices (probability is spread over more choices) and again
when the recommendation sets a numeric value (probability is spread over a grid); both -> 0.81x.
Only for a raw confidence: a calibrated one is gated as it is (``ConfidenceConfig.gate_relax``).

Cascade pruning: while decoding, as soon as the running product of an action's device-span
probabilities is below ``device_threshold`` (pool-adapted), decoding stops and the recommendation
is withheld. The product only falls as tokens are added, so the decision is final.

Calibration (Platt scaling): the fused confidence c is mapped to sigmoid(logit(c) / T + b), a
temperature T and a bias b fitted on a validation split by minimising the negative log-likelihood
of accept/reject (``fit_platt``); ECE (with its number of bins stated) before and after tells
whether it helped. A temperature alone cannot move the mean: a model right a quarter of the time
whose posteriors are over-confident was flattened to ~0.5 everywhere (T at its bound), so the 0.7
gate showed nothing and 0.35 showed everything; the bias centres the confidences on the accept
rate and keeps their order.

Operating point (``fit_gate``): a calibrated confidence is a probability of acceptance, and a small
model's rarely reach the paper's 0.7 (the quickstart model: none of 600 test answers), so the gate
at 0.7 shows nothing although the confidence *ranks* answers well. Beside the calibration, the
validation split gives each model an operating point: the widest top share of its answers (10%,
20%, ... 100% by confidence) whose acceptance is at least ``GATE_LIFT`` (1.2) times the average,
and the threshold that admits that share. ``threshold=None`` wherever a gate threshold is taken
means that fitted value (``agent.calibrate.gate_threshold``), else ``DEFAULT_THRESHOLD``; 0.7
keeps its meaning (70% likely to be accepted) and is always reported beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from agent.selective import ece  # the one ECE: sum over n_bins equal-width bins of (|B|/n)|acc(B) - conf(B)|

__all__ = ["AttributeProbs", "ConfidenceConfig", "DEFAULT_THRESHOLD", "GATE_LIFT", "action_confidence",
           "adaptive_threshold", "attribute_probs", "calibrate", "cascade_prunes", "ece", "eq6", "first_token_prob",
           "fit_gate", "fit_platt", "fuse", "gate"]

DISTRIBUTIONS: tuple[str, ...] = ("raw", "legal")
DEFAULT_THRESHOLD = 0.7  # the paper's exposure gate
GATE_LIFT = 1.2  # the fitted operating point: acceptance of what it shows >= this x the average
GATE_MIN_ANSWERS = 50  # fewer answered validation contexts: no operating point is fitted
_EPS = 1e-6


@dataclass(frozen=True)
class ConfidenceConfig:
    """Knobs of the confidence and the gate (see the module docstring)."""

    alpha_device: float = 0.5  # Eq. 6 weight of P(device)
    alpha_field: float = 0.2  # Eq. 6 weight of P(field)
    alpha_value: float = 0.3  # Eq. 6 weight of P(value)
    first_token_weight: float = 0.3  # beta of the fusion with the first decisive token's probability
    threshold: float = DEFAULT_THRESHOLD  # exposure gate: shown iff confidence >= (adapted) threshold
    device_threshold: float = 0.3  # cascade pruning on the running device probability; 0 = off
    large_pool: int = 10  # candidate pools with more devices get thresholds x relax
    relax: float = 0.9  # "10% lower"
    distribution: str = "raw"  # raw | legal
    temperature: float = 1.0  # calibration temperature on the fused confidence (1 = none) ...
    bias: float = 0.0  # ... and bias on its logit (0 = none): sigmoid(logit(c) / T + b)

    def __post_init__(self) -> None:
        alphas = (self.alpha_device, self.alpha_field, self.alpha_value)
        if min(alphas) < 0 or abs(sum(alphas) - 1.0) > 1e-6:
            raise ValueError(f"alpha_device, alpha_field, alpha_value must be >= 0 and sum to 1, got {alphas}")
        for name in ("first_token_weight", "threshold", "device_threshold", "relax"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if self.large_pool < 0:
            raise ValueError(f"large_pool must be >= 0, got {self.large_pool}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {self.distribution!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    @property
    def calibrated(self) -> bool:
        """A temperature or bias is set: the confidence is a calibrated acceptance probability."""
        return self.temperature != 1.0 or self.bias != 0.0

    @property
    def gate_relax(self) -> float:
        """The adaptive thresholds' factor: ``relax`` for a raw confidence, 1 for a calibrated one. The
        paper lowers the bar where raw probability spreads over many devices or a value grid; a
        calibrated confidence already says how likely acceptance is, and Platt scaling squeezes a
        small model's into a band a few hundredths wide (T up to 20), where x0.9 outweighs the
        confidence itself: on the quickstart's seed-1 model the relaxed gate's top 20-40% were accepted
        0.89-1.04x the average, the unrelaxed one's 1.15-1.20x (600 test contexts)."""
        return 1.0 if self.calibrated else self.relax


@dataclass(frozen=True)
class AttributeProbs:
    """P(device), P(field), P(value) of one action: products over each span's sub-tokens."""

    device: float
    field: float
    value: float


# ---------------------------------------------------------------- from token probabilities


def attribute_probs(steps: Iterable, distribution: str = "raw") -> list[AttributeProbs]:
    """Per-action span products from decoder steps (objects with ``span``, ``action``, ``p_raw``,
    ``p_legal``); only actions whose spans all appeared are returned, in order."""
    prod: dict[int, dict[str, float]] = {}
    for s in steps:
        if s.span == "other" or s.action < 0:
            continue
        p = s.p_legal if distribution == "legal" else s.p_raw
        spans = prod.setdefault(s.action, {})
        spans[s.span] = spans.get(s.span, 1.0) * p
    return [AttributeProbs(v["device"], v["field"], v["value"])
            for _, v in sorted(prod.items()) if {"device", "field", "value"} <= v.keys()]


def first_token_prob(steps: Iterable, distribution: str = "raw") -> float:
    """Probability of the first decisive action token: the grammar allowed more than one token and
    it spells part of a name (not a bracket or space); 1.0 if there is none."""
    for s in steps:
        if s.action >= 0 and s.span != "other" and s.decisive:
            return s.p_legal if distribution == "legal" else s.p_raw
    return 1.0


# ---------------------------------------------------------------- Eq. 6 and the fusion


def action_confidence(p: AttributeProbs, cfg: ConfidenceConfig) -> float:
    """Paper Eq. 6 for one action: alpha-weighted sum of its attribute probabilities."""
    return cfg.alpha_device * p.device + cfg.alpha_field * p.field + cfg.alpha_value * p.value


def eq6(probs: Sequence[AttributeProbs], cfg: ConfidenceConfig) -> float:
    """Paper Eq. 6 averaged over the recommendation's actions (0.0 for none)."""
    if not probs:
        return 0.0
    return float(np.mean([action_confidence(p, cfg) for p in probs]))


def fuse(eq6_score: float, first_prob: float, beta: float) -> float:
    """confidence = (1 - beta) * Eq. 6 + beta * P(first decisive token)."""
    return (1.0 - beta) * eq6_score + beta * first_prob


# ---------------------------------------------------------------- thresholds and the gate


def adaptive_threshold(base: float, n_candidates: int, numeric: bool, large_pool: int = 10,
                       relax: float = 0.9) -> float:
    """``base`` x relax if the pool has more than ``large_pool`` candidates, x relax again if numeric."""
    t = base
    if n_candidates > large_pool:
        t *= relax
    if numeric:
        t *= relax
    return t


def cascade_prunes(device_prob: float, device_threshold: float) -> bool:
    """True when decoding should stop: the (running) device probability is below its threshold."""
    return device_threshold > 0 and device_prob < device_threshold


def gate(confidence: float | None, threshold: float, relax: float = 1.0) -> bool:
    """The one exposure gate (evaluation, replay, envs and the app call it): show iff there is a
    confidence and it is >= ``threshold`` x ``relax``, where ``relax`` is the recommendation's
    adapted threshold over the base one (``adaptive_threshold``: x0.9 for large pools and numeric
    values; 1 for a recommender without adaptive thresholds)."""
    return confidence is not None and confidence >= threshold * relax


# ---------------------------------------------------------------- calibration (Platt scaling)


def calibrate(confidence, temperature: float, bias: float = 0.0) -> np.ndarray:
    """sigmoid(logit(c) / T + b), elementwise; T > 1 pulls towards 0.5, T < 1 pushes away, b shifts."""
    c = np.clip(np.asarray(confidence, dtype=float), _EPS, 1 - _EPS)
    return 1.0 / (1.0 + np.exp(-(np.log(c / (1 - c)) / temperature + bias)))


def fit_platt(confidence, accepted, max_temperature: float = 20.0, ridge: float = 1e-3) -> tuple[float, float]:
    """(T, b) minimising the NLL of ``accepted`` (0/1) under ``calibrate(c, T, b)``: a logistic
    regression of accepted on logit(c) (Newton steps, a ``ridge`` penalty for separable data), its
    slope kept >= 1 / ``max_temperature`` so that a higher confidence never calibrates lower."""
    a = np.asarray(accepted, dtype=float)
    c = np.asarray(confidence, dtype=float)
    if c.shape != a.shape or c.size == 0:
        raise ValueError(f"confidence and accepted must be non-empty and the same length, got {c.shape} and {a.shape}")
    x = np.log(np.clip(c, _EPS, 1 - _EPS) / (1 - np.clip(c, _EPS, 1 - _EPS)))
    slope, bias = _newton(np.stack([x, np.ones_like(x)], axis=1), a, ridge)
    if slope < 1.0 / max_temperature:  # keep the map increasing: fix the slope, refit the bias alone
        slope = 1.0 / max_temperature
        bias = _newton(np.ones((len(x), 1)), a, ridge, offset=slope * x)[0]
    return 1.0 / slope, bias


def fit_gate(scores, accepted, lift: float = GATE_LIFT, min_answers: int = GATE_MIN_ANSWERS) -> dict | None:
    """The operating point of a model's gate on a validation split (module docstring): ``scores`` =
    calibrated confidences (what the gate compares with its threshold), ``accepted`` 0/1. Over the top
    10%, 20%, ... 100% of answers by score, the widest share whose acceptance is >= ``lift`` x the
    average; returns ``{threshold, exposure, acceptance, ungated_acceptance, lift}`` (threshold = the
    lowest score of that share, so the gate admits it), or None when no share reaches the lift or
    there are fewer than ``min_answers`` answers (or none accepted)."""
    s = np.asarray(scores, dtype=float)
    a = np.asarray(accepted, dtype=float)
    if s.shape != a.shape:
        raise ValueError(f"scores and accepted must be the same length, got {s.shape} and {a.shape}")
    if s.size < max(1, min_answers) or a.mean() <= 0:
        return None
    order = np.argsort(-s, kind="stable")
    best = None
    for tenth in range(1, 11):
        k = int(round(tenth * s.size / 10))
        cut = s[order[k - 1]]
        shown = s >= cut  # ties at the cut are shown too: what the gate does
        if a[shown].mean() >= lift * a.mean():
            best = {"threshold": float(cut), "exposure": float(shown.mean()), "acceptance": float(a[shown].mean()),
                    "ungated_acceptance": float(a.mean()), "lift": float(a[shown].mean() / a.mean())}
    return best


def _newton(X: np.ndarray, y: np.ndarray, ridge: float, offset: np.ndarray | float = 0.0) -> np.ndarray:
    """Weights of the ridge-penalised logistic regression of y on X (plus a fixed ``offset``)."""
    w = np.zeros(X.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(X @ w + offset)))
        grad = X.T @ (p - y) / len(y) + ridge * w
        hess = (X * (p * (1 - p))[:, None]).T @ X / len(y) + ridge * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        w = w - step
        if np.abs(step).max() < 1e-10:
            break
    return w

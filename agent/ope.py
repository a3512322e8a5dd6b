"""Off-policy estimates of a target policy's acceptance rate from logged feedback.

The logged data are ``n`` decision points. At point ``i`` the logging policy pi_0 showed
operation ``a_i`` with known propensity ``p_i = pi_0(a_i | x_i)`` and the user answered
``r_i`` (1 accepted, 0 rejected). The target policy pi puts probability ``w_i * p_i`` on
``a_i``; for a deterministic recommender ``pi(a_i | x_i)`` is 1 when it would show exactly
``a_i`` and 0 otherwise. The quantity estimated is V(pi) = E_x[ r(x, pi(x)) ], the target's
acceptance rate over the given contexts (pass only the contexts the target exposes to get
acceptance among shown recommendations).

- ``replay`` (Li et al. 2011, "Unbiased offline evaluation of contextual-bandit-based news
  article recommendation algorithms"): keep the points where the target would have shown the
  logged operation, average their rewards. Unbiased when logging is uniform over the arms;
  keeps about 1/K of the points for K arms. Reports ``matched``.
- ``ips``: (1/n) sum w_i r_i, w_i = pi(a_i|x_i) / p_i. Unbiased whenever p_i > 0 on pi's support.
- ``snips``: sum w_i r_i / sum w_i (self-normalised; small bias, much lower variance).
- ``dr`` (doubly robust, Dudik et al. 2011): (1/n) sum [ q_i + w_i (r_i - rhat_i) ] where
  ``rhat_i`` is a reward model's prediction for the logged action and ``q_i`` its prediction
  for the target's action(s), E_{a~pi}[rhat(x_i, a)]. Unbiased if either the propensities or
  the reward model is right.

Every estimator is a ratio of sums, value = sum(num_i) / sum(den_i), which makes one
vectorised percentile bootstrap (resample the points with replacement) serve all four.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BOOT = 1000
DEFAULT_LEVEL = 0.95
_CHUNK = 64  # bootstrap replicates per vectorised batch: (64, n) index matrix


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval; ``matched`` only for replay."""

    value: float
    lo: float
    hi: float
    n: int  # logged points used
    matched: int | None = None  # replay: points where the target agrees with the log

    def to_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}
        if self.matched is not None:
            out["matched"] = self.matched
        return out

    def covers(self, x: float) -> bool:
        return self.lo <= x <= self.hi


def _as_1d(name: str, x, n: int | None = None) -> np.ndarray:
    a = np.asarray(x, dtype=float).reshape(-1)
    if n is not None and len(a) != n:
        raise ValueError(f"{name} has {len(a)} entries, expected {n} (one per logged point)")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


def _weights(propensity, target_prob, n: int) -> np.ndarray:
    p = _as_1d("propensity", propensity, n)
    t = _as_1d("target_prob", target_prob, n)
    if np.any(p <= 0) or np.any(p > 1):
        bad = int(np.flatnonzero((p <= 0) | (p > 1))[0])
        raise ValueError(f"propensity must lie in (0, 1]; row {bad} has {p[bad]}")
    if np.any(t < 0) or np.any(t > 1):
        raise ValueError("target_prob must lie in [0, 1]")
    return t / p


def ratio_bootstrap(num: np.ndarray, den: np.ndarray, rng: np.random.Generator, n_boot: int = DEFAULT_BOOT,
                    level: float = DEFAULT_LEVEL) -> tuple[float, float, float]:
    """(value, lo, hi) of sum(num)/sum(den) with a percentile bootstrap over points.

    A replicate whose denominator is 0 (e.g. no matched point) is dropped; with ``n_boot=0``
    or no points the interval is (nan, nan).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    n = len(num)
    d = float(den.sum())
    value = float(num.sum() / d) if n and d != 0 else float("nan")
    if n_boot <= 0 or n == 0:
        return value, float("nan"), float("nan")
    draws = []
    for start in range(0, n_boot, _CHUNK):
        idx = rng.integers(0, n, (min(_CHUNK, n_boot - start), n))  # (chunk, n)
        bn, bd = num[idx].sum(1), den[idx].sum(1)
        ok = bd != 0
        draws.append(bn[ok] / bd[ok])
    v = np.concatenate(draws)
    if len(v) == 0:
        return value, float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(v, [alpha, 1 - alpha])
    return value, float(lo), float(hi)


def replay(reward, matched, rng: np.random.Generator, n_boot: int = DEFAULT_BOOT,
           level: float = DEFAULT_LEVEL) -> Estimate:
    """Li et al. (2011) replay: mean reward over points where the target matches the log."""
    r = _as_1d("reward", reward)
    m = _as_1d("matched", matched, len(r))
    if np.any((m != 0) & (m != 1)):
        raise ValueError("matched must be 0/1 (or bool)")
    value, lo, hi = ratio_bootstrap(m * r, m, rng, n_boot, level)
    return Estimate(value, lo, hi, len(r), int(m.sum()))


def ips(reward, propensity, target_prob, rng: np.random.Generator, n_boot: int = DEFAULT_BOOT,
        level: float = DEFAULT_LEVEL) -> Estimate:
    """Inverse propensity scoring: (1/n) sum w_i r_i."""
    r = _as_1d("reward", reward)
    w = _weights(propensity, target_prob, len(r))
    return Estimate(*ratio_bootstrap(w * r, np.ones_like(r), rng, n_boot, level), len(r))


def snips(reward, propensity, target_prob, rng: np.random.Generator, n_boot: int = DEFAULT_BOOT,
          level: float = DEFAULT_LEVEL) -> Estimate:
    """Self-normalised IPS: sum w_i r_i / sum w_i."""
    r = _as_1d("reward", reward)
    w = _weights(propensity, target_prob, len(r))
    return Estimate(*ratio_bootstrap(w * r, w, rng, n_boot, level), len(r))


def dr(reward, propensity, target_prob, rhat_logged, rhat_target, rng: np.random.Generator,
       n_boot: int = DEFAULT_BOOT, level: float = DEFAULT_LEVEL) -> Estimate:
    """Doubly robust: (1/n) sum [ rhat_target_i + w_i (r_i - rhat_logged_i) ].

    ``rhat_logged``: the reward model at the logged action; ``rhat_target``: its expectation
    under the target policy at the same context (for a deterministic target, at its action).
    """
    r = _as_1d("reward", reward)
    w = _weights(propensity, target_prob, len(r))
    q = _as_1d("rhat_target", rhat_target, len(r))
    rl = _as_1d("rhat_logged", rhat_logged, len(r))
    return Estimate(*ratio_bootstrap(q + w * (r - rl), np.ones_like(r), rng, n_boot, level), len(r))


def estimate_all(reward, propensity, target_prob, rhat_logged, rhat_target, rng: np.random.Generator,
                 n_boot: int = DEFAULT_BOOT, level: float = DEFAULT_LEVEL) -> dict[str, Estimate]:
    """All four estimators on the same points; replay matches where ``target_prob > 0``.

    Each estimator draws its bootstrap from its own child generator so that adding or
    dropping one does not change the others' intervals.
    """
    t = _as_1d("target_prob", target_prob)
    seeds = rng.spawn(4)
    return {
        "replay": replay(reward, (t > 0).astype(float), seeds[0], n_boot, level),
        "ips": ips(reward, propensity, t, seeds[1], n_boot, level),
        "snips": snips(reward, propensity, t, seeds[2], n_boot, level),
        "dr": dr(reward, propensity, t, rhat_logged, rhat_target, seeds[3], n_boot, level),
    }

"""Selective-prediction metrics of the exposure gate: what is shown, how often it is accepted.

Every decision point has a recommendation with a ``confidence``; the gate shows it when
confidence >= threshold (``exposed``); the user accepts or rejects what is shown.

- ``exposure_rate`` (coverage) = shown / decision points.
- ``acceptance_rate`` = accepted / shown; selective risk = 1 - acceptance.
- ``device_coverage`` = distinct home-devices that received an exposed recommendation and were
  operated / distinct home-devices operated (bounded by 1; a device recommended but never
  operated does not count).
- ``cumulative_reward``: sum of +1 accepted, -penalty rejected, 0 abstained.
- ``risk_coverage_curve``: sort points by confidence (highest first); at k = 1..N the risk of
  the top k (1 - their acceptance) against coverage k/N. ``aurc`` = mean risk over the curve
  (Geifman & El-Yaniv 2017). Ties in confidence are broken by input order (stable sort).
- ``ece`` = sum over M equal-width confidence bins of (|B|/n) |acceptance(B) - confidence(B)|;
  the report always states M (``n_bins``). Bins are [0, 1/M), ..., [(M-1)/M, 1].
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Device = tuple[str, str, str]  # (home_id, room, device)


def _bool(name: str, x) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype != bool:
        if not np.all(np.isin(a, (0, 1))):
            raise ValueError(f"{name} must be 0/1 or bool")
        a = a.astype(bool)
    return a.reshape(-1)


def _conf(confidence) -> np.ndarray:
    c = np.asarray(confidence, dtype=float).reshape(-1)
    if np.any(~np.isfinite(c)) or np.any(c < 0) or np.any(c > 1):
        raise ValueError("confidence must lie in [0, 1]")
    return c


def exposure_rate(exposed) -> float:
    e = _bool("exposed", exposed)
    return float(e.mean()) if len(e) else float("nan")


def acceptance_rate(accepted, exposed) -> float:
    """accepted / shown; nan when nothing was shown. ``accepted`` counts only where exposed."""
    a, e = _bool("accepted", accepted), _bool("exposed", exposed)
    if len(a) != len(e):
        raise ValueError(f"accepted has {len(a)} entries but exposed has {len(e)}")
    return float((a & e).sum() / e.sum()) if e.any() else float("nan")


def device_coverage(exposed_devices: Iterable[Device], operated_devices: Iterable[Device]) -> float:
    """|exposed & operated| / |operated| over distinct (home, room, device); nan if none operated."""
    operated = set(operated_devices)
    if not operated:
        return float("nan")
    return len(set(exposed_devices) & operated) / len(operated)


def cumulative_reward(accepted, exposed, penalty: float = 1.0) -> float:
    """+1 per accepted, -penalty per rejected shown recommendation, 0 per abstention."""
    if penalty < 0:
        raise ValueError(f"penalty must be >= 0, got {penalty}")
    a, e = _bool("accepted", accepted), _bool("exposed", exposed)
    return float((a & e).sum() - penalty * (~a & e).sum())


def risk_coverage_curve(confidence, accepted) -> tuple[np.ndarray, np.ndarray]:
    """(coverage, risk), each (N,): coverage k/N and the risk of the k most confident points."""
    c, a = _conf(confidence), _bool("accepted", accepted)
    if len(c) != len(a):
        raise ValueError(f"confidence has {len(c)} entries but accepted has {len(a)}")
    order = np.argsort(-c, kind="stable")
    k = np.arange(1, len(c) + 1)
    risk = 1.0 - np.cumsum(a[order]) / k
    return k / len(c), risk


def aurc(confidence, accepted) -> float:
    """Area under the risk-coverage curve (mean selective risk over k = 1..N); lower is better."""
    _, risk = risk_coverage_curve(confidence, accepted)
    return float(risk.mean()) if len(risk) else float("nan")


def ece(confidence, accepted, n_bins: int = 10) -> float:
    """Expected calibration error over ``n_bins`` equal-width bins.

    ``accepted`` is 0/1 answers, or true acceptance probabilities in [0, 1] (calibration
    against the acceptance model rather than sampled answers).
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    c, a = _conf(confidence), np.asarray(accepted, dtype=float).reshape(-1)
    if np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a > 1):
        raise ValueError("accepted must be 0/1 or probabilities in [0, 1]")
    if len(c) != len(a):
        raise ValueError(f"confidence has {len(c)} entries but accepted has {len(a)}")
    if len(c) == 0:
        return float("nan")
    b = np.minimum((c * n_bins).astype(int), n_bins - 1)  # (n,) bin index; 1.0 falls in the last bin
    n = np.bincount(b, minlength=n_bins)
    gap = np.abs(np.bincount(b, a, n_bins) - np.bincount(b, c, n_bins))  # |sum acc - sum conf| per bin
    return float(gap.sum() / len(c)) if n.sum() else float("nan")


def selective_report(confidence, exposed, accepted, exposed_devices: Iterable[Device] = (),
                     operated_devices: Iterable[Device] = (), penalty: float = 1.0,
                     n_bins: int = 10) -> dict[str, float | int]:
    """Every metric above in one dict (the replay report's ``selective`` block).

    ``confidence``/``accepted`` are per decision point; the risk-coverage curve, AURC and ECE
    are computed over all points (what the gate could show), acceptance over exposed ones.
    """
    return {
        "n": int(len(_bool("exposed", exposed))),
        "shown": int(_bool("exposed", exposed).sum()),
        "acceptance_rate": acceptance_rate(accepted, exposed),
        "exposure_rate": exposure_rate(exposed),
        "device_coverage": device_coverage(exposed_devices, operated_devices),
        "cumulative_reward": cumulative_reward(accepted, exposed, penalty),
        "aurc": aurc(confidence, accepted),
        "ece": ece(confidence, accepted, n_bins),
        "n_bins": n_bins,
    }

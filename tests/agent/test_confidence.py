"""Paper Eq. 6, the fusion, adaptive thresholds, cascade, gate and calibration, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from agent import selective
from agent.confidence import (
    AttributeProbs,
    ConfidenceConfig,
    action_confidence,
    adaptive_threshold,
    attribute_probs,
    calibrate,
    cascade_prunes,
    ece,
    eq6,
    first_token_prob,
    fit_platt,
    fuse,
    gate,
)
from agent.decoding import TokenStep


def _step(span, action, p_raw, p_legal, n_allowed=2, decisive=None):
    return TokenStep(0, span, action, p_raw, p_legal, n_allowed, n_allowed > 1 if decisive is None else decisive)


# two actions; action 0's device span has two sub-tokens, its field a forced bracket and a choice
STEPS = [
    _step("other", -1, 0.9, 1.0, 1),  # <act>
    _step("device", 0, 0.8, 0.95, 3, decisive=False),  # "[" vs " " choice: formatting, not decisive
    _step("device", 0, 0.5, 0.6, 4),  # room (first decisive token)
    _step("device", 0, 0.9, 1.0, 1),  # "]" forced
    _step("field", 0, 0.7, 0.8, 3),
    _step("value", 0, 0.4, 0.5, 2),
    _step("device", 1, 0.6, 0.75, 4),
    _step("field", 1, 1.0, 1.0, 1),
    _step("value", 1, 0.25, 0.5, 10),
    _step("other", -1, 0.3, 0.4, 5),  # description
]


def test_attribute_probs_are_products_over_each_span():
    raw = attribute_probs(STEPS, "raw")
    assert raw[0] == AttributeProbs(pytest.approx(0.8 * 0.5 * 0.9), pytest.approx(0.7), pytest.approx(0.4))
    assert raw[1] == AttributeProbs(pytest.approx(0.6), pytest.approx(1.0), pytest.approx(0.25))
    legal = attribute_probs(STEPS, "legal")
    assert legal[0] == AttributeProbs(pytest.approx(0.95 * 0.6 * 1.0), pytest.approx(0.8), pytest.approx(0.5))
    assert attribute_probs(STEPS[:5], "raw") == []  # action 0 has no value yet: incomplete actions are left out


def test_first_token_prob_skips_forced_and_formatting_tokens():
    assert first_token_prob(STEPS, "raw") == 0.5
    assert first_token_prob(STEPS, "legal") == 0.6
    assert first_token_prob([_step("device", 0, 0.3, 1.0, 1)], "raw") == 1.0  # nothing decisive


def test_eq6_by_hand():
    cfg = ConfidenceConfig()  # alpha = (0.5, 0.2, 0.3)
    p0 = AttributeProbs(0.36, 0.7, 0.4)
    assert action_confidence(p0, cfg) == pytest.approx(0.5 * 0.36 + 0.2 * 0.7 + 0.3 * 0.4)  # 0.44
    p1 = AttributeProbs(0.6, 1.0, 0.25)
    assert action_confidence(p1, cfg) == pytest.approx(0.3 + 0.2 + 0.075)  # 0.575
    assert eq6([p0, p1], cfg) == pytest.approx((0.44 + 0.575) / 2)  # 0.5075
    assert eq6([], cfg) == 0.0
    other = ConfidenceConfig(alpha_device=1.0, alpha_field=0.0, alpha_value=0.0)
    assert eq6([p0, p1], other) == pytest.approx(0.48)


def test_fusion_by_hand():
    assert fuse(0.5075, 0.5, 0.3) == pytest.approx(0.7 * 0.5075 + 0.3 * 0.5)  # 0.50525
    assert fuse(0.8, 0.1, 0.0) == 0.8
    assert fuse(0.8, 0.1, 1.0) == 0.1


def test_adaptive_threshold_is_10_percent_lower_for_large_pools_and_numeric_values():
    assert adaptive_threshold(0.7, 10, False) == pytest.approx(0.7)  # 10 is not above the pool size
    assert adaptive_threshold(0.7, 11, False) == pytest.approx(0.63)
    assert adaptive_threshold(0.7, 3, True) == pytest.approx(0.63)
    assert adaptive_threshold(0.7, 11, True) == pytest.approx(0.567)
    assert adaptive_threshold(0.5, 5, False, large_pool=4, relax=0.8) == pytest.approx(0.4)


def test_a_calibrated_confidence_is_gated_without_the_relaxation():
    """The relaxation is for raw probabilities; a calibrated confidence (any temperature or bias) is an
    acceptance probability and meets its threshold as it is."""
    from agent.confidence import ConfidenceConfig

    assert ConfidenceConfig().gate_relax == 0.9 and not ConfidenceConfig().calibrated
    assert ConfidenceConfig(temperature=7.0).gate_relax == 1.0
    assert ConfidenceConfig(bias=-1.2).gate_relax == 1.0
    assert ConfidenceConfig(relax=0.8).gate_relax == 0.8


def test_cascade_and_gate_boundaries():
    assert cascade_prunes(0.29, 0.3) and not cascade_prunes(0.3, 0.3)
    assert not cascade_prunes(0.0, 0.0)  # threshold 0 = cascade off
    assert gate(0.7, 0.7) and not gate(0.6999, 0.7)


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="sum to 1"):
        ConfidenceConfig(alpha_device=0.5, alpha_field=0.5, alpha_value=0.5)
    with pytest.raises(ValueError, match="distribution must be one of raw, legal"):
        ConfidenceConfig(distribution="softmax")
    with pytest.raises(ValueError, match="threshold must be in"):
        ConfidenceConfig(threshold=1.5)
    with pytest.raises(ValueError, match="temperature"):
        ConfidenceConfig(temperature=0.0)


def test_ece_is_the_shared_one_and_worked_by_hand():
    assert ece is selective.ece
    conf = np.array([0.15, 0.15, 0.85, 0.85])
    acc = np.array([0, 1, 1, 1])
    # bins of 0.1: bin 1 holds 0.15 twice (acceptance 0.5), bin 8 holds 0.85 twice (acceptance 1)
    assert ece(conf, acc, n_bins=10) == pytest.approx(0.5 * 0.35 + 0.5 * 0.15)


def test_platt_calibration_recovers_a_stretched_and_shifted_map():
    rng = np.random.default_rng(0)
    true_p = rng.uniform(0.05, 0.6, 6000)
    accepted = rng.random(6000) < true_p
    # over-confident and too high: logits stretched 2.5x and shifted up by 1
    skewed = calibrate(true_p, 0.4, 1.0)
    assert calibrate(0.5, 3.0) == pytest.approx(0.5) and calibrate(0.5, 1.0, 1.0) == pytest.approx(1 / (1 + np.exp(-1)))
    t, b = fit_platt(skewed, accepted)
    assert 2.0 < t < 3.2 and -0.6 < b < -0.2  # the inverse map: T = 2.5, b = -1 / 2.5 = -0.4
    assert ece(calibrate(skewed, t, b), accepted) < 0.3 * ece(skewed, accepted)
    # a temperature alone cannot fix the shift: the best T leaves a larger ECE than (T, b)
    def nll(x):
        q = np.clip(calibrate(skewed, x), 1e-9, 1 - 1e-9)
        return -np.mean(accepted * np.log(q) + (1 - accepted) * np.log(1 - q))

    t_only = min(np.geomspace(0.05, 20, 241), key=nll)
    assert ece(calibrate(skewed, t, b), accepted) < ece(calibrate(skewed, t_only), accepted)
    # confidences that carry no information: slope at its floor (T = 20), the bias gives the base rate
    t, b = fit_platt(rng.uniform(0.4, 0.9, 2000), rng.random(2000) < 0.25)
    assert t == pytest.approx(20.0) and calibrate(0.65, t, b) == pytest.approx(0.25, abs=0.03)
    with pytest.raises(ValueError, match="same length"):
        fit_platt([0.5, 0.6], [1])

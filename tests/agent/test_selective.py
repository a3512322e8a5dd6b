"""Selective-prediction metrics: hand-worked cases from their definitions."""

import numpy as np
import pytest

from agent.selective import (
    acceptance_rate,
    aurc,
    cumulative_reward,
    device_coverage,
    ece,
    exposure_rate,
    risk_coverage_curve,
    selective_report,
)


def test_acceptance_exposure_reward():
    exposed = [1, 1, 0, 1, 0]
    accepted = [1, 0, 0, 1, 0]
    assert exposure_rate(exposed) == pytest.approx(0.6)
    assert acceptance_rate(accepted, exposed) == pytest.approx(2 / 3)
    assert cumulative_reward(accepted, exposed) == 1.0  # 2 accepted - 1 rejected
    assert cumulative_reward(accepted, exposed, penalty=0.5) == 1.5
    assert np.isnan(acceptance_rate([0, 0], [0, 0]))
    # an "accepted" flag on a point that was not shown does not count
    assert acceptance_rate([1, 1], [1, 0]) == 1.0 and cumulative_reward([0, 1], [1, 0]) == -1.0


def test_device_coverage_counts_operated_devices_only():
    operated = [("h1", "bedroom", "light"), ("h1", "bedroom", "ac"), ("h2", "bedroom", "light")]
    exposed = [("h1", "bedroom", "light"), ("h1", "bedroom", "light"), ("h1", "kitchen", "kettle")]
    assert device_coverage(exposed, operated) == pytest.approx(1 / 3)
    assert np.isnan(device_coverage(exposed, []))


def test_risk_coverage_and_aurc_hand_worked():
    conf = [0.9, 0.2, 0.8, 0.5]
    acc = [1, 0, 0, 1]
    cov, risk = risk_coverage_curve(conf, acc)
    # order 0.9(1), 0.8(0), 0.5(1), 0.2(0): risks 0, 1/2, 1/3, 1/2
    assert cov.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert risk == pytest.approx([0, 0.5, 1 / 3, 0.5])
    assert aurc(conf, acc) == pytest.approx((0 + 0.5 + 1 / 3 + 0.5) / 4)
    # a perfect ranking has lower AURC than the reversed one
    assert aurc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) < aurc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0])


def test_ece_hand_worked():
    # bins of width 0.5: {0.2, 0.4} acc {0, 1}: |1 - 0.6| = 0.4; {0.9, 1.0} acc {1, 1}: |2 - 1.9| = 0.1
    assert ece([0.2, 0.4, 0.9, 1.0], [0, 1, 1, 1], n_bins=2) == pytest.approx(0.5 / 4)
    assert ece([0.7, 0.7], [1, 0], n_bins=10) == pytest.approx(0.2)
    assert ece([1.0], [1], n_bins=10) == 0.0  # confidence 1.0 falls in the last bin
    rng = np.random.default_rng(0)
    c = rng.random(20000)
    assert ece(c, rng.random(20000) < c) < 0.02  # calibrated by construction
    assert ece(c, c) == pytest.approx(0.0)  # probabilities as outcomes: perfectly calibrated
    assert ece([0.9, 0.9], [0.5, 0.7], n_bins=10) == pytest.approx(0.3)


def test_bad_input_named():
    with pytest.raises(ValueError, match="confidence"):
        ece([1.2], [1])
    with pytest.raises(ValueError, match="accepted must be"):
        ece([0.5], [2])
    with pytest.raises(ValueError, match="n_bins"):
        ece([0.5], [1], n_bins=0)
    with pytest.raises(ValueError, match="exposed"):
        exposure_rate([2, 0])
    with pytest.raises(ValueError, match="penalty"):
        cumulative_reward([1], [1], penalty=-1)


def test_report_states_bins():
    r = selective_report([0.9, 0.1], [1, 0], [1, 0], [("h", "r", "d")], [("h", "r", "d")], n_bins=5)
    assert r["n_bins"] == 5 and r["acceptance_rate"] == 1.0 and r["device_coverage"] == 1.0
    assert r["shown"] == 1 and r["n"] == 2 and r["cumulative_reward"] == 1.0

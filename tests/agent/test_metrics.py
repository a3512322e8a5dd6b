"""Hand-worked cases for every branch of EM-Acc, LM-F1 and the Rule score (paper Sec. 4.1, App. B)."""

import numpy as np
import pytest

from agent.metrics import bootstrap_ci, paired_bootstrap, per_sample, rule_score_one, score, score_by_subset
from sim.matching import loose_match
from sim.records import Action


def A(room, device, field, value):
    return Action(room, device, field, value)


AC_ON = A("bedroom", "ac", "power", "on")
AC_26 = A("bedroom", "ac", "target_temperature", "26")
AC_24 = A("bedroom", "ac", "target_temperature", "24")
AC_28 = A("bedroom", "ac", "target_temperature", "28")
AC_20 = A("bedroom", "ac", "target_temperature", "20")
AC_OFF = A("bedroom", "ac", "power", "off")
LIGHT_ON = A("living_room", "light", "power", "on")
LIGHT_50 = A("living_room", "light", "brightness", "50")
LIGHT_OFF = A("living_room", "light", "power", "off")
PLUG_ON = A("bedroom", "smart_plug", "power", "on")
CURTAIN_OPEN = A("bedroom", "curtain", "action", "open")
CURTAIN_100 = A("bedroom", "curtain", "position", "100")


def test_paper_app_b_loose_matches():
    assert loose_match(AC_ON, AC_26)  # "Turn on bedroom AC" ~ "Set bedroom AC to 26"
    assert loose_match(AC_26, AC_ON)
    assert loose_match(LIGHT_ON, LIGHT_50)  # "Activate living room light" ~ "brightness 50"
    assert loose_match(AC_28, AC_24) and loose_match(AC_24, AC_28)  # within 20%
    assert not loose_match(AC_26, AC_20)  # 20 vs 26: 23% off
    assert loose_match(CURTAIN_OPEN, CURTAIN_100)
    assert not loose_match(AC_ON, AC_OFF)
    # another device never matches, however equal the setting
    assert not loose_match(AC_ON, A("living_room", "ac", "power", "on"))


def test_rule_branches():
    assert rule_score_one([AC_ON], [AC_ON]) == 1.0  # identical
    assert rule_score_one([PLUG_ON, AC_ON], [AC_ON, PLUG_ON]) == 1.0  # order-free
    assert rule_score_one([AC_ON], [AC_ON, PLUG_ON]) == 0.9  # label strictly contained
    assert rule_score_one([AC_ON, PLUG_ON, AC_26], [AC_ON]) == pytest.approx(1 / 3)  # one of |E|=3
    assert rule_score_one([AC_ON, PLUG_ON], [AC_ON, LIGHT_ON]) == 0.5  # partial overlap
    assert rule_score_one([AC_ON], [AC_OFF]) == -0.1  # opposite
    assert rule_score_one([LIGHT_50], [LIGHT_OFF]) == -0.1  # brightness 50 undone by off
    assert rule_score_one([AC_ON], [LIGHT_ON]) == 0.0  # otherwise
    assert rule_score_one([AC_ON], []) == 0.0  # abstained
    assert rule_score_one([AC_ON], [AC_26]) == 0.0  # rule is exact; equivalence is LM-F1's business


def test_em_acc_and_lm_f1_micro_by_hand():
    labels = [[AC_ON], [LIGHT_ON], [PLUG_ON, AC_ON], [AC_26]]
    preds = [[AC_ON], [LIGHT_50], [AC_ON], [AC_20]]
    # EM: only sample 0 -> 1/4
    # loose matches: 1 + 1 + 1 + 0 = 3; predicted actions 4, label actions 5
    # P = 3/4, R = 3/5, F1 = 2PR/(P+R) = 0.9/1.35 = 2/3
    s = score(labels, preds)
    assert s["em_acc"] == pytest.approx(0.25)
    assert s["lm_f1"] == pytest.approx(2 / 3)
    # rule: 1 + 0 + 0.5 + 0 = 1.5 / 4
    assert s["rule"] == pytest.approx(0.375)


def test_loose_matching_is_one_to_one():
    # one predicted "AC on" cannot match two label actions of the AC
    s = per_sample([[AC_ON, AC_26]], [[AC_ON]])
    assert s.matched[0] == 1
    # exact pairs are taken first: label [AC_ON, AC_26] vs pred [AC_26, AC_ON] -> 2 matches
    assert per_sample([[AC_ON, AC_26]], [[AC_26, AC_ON]]).matched[0] == 2


def test_abstentions_lower_recall_not_precision():
    s = score([[AC_ON], [LIGHT_ON]], [[AC_ON], []])
    # P = 1/1, R = 1/2 -> F1 = 2/3
    assert s["lm_f1"] == pytest.approx(2 / 3)
    assert s["em_acc"] == 0.5


def test_types_mapping_for_non_simulator_device_names():
    lamp_on = A("study", "desk_lamp", "power", "on")
    lamp_40 = A("study", "desk_lamp", "brightness", "40")
    assert score([[lamp_on]], [[lamp_40]])["lm_f1"] == 0.0  # unknown type: no loose match
    assert score([[lamp_on]], [[lamp_40]], types={("study", "desk_lamp"): "light"})["lm_f1"] == 1.0


def test_score_by_subset_breaks_down_and_counts():
    labels = [[AC_ON], [LIGHT_ON], [AC_26]]
    preds = [[AC_ON], [LIGHT_OFF], [AC_26]]
    subsets = [["1-5", "AC"], ["6-10", "Light"], ["1-5", "AC"]]
    out = score_by_subset(labels, preds, subsets)
    assert out["AC"]["em_acc"] == 1.0 and out["AC"]["n"] == 2
    assert out["Light"]["em_acc"] == 0.0 and out["Light"]["rule"] == pytest.approx(-0.1)
    assert out["Whole"]["n"] == 3 and out["Whole"]["em_acc"] == pytest.approx(2 / 3)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        score([[AC_ON], [AC_ON]], [[AC_ON]])
    with pytest.raises(ValueError, match="at least one action"):
        score([[]], [[AC_ON]])


def test_bootstrap_interval_contains_the_point_estimate():
    rng = np.random.default_rng(0)
    labels = [[AC_ON]] * 50 + [[LIGHT_ON]] * 50
    preds = [[AC_ON]] * 60 + [[LIGHT_OFF]] * 40
    s = per_sample(labels, preds)
    ci = bootstrap_ci(s, rng, n_boot=300)
    point = score(labels, preds)
    for k, (lo, hi) in ci.items():
        assert lo <= point[k] <= hi and hi - lo < 0.4, k
    with pytest.raises(ValueError, match="n_boot >= 1"):
        bootstrap_ci(s, rng, n_boot=0)


def test_paired_bootstrap_by_hand():
    """A is right on 60 of 100 contexts, B on the same 50 of them and no other: A - B = +0.10 EM-Acc,
    and every paired draw is >= 0 (B is never right where A is wrong), so the interval is >= 0."""
    labels = [[AC_ON]] * 100
    a = per_sample(labels, [[AC_ON]] * 60 + [[AC_OFF]] * 40)
    b = per_sample(labels, [[AC_ON]] * 50 + [[AC_OFF]] * 50)
    d = paired_bootstrap(a, b, np.random.default_rng(0), n_boot=300)
    assert d["em_acc"]["diff"] == pytest.approx(0.10)
    assert 0 <= d["em_acc"]["lo"] <= 0.10 <= d["em_acc"]["hi"] < 0.25
    assert paired_bootstrap(a, a, np.random.default_rng(0), n_boot=50)["rule"] == {"diff": 0.0, "lo": 0.0, "hi": 0.0}
    with pytest.raises(ValueError, match="same non-empty samples"):
        paired_bootstrap(a, per_sample(labels[:10], [[AC_ON]] * 10), np.random.default_rng(0))

"""Combining per-seed reports (``homepilot reproduce``), worked by hand: mean, standard deviation and
the t-interval over seeds, paired differences per seed and pooled, the goal verdicts and the files."""

from __future__ import annotations

import json
import math

import pytest

from agent.metrics import across_seeds, t975
from agent.report import combine_reports, render_reproduce_markdown, write_reproduce_report

BASELINES = ("Frequency", "CGC", "GBDT", "Random")


def test_across_seeds_by_hand():
    s = across_seeds([0.1, 0.2, 0.3])
    half = 4.303 * 0.1 / math.sqrt(3)  # t(0.975, 2) * std / sqrt(n)
    assert s["mean"] == pytest.approx(0.2) and s["std"] == pytest.approx(0.1) and s["n"] == 3
    assert (s["lo"], s["hi"]) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    s = across_seeds([0.5, None, float("nan"), 0.7])  # a seed without the number is left out
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(math.sqrt(0.02))
    assert s["hi"] - s["mean"] == pytest.approx(12.706 * math.sqrt(0.02) / math.sqrt(2))
    one = across_seeds([0.4])
    assert one["mean"] == 0.4 and one["n"] == 1 and math.isnan(one["std"]) and math.isnan(one["lo"])
    assert across_seeds([None])["n"] == 0 and math.isnan(across_seeds([])["mean"])
    assert t975(2) == 4.303 and t975(1000) == pytest.approx(1.962, abs=1e-3)


def m(em: float, f1: float, rule: float, n: int = 4) -> dict:
    return {"em_acc": em, "lm_f1": f1, "rule": rule, "n": n, "ci95": {"em_acc": [0.0, 1.0]}}


def seed_report(gbdt: dict, main: dict, ft: dict, ptft: dict, acc_at_1: float | None) -> dict:
    whole = {"Frequency": m(0.1, 0.2, 0.15), "GBDT": gbdt, "FT": ft, "PT+FT": ptft, "PT+FT+DPO": main}
    return {
        "whole": whole, "main_method": "PT+FT+DPO", "n_samples": 4,
        "by_subset": {k: {"Whole": v, "1-5": v} for k, v in whole.items()},
        "ablation": {k: {"ungated": whole[k], "gated": {**whole[k], "exposure_rate": 0.5}} for k in ("FT", "PT+FT", "PT+FT+DPO")},
        "order": {"action-first": main, "text-first": ft},
        "exposure_curve": [{"threshold": 0.0, "exposure_rate": 1.0, "acceptance_rate": 0.3},
                           {"threshold": 1.0, "exposure_rate": 0.0, "acceptance_rate": acc_at_1}],
        "gate_at_0_7": {"method": "PT+FT+DPO", "threshold": 0.7, "exposure_rate": 0.2, "acceptance_rate": acc_at_1,
                        "ungated_acceptance_rate": 0.3},
        "counts": {"Whole": 4, "1-5": 4},
    }


def scores(exact: list[int]) -> dict:
    """Per-sample scores of single-action labels: exact = rule = matched, one predicted action each."""
    return {"exact": exact, "rule": exact, "matched": exact, "n_pred": [1] * len(exact), "n_label": [1] * len(exact)}


@pytest.fixture()
def combined():
    reports = {
        0: seed_report(gbdt=m(0.5, 0.5, 0.5), main=m(0.75, 0.8, 0.6), ft=m(0.1, 0.2, 0.2), ptft=m(0.2, 0.3, 0.3),
                       acc_at_1=0.9),
        1: seed_report(gbdt=m(0.0, 0.4, 0.3), main=m(0.5, 0.2, 0.4), ft=m(0.3, 0.1, 0.1), ptft=m(0.2, 0.3, 0.3),
                       acc_at_1=None),  # nothing shown at threshold 1: no acceptance rate that seed
    }
    per = {0: {"PT+FT+DPO": scores([1, 0, 1, 1]), "GBDT": scores([0, 0, 1, 1])},
           1: {"PT+FT+DPO": scores([0, 1]), "GBDT": scores([0, 0])}}
    return combine_reports(reports, per, BASELINES, n_boot=200, seed=0)


def test_combined_numbers_by_hand(combined):
    w = combined["whole"]
    assert combined["seeds"] == [0, 1] and set(w) == {"Frequency", "GBDT", "FT", "PT+FT", "PT+FT+DPO"}
    em = w["PT+FT+DPO"]["em_acc"]
    assert em["mean"] == pytest.approx(0.625) and em["std"] == pytest.approx(0.25 / math.sqrt(2)) and em["n"] == 2
    assert em["hi"] == pytest.approx(0.625 + 12.706 * (0.25 / math.sqrt(2)) / math.sqrt(2))
    assert set(w["GBDT"]) == {"em_acc", "lm_f1", "rule"}  # no per-seed bootstrap interval averaged
    assert combined["by_subset"]["GBDT"]["1-5"]["em_acc"]["mean"] == pytest.approx(0.25)
    assert combined["ablation"]["FT"]["gated"]["exposure_rate"]["mean"] == 0.5
    assert combined["order"]["text-first"]["em_acc"]["mean"] == pytest.approx(0.2)
    acc = combined["exposure_curve"][1]["acceptance_rate"]
    assert acc["n"] == 1 and acc["mean"] == 0.9  # the seed without a number is left out
    assert combined["gate_at_0_7"]["method"] == "PT+FT+DPO" and combined["counts"] == {"Whole": 8, "1-5": 8}


def test_paired_differences_per_seed_and_pooled(combined):
    pd = combined["paired_diff_vs_best_baseline"]
    assert (pd["method"], pd["baseline"]) == ("PT+FT+DPO", "GBDT")  # GBDT has the best mean EM-Acc (0.25)
    assert pd["per_seed"]["0"]["em_acc"]["diff"] == pytest.approx(0.25)
    assert pd["per_seed"]["1"]["em_acc"]["diff"] == pytest.approx(0.5)
    pooled = pd["pooled"]["em_acc"]
    assert pooled["diff"] == pytest.approx(4 / 6 - 2 / 6)  # all six contexts as one set
    assert pooled["lo"] <= pooled["diff"] <= pooled["hi"] and pooled["lo"] >= 0.0  # main never worse on a context
    assert combined["paired_diff_vs_gbdt"] == pd


def test_goal_verdicts_follow_the_numbers(combined):
    g = combined["goal"]
    # PT+FT+DPO vs GBDT means: EM 0.625 vs 0.25, LM-F1 0.5 vs 0.45, Rule 0.5 vs 0.4: higher on all three
    assert g["beats_gbdt"]["met"] is True
    assert g["beats_gbdt"]["metrics"]["lm_f1"]["GBDT"] == pytest.approx(0.45)
    # FT < PT+FT < PT+FT+DPO: EM 0.2 < 0.2 fails (not strictly higher); LM-F1 0.15 < 0.3 < 0.5 holds
    o = g["ablation_order"]
    assert o["metrics"]["em_acc"]["holds"] is False and o["metrics"]["lm_f1"]["holds"] is True and o["met"] is False
    md = render_reproduce_markdown({**combined, "sensitivity": {}})
    assert "beats GBDT on EM-Acc, LM-F1 and Rule (mean over seeds): **met**" in md
    assert "FT < PT+FT < PT+FT+DPO in the mean over seeds, on every metric: **not met**" in md
    assert "0.625 ± 0.177" in md and "pooled over seeds: EM-Acc +0.333" in md


def test_goal_not_evaluated_without_the_methods():
    one = {0: {"whole": {"Frequency": m(0.1, 0.2, 0.3)}, "main_method": None}}
    r = combine_reports(one, {}, BASELINES)
    assert r["goal"]["beats_gbdt"]["met"] is None and "paired_diff_vs_best_baseline" not in r
    assert "**not evaluated**" in render_reproduce_markdown(r)


def test_reproduce_report_files(combined, tmp_path):
    sens = {"seed": 0, "model_size": {"rows": [{"preset": "tiny", "n_parameters": 900000, **m(0.2, 0.3, 0.25)},
                                               {"preset": "small", "n_parameters": 5000000, **m(0.3, 0.4, 0.35)}],
                                      "skipped": {"base": "no GPU"}},
            "context_length": {"rows": [{"history_k": 4, **m(0.2, 0.3, 0.3)}, {"history_k": 8, **m(0.25, 0.3, 0.3)}]},
            "history_length": {"rows": [{"history_k": k, **m(0.1 * k / 8, 0.3, 0.3)} for k in (2, 4, 8, 16)]}}
    path = write_reproduce_report({**combined, "sensitivity": sens, "wall_seconds": 12.5}, tmp_path / "rep")
    md = path.read_text()
    assert "Fig. 7b shape" in md and "base: skipped (no GPU)" in md and "| 16 |" in md
    data = json.loads((tmp_path / "rep" / "report.json").read_text())  # strict JSON: NaN written as null
    assert data["whole"]["FT"]["em_acc"]["mean"] == pytest.approx(0.2)
    assert data["exposure_curve"][1]["acceptance_rate"]["std"] is None
    for f in ("whole.png", "exposure_curve.png", "model_size.png", "context_length.png", "history_length.png"):
        assert (tmp_path / "rep" / f).stat().st_size > 1000, f

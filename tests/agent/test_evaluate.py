"""The evaluation job's pieces: failure categories, exposure curve, legality, run naming, report files."""

import json
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from agent.evaluate import (
    EvalSample,
    EvaluateConfig,
    exposure_curve,
    failure_kind,
    legal_rate,
    load_samples,
    run_history_k,
    run_variants,
    summarize,
)
from agent.policy import Recommendation
from agent.report import render_markdown, write_report
from sim.prompts import HISTORY_K
from sim.records import Action, Prompt

AC_ON = Action("bedroom", "ac", "power", "on")
AC_OFF = Action("bedroom", "ac", "power", "off")
AC_26 = Action("bedroom", "ac", "target_temperature", "26")
AC_COOL = Action("bedroom", "ac", "mode", "cool")
PLUG_ON = Action("bedroom", "smart_plug", "power", "on")
LIGHT_ON = Action("bedroom", "light", "power", "on")
TYPES = {("bedroom", "ac"): "ac", ("bedroom", "smart_plug"): "smart_plug", ("bedroom", "light"): "light"}


def sample(label, subsets=("1-5", "AC")):
    t = datetime(2026, 1, 5, 8, 0)
    return EvalSample("h00000", "test", "u0", t, "", Prompt((), t, (), tuple(TYPES)), tuple(label), subsets, TYPES)


@pytest.mark.parametrize("label, pred, kind", [
    ([AC_ON], [AC_ON], None),
    ([AC_ON], [], "abstained"),
    ([PLUG_ON, AC_ON], [AC_ON], "missed part of a bundle"),
    ([AC_ON], [PLUG_ON, AC_ON], "extra actions"),
    ([AC_ON], [AC_OFF], "opposite of the user's action"),
    ([AC_ON], [LIGHT_ON], "wrong device"),
    ([AC_26], [AC_COOL], "right device, wrong field"),
    ([AC_26], [Action("bedroom", "ac", "target_temperature", "24")], "right field, wrong value"),
])
def test_failure_categories(label, pred, kind):
    assert failure_kind(sample(label), Recommendation(tuple(pred))) == kind


def test_exposure_curve_by_hand():
    conf = np.array([0.9, 0.8, 0.3, -1.0])  # -1: nothing decoded, never shown
    p = np.array([1.0, 0.5, 0.0, 0.0])
    curve = {c["threshold"]: c for c in exposure_curve(conf, p, thresholds=(0.0, 0.5, 0.85, 0.95))}
    assert curve[0.0]["exposure_rate"] == 0.75 and curve[0.0]["acceptance_rate"] == pytest.approx(0.5)
    assert curve[0.5]["exposure_rate"] == 0.5 and curve[0.5]["acceptance_rate"] == pytest.approx(0.75)
    assert curve[0.85]["acceptance_rate"] == 1.0
    assert curve[0.95]["exposure_rate"] == 0.0 and np.isnan(curve[0.95]["acceptance_rate"])


def test_legal_rate_ignores_abstentions_and_catches_illegal_values():
    samples = [sample([AC_ON])] * 3
    preds = [Recommendation((AC_ON,)), Recommendation(()), Recommendation((Action("bedroom", "ac", "target_temperature", "99"),))]
    assert legal_rate(samples, preds) == 0.5


def test_summarize_whole_has_interval_and_count():
    samples = [sample([AC_ON]), sample([LIGHT_ON], ("1-5", "Light"))]
    whole, by = summarize(samples, [Recommendation((AC_26,)), Recommendation((LIGHT_ON,))], np.random.default_rng(0), 50)
    assert whole["n"] == 2 and whole["em_acc"] == 0.5 and whole["lm_f1"] == 1.0  # AC 26 ~ AC on
    assert by["AC"]["em_acc"] == 0.0 and by["Light"]["em_acc"] == 1.0
    lo, hi = whole["ci95"]["em_acc"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0
    # the gated rows of the ablation summarise without an interval (n_boot=0)
    whole, _ = summarize(samples, [Recommendation((AC_26,)), Recommendation((LIGHT_ON,))], np.random.default_rng(0), 0)
    assert "ci95" not in whole and whole["em_acc"] == 0.5


def test_run_variants_name_the_ablation(tmp_path):
    run = tmp_path / "main"
    (run / "pretrain" / "final").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"order": "action-first", "stages_run": ["pretrain", "sft", "dpo"]}))
    assert [n for n, _, _ in run_variants(run)] == ["Base LM", "PT+FT", "PT+FT+DPO"]
    ft = tmp_path / "ft"
    ft.mkdir()
    (ft / "config.json").write_text(json.dumps({"order": "action-first", "stages_run": ["sft"]}))
    assert [n for n, _, _ in run_variants(ft)] == ["FT"]
    tf = tmp_path / "tf"
    tf.mkdir()
    (tf / "config.json").write_text(json.dumps({"order": "text-first", "stages_run": ["sft", "dpo"]}))
    assert run_variants(tf) == [("text-first", tf / "model", "text-first")]
    with pytest.raises(FileNotFoundError, match="not a training run"):
        run_variants(tmp_path)


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a dataset directory"):
        EvaluateConfig(data=tmp_path, runs=[], out=tmp_path / "r")
    (tmp_path / "data").mkdir()
    with pytest.raises(ValueError, match="threshold"):
        EvaluateConfig(data=tmp_path, runs=[], out=tmp_path / "r", threshold=1.5)
    with pytest.raises(ValueError, match="unknown baselines"):
        EvaluateConfig(data=tmp_path, runs=[], out=tmp_path / "r", baselines=("Magic",))


def test_report_renders_every_section(tmp_path):
    m = {"em_acc": 0.5, "lm_f1": 0.6, "rule": 0.55, "n": 10, "ci95": {"em_acc": [0.2, 0.8]}}
    report = {
        "whole": {"Frequency": m, "PT+FT+DPO": m},
        "by_subset": {"Frequency": {"1-5": m, "Light": m, "Whole": m}, "PT+FT+DPO": {"1-5": m, "Whole": m}},
        "gain": {"Whole": {"em_acc": 0.1, "lm_f1": 0.0, "rule": -0.05}},
        "ablation": {"FT": {"ungated": m, "gated": {**m, "exposure_rate": 0.4}}},
        "order": {"action-first": m, "text-first": m},
        "exposure_curve": [{"threshold": 0.0, "exposure_rate": 1.0, "acceptance_rate": 0.3},
                           {"threshold": 1.0, "exposure_rate": 0.1, "acceptance_rate": 0.9}],
        "gate_at_0_7": {"exposure_rate": 0.5, "acceptance_rate": 0.6, "ungated_acceptance_rate": 0.4},
        "latency_ms": {"Frequency": {"p50": 1.0, "p95": 2.0}}, "legal_rate": {"Frequency": 1.0},
        "failures": {"wrong device": 3}, "counts": {"1-5": 10, "Light": 10, "Whole": 10}, "wall_seconds": 1.0,
        "paired_diff_vs_best_baseline": {"method": "PT+FT+DPO", "baseline": "Frequency",
                                         **{k: {"diff": 0.05, "lo": -0.01, "hi": 0.11} for k in ("em_acc", "lm_f1", "rule")}},
    }
    md = render_markdown(report)
    for heading in ("Table 2 shape", "Table 3 shape", "Table 4 shape", "Fig. 7a shape", "Failure breakdown",
                    "| Gain |", "+10.0%", "[0.200, 0.800]", "wrong device: 3",
                    "minus the best baseline (Frequency)", "EM-Acc +0.050 [-0.010, +0.110]"):
        assert heading in md
    path = write_report(report, tmp_path / "rep")
    assert path.read_text() == md
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["whole"]["Frequency"]["em_acc"] == 0.5
    assert (tmp_path / "rep" / "exposure_curve.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "whole.png").stat().st_size > 1000


def test_test_prompts_rebuilt_with_another_history_window(tiny_preset_dataset):
    stored = load_samples(tiny_preset_dataset, max_samples=40, seed=1)
    same = load_samples(tiny_preset_dataset, max_samples=40, seed=1, history_k=HISTORY_K)
    assert [s.prompt_text for s in same] == [s.prompt_text for s in stored]  # its own window: the stored prompt
    long = load_samples(tiny_preset_dataset, max_samples=40, seed=1, history_k=16)
    short = load_samples(tiny_preset_dataset, max_samples=40, seed=1, history_k=2)
    assert max(len(s.prompt.history) for s in long) == 16 and max(len(s.prompt.history) for s in stored) == HISTORY_K
    for a, lg, sh in zip(stored, long, short, strict=True):
        assert (a.home_id, a.time, a.label) == (lg.home_id, lg.time, lg.label) == (sh.home_id, sh.time, sh.label)
        assert lg.prompt.history[len(lg.prompt.history) - len(a.prompt.history):] == a.prompt.history
        assert len(lg.prompt.history) >= len(a.prompt.history)
        assert sh.prompt.history == a.prompt.history[-2:]
        assert replace(lg.prompt, history=()) == replace(a.prompt, history=()) == replace(sh.prompt, history=())


def test_run_history_k_is_the_trained_window(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"order": "action-first", "history_k": None}))
    assert run_history_k(tmp_path) == HISTORY_K
    (tmp_path / "config.json").write_text(json.dumps({"order": "action-first", "history_k": 4}))
    assert run_history_k(tmp_path) == 4


def test_report_files_are_readable_like_any_written_file(tmp_path):
    """atomic_write_text goes through mkstemp (owner-only) but leaves the file as open(..., 'w') would."""
    from agent.report import atomic_write_text

    atomic_write_text(tmp_path / "r.json", "{}")
    plain = tmp_path / "plain.json"
    plain.write_text("{}")
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777

"""One tiny end-to-end quickstart with the ablations: generate -> 3 training runs -> evaluate -> every
report section; then the default one (the main run only) on the same folder.

Runs shrunk through ``train_overrides`` (a few optimizer steps each): this pins the plumbing and
the report's contents, not model quality (that is the quickstart preset's job, see README).
"""

import json
import math

import pytest
import transformers

from app.quickstart import QuickstartConfig, run

TINY_TRAIN = dict(sft_min_steps=0, pretrain_tokens=6_000, sft_max_rows=24, dpo_max_rows=8, sft_batch_size=8, dpo_batch_size=4,
                  save_steps=1000, logging_steps=1)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("qs")
    steps: list[str] = []
    result = run(QuickstartConfig(out=out, data_preset="tiny", workers=1, max_samples=16,
                                  train_overrides=TINY_TRAIN, ablations=True), steps.append)
    return out, result, steps


def test_quickstart_runs_every_step_and_writes_the_report(quick):
    out, result, steps = quick
    top = [s for s in steps if not s.startswith("evaluate:")]
    assert top == ["generate", "train PT+FT+DPO", "train FT only", "train text-first", "evaluate"]
    report = json.loads((out / "report" / "report.json").read_text())
    for key in ("whole", "by_subset", "ablation", "order", "exposure_curve", "gate_at_0_7", "wall_seconds",
                "legal_rate", "latency_ms", "counts", "seeds", "failures", "gain", "paired_diff_vs_best_baseline"):
        assert key in report, key
    assert set(report["whole"]) == {"Frequency", "Usual", "CGC", "GBDT", "Random", "Base LM", "FT", "PT+FT", "PT+FT+DPO",
                                    "text-first", "Oracle"}
    assert set(report["diversity"]) == set(report["whole"]) and set(report["by_split"]) <= {"test", "test_unseen"}
    assert "gate" in report and set(report["search"]) == {"candidates", "greedy", "beam"}
    assert report["software"]["transformers"] == transformers.__version__
    assert f"transformers {transformers.__version__}" in (out / "report" / "report.md").read_text()
    assert set(report["ablation"]) == {"FT", "PT+FT", "PT+FT+DPO"}
    assert set(report["order"]) == {"action-first", "text-first"}
    for name in ("Base LM", "FT", "PT+FT", "PT+FT+DPO", "text-first", "Random", "CGC", "GBDT"):
        rate = report["legal_rate"][name]  # NaN when the method abstained everywhere
        assert math.isnan(rate) or rate == 1.0, name
    pd = report["paired_diff_vs_best_baseline"]
    assert pd["method"] == "PT+FT+DPO" and pd["baseline"] in {"Frequency", "Usual", "CGC", "GBDT", "Random"}
    assert -1 <= pd["em_acc"]["lo"] <= pd["em_acc"]["hi"] <= 1
    g = report["gate_at_0_7"]
    assert 0.0 <= g["exposure_rate"] <= 1.0 and 0.0 <= g["ungated_acceptance_rate"] <= 1.0
    assert [p["threshold"] for p in report["exposure_curve"]][0] == 0.0
    exposure = [p["exposure_rate"] for p in report["exposure_curve"]]
    assert exposure == sorted(exposure, reverse=True)  # a higher threshold never shows more
    for f in ("report.md", "exposure_curve.png", "whole.png"):
        assert (out / "report" / f).stat().st_size > 500, f
    md = (out / "report" / "report.md").read_text()
    assert "Table 2 shape" in md and "PT+FT+DPO" in md


def test_oracle_is_the_ceiling(quick):
    _, result, _ = quick
    whole = result["report_dict"]["whole"]
    for name, m in whole.items():
        assert whole["Oracle"]["em_acc"] >= m["em_acc"], name


def test_rerun_resumes_every_step(quick):
    out, first, _ = quick
    logs = {r: (out / "runs" / r / "metrics.jsonl").read_text() for r in ("main", "ft_only", "text_first")}
    report_bytes = (out / "report" / "report.json").read_bytes()
    steps: list[str] = []
    again = run(QuickstartConfig(out=out, data_preset="tiny", workers=1, max_samples=16, train_overrides=TINY_TRAIN,
                                 ablations=True), steps.append)
    # nothing run again: no step announced, no new training steps logged, the report left as it was
    assert steps == [] and again["resumed"] == ["generate", "train PT+FT+DPO", "train FT only", "train text-first",
                                                "evaluate"]
    assert {r: (out / "runs" / r / "metrics.jsonl").read_text() for r in logs} == logs
    assert (out / "report" / "report.json").read_bytes() == report_bytes
    assert again["report_dict"] == first["report_dict"] and again["seconds"] == first["seconds"]


def test_changed_evaluation_options_rerun_only_the_evaluation(quick):
    out, first, _ = quick
    steps: list[str] = []
    again = run(QuickstartConfig(out=out, data_preset="tiny", workers=1, max_samples=8, train_overrides=TINY_TRAIN,
                                 compare_searches=False, ablations=True), steps.append)
    assert [s for s in steps if not s.startswith("evaluate:")] == ["evaluate"]
    assert again["report_dict"]["n_samples"] == 8 and first["report_dict"]["n_samples"] == 16


def test_default_quickstart_trains_the_main_run_only(quick):
    """Without the ablations: the main run is the one trained (here resumed: the same model), the
    evaluation is made again without the FT-only and text-first rows, and the report says how to
    get them."""
    out, first, _ = quick
    steps: list[str] = []
    again = run(QuickstartConfig(out=out, data_preset="tiny", workers=1, max_samples=16, train_overrides=TINY_TRAIN),
                steps.append)
    assert [s for s in steps if not s.startswith("evaluate:")] == ["evaluate"]
    assert again["resumed"] == ["generate", "train PT+FT+DPO"]
    report = again["report_dict"]
    assert set(report["whole"]) == {"Frequency", "Usual", "CGC", "GBDT", "Random", "Base LM", "PT+FT", "PT+FT+DPO",
                                    "Oracle"}
    assert set(report["ablation"]) == {"PT+FT", "PT+FT+DPO"} and report["order"] == {}
    # the main run is the same model: its answers do not depend on which other runs were evaluated
    for m in ("em_acc", "lm_f1", "rule"):
        assert report["whole"]["PT+FT+DPO"][m] == first["report_dict"]["whole"]["PT+FT+DPO"][m], m
    md = (out / "report" / "report.md").read_text()
    assert "no text-first run was evaluated" in md and "--ablations" in md

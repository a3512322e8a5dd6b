"""benchmarks/lm_scaling.py: the larger dataset holds the evaluation's test contexts, a failed
configuration is recorded without losing the others, and mismatched baseline rows are refused."""

from __future__ import annotations

import json

import pytest

from sim.dataset.files import read_rows
from tests.agent.conftest import load_benchmark


@pytest.fixture(scope="module")
def lm_scaling():
    return load_benchmark("lm_scaling")


def test_the_larger_dataset_holds_the_test_contexts(lm_scaling, tiny_preset_dataset, tmp_path):
    out = lm_scaling.more_data(tiny_preset_dataset, tmp_path / "more", homes=8)
    small_train = read_rows(tiny_preset_dataset, "sft", "train", columns=["home_id"])
    big_train = read_rows(out, "sft", "train", columns=["home_id"])
    assert len({r["home_id"] for r in big_train}) > len({r["home_id"] for r in small_train})
    mine = {r["prompt"] for r in read_rows(tiny_preset_dataset, "sft", "test", columns=["prompt"])}
    assert mine and mine <= {r["prompt"] for r in read_rows(out, "sft", "test", columns=["prompt"])}
    with pytest.raises(ValueError, match="--more-homes 3 is fewer than the 6 homes"):
        lm_scaling.more_data(tiny_preset_dataset, tmp_path / "fewer", homes=3)


def test_a_failed_configuration_is_recorded_and_the_rest_run(lm_scaling, tmp_path, monkeypatch):
    row = {"preset": "small", "n_parameters": 5_000_000, "train_seconds": 12.0, "last_loss": {"sft": 0.5},
           "PT+FT": {"em_acc": 0.25, "lm_f1": 0.3, "rule": 0.27, "n": 600, "ci95": {"em_acc": [0.22, 0.29]},
                     "distinct_per_100": 9.0, "top_answer_share": 0.125, "top_answer": "[a][light][power][on]"}}

    def fake(name, *a):
        if name == "base-lora":
            raise RuntimeError("CUDA out of memory")
        return row

    monkeypatch.setattr(lm_scaling, "run_config", fake)
    args = lm_scaling.parse(["--data", str(tmp_path), "--out", str(tmp_path / "res"), "--configs", "base-lora,small-lora"])
    res = lm_scaling.main(args)
    assert "CUDA out of memory" in res["configs"]["base-lora"]["error"]
    assert res["configs"]["small-lora"] == row
    saved = json.loads((tmp_path / "res" / "lm_scaling.json").read_text())
    assert saved["configs"]["small-lora"]["PT+FT"]["em_acc"] == 0.25
    md = (tmp_path / "res" / "lm_scaling.md").read_text()
    assert "| base-lora | – | failed: RuntimeError: CUDA out of memory |" in md
    assert "| small-lora PT+FT | 5.0M | 0.250 [0.220, 0.290] | 0.300 | 0.270 | 9.0 | 0.12 | 12 |" in md


def test_unknown_configurations_and_mismatched_baselines_are_refused(lm_scaling, tmp_path):
    with pytest.raises(SystemExit, match="unknown configuration.* huge; known: base-lora"):
        lm_scaling.main(lm_scaling.parse(["--data", str(tmp_path), "--configs", "huge"]))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"n_samples": 200, "seeds": {"evaluation": 1, "dataset": 1}, "whole": {}}))
    with pytest.raises(ValueError, match="scored 200 contexts"):
        lm_scaling.baselines(report, seed=0, max_samples=600)
    report.write_text(json.dumps({"n_samples": 600, "seeds": {"evaluation": 0, "dataset": 0}, "whole": {
        "Frequency": {"em_acc": 0.22, "lm_f1": 0.27, "rule": 0.23, "n": 600}, "Random": {"em_acc": 0.0}}}))
    assert lm_scaling.baselines(report, seed=0, max_samples=600) == {
        "Frequency": {"em_acc": 0.22, "lm_f1": 0.27, "rule": 0.23}}


def test_a_tiny_configuration_trains_and_scores_end_to_end(lm_scaling, tiny_preset_dataset, tmp_path, monkeypatch):
    tiny = {"sft_min_steps": 2, "sft_max_rows": 8, "pretrain_tokens": 2000, "dpo_max_rows": 4}
    monkeypatch.setitem(lm_scaling.CONFIGS, "tiny-test", ("tiny", tiny, ("pretrain", "sft", "dpo"), False))
    args = lm_scaling.parse(["--data", str(tiny_preset_dataset), "--out", str(tmp_path / "res"), "--work",
                             str(tmp_path / "work"), "--configs", "tiny-test", "--max-samples", "12"])
    row = lm_scaling.main(args)["configs"]["tiny-test"]
    assert "error" not in row, row.get("error")
    assert row["preset"] == "tiny" and row["n_parameters"] > 100_000
    assert set(row["last_loss"]) == {"pretrain", "sft", "dpo"}
    for label in ("PT+FT+DPO", "PT+FT"):
        assert row[label]["n"] == 12 and 0.0 <= row[label]["em_acc"] <= 1.0
    md = (tmp_path / "res" / "lm_scaling.md").read_text()
    assert "| tiny-test PT+FT+DPO |" in md and "| tiny-test PT+FT |" in md

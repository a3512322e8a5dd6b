"""The GBDT reranker on a subset of its features (``GBDTConfig.features``) and
benchmarks/gbdt_features.py end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agent.baselines.gbdt import FEATURE_GROUPS, FEATURES, GBDTConfig, contexts_from_rows, fit_matrix, training_matrix
from sim.candidates import context_from_row, read_sft_rows
from sim.prompts import USUAL_N
from tests.agent.conftest import load_benchmark


def test_the_feature_groups_split_every_feature_once():
    grouped = [f for fs in FEATURE_GROUPS.values() for f in fs]
    assert sorted(grouped) == sorted(FEATURES) and len(grouped) == len(set(grouped))


def test_a_reranker_fitted_on_some_features_reads_only_them(tiny_sft_dataset):
    from agent.baselines.gbdt import features

    m = training_matrix(contexts_from_rows(read_sft_rows(tiny_sft_dataset, "train")))
    rr = fit_matrix(m, GBDTConfig(seed=0, num_boost_round=30, valid_days=0, min_data_in_leaf=5,
                                  features=("usual_rank", "noop_share")))
    assert rr.columns == [FEATURES.index("usual_rank"), FEATURES.index("noop_share")]
    assert set(rr.importance()) == {"usual_rank", "noop_share"}
    rank, noop = FEATURES.index("usual_rank"), FEATURES.index("noop_share")
    seen_tie = False
    for row in read_sft_rows(tiny_sft_dataset, "test"):
        prompt, types = context_from_row(row)
        cands, p = rr.scores(prompt, types)
        x = features(prompt, types, cands)
        for i in range(len(cands)):  # candidates alike on the two features score alike, whatever the rest
            for j in range(i):
                if x[i, rank] == x[j, rank] and x[i, noop] == x[j, noop]:
                    seen_tie |= x[i, rank] == USUAL_N and not np.array_equal(x[i], x[j], equal_nan=True)
                    assert p[i] == p[j]
    assert seen_tie  # the check compared candidates that differ elsewhere
    with pytest.raises(ValueError, match="unknown feature.*'no_such'"):
        fit_matrix(m, GBDTConfig(features=("usual_rank", "no_such")))
    with pytest.raises(ValueError, match="empty"):
        fit_matrix(m, GBDTConfig(features=()))


def test_the_benchmark_fits_each_variant_and_every_feature_is_the_evaluations_gbdt(tiny_preset_dataset, tmp_path):
    from agent.evaluate import gbdt_predictor, load_samples
    from agent.metrics import score

    gf = load_benchmark("gbdt_features")
    q = tmp_path / "q"
    (q / "report").mkdir(parents=True)
    (q / "data").symlink_to(tiny_preset_dataset, target_is_directory=True)
    (q / "report" / "report.json").write_text(json.dumps({"seeds": {"evaluation": 0}, "n_samples": 20,
                                                          "whole": {"GBDT": {"em_acc": 0.5}}}))
    res = gf.main(["--out", str(tmp_path / "res"), "--quickstart", str(q)])
    s = res["studies"][0]
    names = list(FEATURE_GROUPS)
    assert list(s["variants"]) == [names[0], *(f"+ {g}" for g in names[1:]), *(f"all but {g}" for g in names[1:])]
    assert s["variants"]["+ environment"]["n_features"] == len(FEATURES)
    samples = load_samples(q / "data", max_samples=20, seed=0)
    every = score([x.label for x in samples], [r.actions for r in gbdt_predictor(q / "data", 0)(samples)])["em_acc"]
    assert s["variants"]["+ environment"]["em_acc"] == every
    assert s["report"] == {"GBDT": 0.5}
    md = (tmp_path / "res" / "gbdt_features.md").read_text()
    assert "| + environment |" in md and "| report: GBDT | 0.500 | 0.500 |" in md
    (tmp_path / "unfinished" / "data").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="report.json is missing"):
        gf.study(tmp_path / "unfinished")

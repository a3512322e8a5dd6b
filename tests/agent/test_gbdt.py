"""The gradient-boosted reranker: learns a time-of-day routine from prompt-only features, answers
legal plausible sets, is deterministic for a seed, and its features are what the prompt shows."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from agent.baselines.gbdt import FEATURES, GBDTConfig, features, train_gbdt
from agent.baselines.random_legal import RandomLegalBaseline
from agent.metrics import score
from sim.candidates import context_from_row, is_legal_action, label_from_row, plausible_sets, read_sft_rows
from sim.prompts import prompt_text
from sim.records import Action, Operation, parse_prompt


@pytest.fixture(scope="module")
def trained(tiny_sft_dataset):
    return train_gbdt(tiny_sft_dataset, GBDTConfig(seed=0, num_boost_round=60, min_data_in_leaf=5))


def test_gbdt_learns_the_routine_and_beats_random(trained, tiny_sft_dataset):
    rows = read_sft_rows(tiny_sft_dataset, "test")
    contexts, labels = [context_from_row(r) for r in rows], [label_from_row(r) for r in rows]
    preds = trained.predict_batch(contexts)
    gbdt = score(labels, [p.actions for p in preds])
    rand = score(labels, RandomLegalBaseline(seed=0).predict_batch(contexts))
    assert gbdt["em_acc"] >= 0.7, gbdt
    assert gbdt["em_acc"] > rand["em_acc"] + 0.4
    for (prompt, types), p in zip(contexts, preds, strict=True):
        assert all(is_legal_action(a, prompt, types) for a in p.actions)
        assert 0.0 <= p.confidence <= 1.0
    assert set(trained.importance()) == set(FEATURES)


def test_gbdt_is_deterministic(tiny_sft_dataset):
    cfg = GBDTConfig(seed=3, num_boost_round=20, min_data_in_leaf=5)
    a, b = train_gbdt(tiny_sft_dataset, cfg), train_gbdt(tiny_sft_dataset, cfg)
    rows = read_sft_rows(tiny_sft_dataset, "test")
    ctx = [context_from_row(r) for r in rows]
    pa, pb = a.predict_batch(ctx), b.predict_batch(ctx)
    assert [(p.actions, p.confidence) for p in pa] == [(p.actions, p.confidence) for p in pb]


def test_features_are_read_from_the_prompt_by_hand():
    t0 = datetime(2026, 3, 2, 7, 0)
    types = {("bedroom", "light"): "light", ("kitchen", "kettle"): "kettle"}
    hist = (Operation(t0, (Action("bedroom", "light", "power", "on"),)),
            Operation(t0.replace(minute=10), (Action("kitchen", "kettle", "power", "on"),)))
    p = parse_prompt(prompt_text(hist, t0.replace(minute=30), (), tuple(types)))
    cands = plausible_sets(p, types)
    x = features(p, types, cands)
    assert x.shape == (len(cands), len(FEATURES))
    col = {f: i for i, f in enumerate(FEATURES)}
    k = cands.index((Action("kitchen", "kettle", "power", "off"),))
    assert x[k, col["undoes_latest"]] == 1.0  # the kettle was just switched on
    assert x[k, col["same_device_as_latest"]] == 1.0
    assert x[k, col["min_since_latest"]] == 20.0 and x[k, col["min_since_device"]] == 20.0
    assert x[k, col["noop_share"]] == 0.0 and x[k, col["state_known"]] == 1.0
    assert x[k, col["hour"]] == 7 and x[k, col["weekday"]] == 0
    assert np.isnan(x[k, col["room_temperature"]])  # the prompt shows no reading


def test_rank_orders_every_candidate_and_drops_what_is_in_place(trained, tiny_sft_dataset):
    prompt, types = context_from_row(read_sft_rows(tiny_sft_dataset, "test")[0])
    ranked = trained.rank(prompt, types)
    cands, p = trained.scores(prompt, types)
    assert len(ranked) == len(cands) and {r.actions for r in ranked} == set(cands)
    assert [r.confidence for r in ranked] == sorted((r.confidence for r in ranked), reverse=True)
    assert sum(r.confidence for r in ranked) == pytest.approx(1.0)
    (best,) = trained.predict_batch([(prompt, types)])
    assert (ranked[0].actions, ranked[0].confidence) == (best.actions, pytest.approx(best.confidence))
    # with the devices' true state, the set already in place is never ranked
    top = ranked[0].actions
    from sim.catalog import effects

    current = {a.target: dict(effects(types[a.target], a.field, a.value)) for a in top}  # what it asserts holds
    again = trained.rank(prompt, types, current)
    assert top not in [r.actions for r in again] and len(again) < len(ranked)
    assert sum(r.confidence for r in again) == pytest.approx(1.0)


def test_train_gbdt_simulated_learns_from_other_homes_and_is_deterministic():
    from agent.baselines.gbdt import SIMULATED_FIRST_INDEX, log_contexts, train_gbdt_simulated
    from sim.world import SimConfig, simulate_home

    cfg = GBDTConfig(seed=0, num_boost_round=40)
    done: list[int] = []
    a = train_gbdt_simulated(0, homes=3, days=5, cfg=cfg, progress=done.append)
    b = train_gbdt_simulated(0, homes=3, days=5, cfg=cfg)
    assert done == [1, 2, 3]
    home = log_contexts(simulate_home(SimConfig(seed=0, days=5), 0))  # a home it never saw (index 0)
    assert home and SIMULATED_FIRST_INDEX > 0
    ctx = [(p, t) for p, t, _ in home]
    pa, pb = a.predict_batch(ctx), b.predict_batch(ctx)
    assert [(p.actions, p.confidence) for p in pa] == [(p.actions, p.confidence) for p in pb]
    labels = [label for *_, label in home]
    rand = score(labels, RandomLegalBaseline(seed=0).predict_batch(ctx))["em_acc"]
    assert score(labels, [p.actions for p in pa])["em_acc"] > rand + 0.1
    with pytest.raises(ValueError, match="homes >= 1"):
        train_gbdt_simulated(0, homes=0)


def test_the_number_of_rounds_is_chosen_on_the_last_training_days(tiny_sft_dataset):
    from datetime import timedelta

    from agent.baselines.gbdt import contexts_from_rows, fit_matrix, training_matrix

    m = training_matrix(contexts_from_rows(read_sft_rows(tiny_sft_dataset, "train")))
    held = m.held_out(2)
    last = max(m.times)
    by_context = [t > last - timedelta(days=2) for t in m.times]
    assert 0 < sum(by_context) < len(by_context)
    assert held.sum() == sum(n for n, h in zip(m.sizes, by_context, strict=True) if h) and len(held) == len(m.y)
    assert not m.held_out(0).any()
    stopped = fit_matrix(m, GBDTConfig(seed=0, num_boost_round=400, early_stopping_rounds=10, min_data_in_leaf=5))
    assert 0 < stopped.booster.best_iteration < 400  # MAP@1 on the held-out days stopped it
    fixed = fit_matrix(m, GBDTConfig(seed=0, num_boost_round=30, valid_days=0, min_data_in_leaf=5))
    assert fixed.booster.best_iteration == 0 and fixed.booster.current_iteration() == 30

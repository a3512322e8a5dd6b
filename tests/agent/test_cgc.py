"""The CGC baseline: config checks, masking over legal candidates, learning a time-of-day routine,
determinism, save/load without pickle, and errors that name bad input."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest
import torch
from safetensors.torch import load_file

from agent.baselines.cgc import CGCConfig, CGCModel
from agent.baselines.cgc_train import train_cgc
from agent.baselines.random_legal import RandomLegalBaseline
from agent.metrics import score
from sim.candidates import context_from_row, is_legal_action, label_from_row, read_sft_rows
from sim.catalog import CatalogError
from sim.dataset.files import DatasetError
from sim.records import Action, Prompt

from .conftest import ROUTINE_DEVICES, routine_splits, write_sft_dataset

FAST = CGCConfig(epochs=40, min_steps=0, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def trained(tiny_sft_dataset) -> CGCModel:
    return train_cgc(tiny_sft_dataset, FAST)


@pytest.fixture(scope="module")
def test_set(tiny_sft_dataset):
    rows = read_sft_rows(tiny_sft_dataset, "test")
    return [context_from_row(r) for r in rows], [label_from_row(r) for r in rows]


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(d_model=30, n_heads=4), dict(dropout=1.0), dict(lr=0.0),
                                 dict(label_actions="some"),
                                 dict(device_threshold=1.5), dict(val_fraction=0.5), dict(max_rows=0),
                                 dict(n_task_experts=-1), dict(min_steps=-1)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad)) if "d_model" not in bad else "divisible"):
        CGCConfig(**bad)


def test_cgc_learns_time_of_day_routine_and_beats_random(trained, test_set):
    contexts, labels = test_set
    preds = trained.predict_batch(contexts)
    cgc = score(labels, [p.actions for p in preds])
    rand = score(labels, RandomLegalBaseline(seed=0).predict_batch(contexts))
    assert cgc["em_acc"] >= 0.8, cgc  # 5 routine slots a day, one a 2-action bundle
    assert cgc["em_acc"] > rand["em_acc"] + 0.5, (cgc, rand)
    assert cgc["lm_f1"] > rand["lm_f1"] and cgc["rule"] > rand["rule"]
    for (prompt, types), p in zip(contexts, preds, strict=True):
        assert all(is_legal_action(a, prompt, types) for a in p.actions)
        assert 0.0 < p.confidence <= 1.0
    assert trained.stats["skipped_label_devices"] == 0 and trained.stats["examples"] > trained.stats["rows"]
    # the 20:00 plug + AC bundle needs the tuned device threshold
    assert trained.config.device_threshold is not None
    bundles = [(lab, p) for lab, p in zip(labels, preds, strict=True) if len({a.target for a in lab}) == 2]
    assert bundles and sum(set(lab) == set(p.actions) for lab, p in bundles) >= 0.5 * len(bundles)


def test_prediction_follows_time_of_day_with_empty_history(trained):
    types = {(r, d): t for r, d, t in ROUTINE_DEVICES}
    def at(h: int, m: int) -> Action:
        prompt = Prompt(history=(), time=datetime(2026, 4, 1, h, m), environment=(), devices=tuple(types))
        return trained.predict(prompt, types).actions[0]
    assert at(7, 5) == Action("bedroom", "curtain", "action", "open")
    assert at(22, 0) == Action("bathroom", "bath_warmer", "power", "on")


def test_task_distributions_are_masked_to_legal_candidates(trained, test_set):
    contexts, _ = test_set
    feats = trained.featurize(contexts[:8])
    with torch.no_grad():
        lp_d, lp_f, lp_v = trained.net.task_logp(feats.tensors())
    p_d, p_f, p_v = lp_d.exp(), lp_f.exp(), lp_v.exp()  # (B, D), (B, D, M), (B, D, M, S, V)
    mask = trained.net.value_mask  # (field keys, V)
    for i, ((_, types), devs) in enumerate(zip(contexts[:8], feats.devices, strict=True)):
        n = len(devs)
        assert math.isclose(float(p_d[i, :n].sum()), 1.0, rel_tol=1e-4) and float(p_d[i, n:].sum()) < 1e-6
        for d, target in enumerate(devs):
            n_sets = len(trained.vocab.type_sets[types[target]])
            assert math.isclose(float(p_f[i, d, :n_sets].sum()), 1.0, rel_tol=1e-4)
            assert float(p_f[i, d, n_sets:].sum()) < 1e-6
            for slot, fk in enumerate(feats.slot_fk[i, d]):
                if fk:  # a real field: its value distribution lives on the values the catalogue allows
                    assert torch.allclose(p_v[i, d, :n_sets, slot].sum(-1), torch.ones(n_sets), atol=1e-4)
                    assert float(p_v[i, d, :n_sets, slot][:, ~mask[fk]].sum()) < 1e-6
    single = CGCModel(CGCConfig(**{**FAST.__dict__, "device_threshold": None}), trained.vocab, trained.net)
    for (prompt, types), pred in zip(contexts[:8], single.predict_batch(contexts[:8]), strict=True):
        assert len({a.target for a in pred.actions}) == 1  # one device without the threshold
        assert all(is_legal_action(a, prompt, types) for a in pred.actions)


def test_training_is_deterministic(tiny_sft_dataset):
    cfg = CGCConfig(epochs=2, min_steps=0, max_rows=40, seed=7, num_threads=1)
    threads = torch.get_num_threads()
    a, b = train_cgc(tiny_sft_dataset, cfg), train_cgc(tiny_sft_dataset, cfg)
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.get_num_threads() == threads  # the thread count is restored after training
    c = train_cgc(tiny_sft_dataset, CGCConfig(epochs=2, min_steps=0, max_rows=40, seed=8))
    assert not all(torch.equal(sa[k], c.net.state_dict()[k]) for k in sa)


def test_save_load_roundtrip_without_pickle(trained, test_set, tmp_path):
    contexts, _ = test_set
    out = trained.save(tmp_path / "cgc")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "vocab.json"]
    assert set(load_file(str(out / "model.safetensors"))) == set(trained.net.state_dict())
    assert json.loads((out / "config.json").read_text())["device_threshold"] == trained.config.device_threshold
    loaded = CGCModel.load(out)
    assert loaded.predict_batch(contexts) == trained.predict_batch(contexts)
    (out / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        CGCModel.load(out)


def test_bad_input_is_named(tmp_path, trained):
    with pytest.raises(DatasetError, match="no sft train split"):
        train_cgc(tmp_path / "nowhere", CGCConfig(epochs=1))
    splits = routine_splits(n_homes=1, days=2, test_days=1)
    splits["train"][0]["devices"][0]["type"] = "toaster"
    with pytest.raises(CatalogError, match="toaster"):
        train_cgc(write_sft_dataset(tmp_path / "bad", splits), CGCConfig(epochs=1))
    prompt = Prompt(history=(), time=datetime(2026, 4, 1, 7), environment=(), devices=(("kitchen", "kettle"),))
    with pytest.raises(CatalogError, match="kitchen/kettle"):
        trained.predict(prompt, {})
    with pytest.raises(ValueError, match="no candidate device"):
        trained.predict(Prompt(history=(), time=datetime(2026, 4, 1, 7), environment=(), devices=()), {})


def test_cgc_trains_and_scores_on_tiny_preset(tiny_preset_dataset):
    config = CGCConfig(seed=0, min_steps=60)  # the defaults, with half the minimum steps (test time)
    model = train_cgc(tiny_preset_dataset, config)
    assert model.stats["rows"] > 0 and model.stats["skipped_label_devices"] == 0
    assert model.stats["steps"] >= config.min_steps > config.epochs  # small data: more epochs, not fewer steps
    rows = read_sft_rows(tiny_preset_dataset, "test") + read_sft_rows(tiny_preset_dataset, "test_unseen")
    contexts, labels = [context_from_row(r) for r in rows], [label_from_row(r) for r in rows]
    preds = model.predict_batch(contexts)
    assert all(is_legal_action(a, p, t) for (p, t), pred in zip(contexts, preds, strict=True) for a in pred.actions)
    cgc = score(labels, [p.actions for p in preds])
    rand = score(labels, RandomLegalBaseline(seed=0).predict_batch(contexts))
    assert cgc["em_acc"] > rand["em_acc"] and cgc["lm_f1"] > rand["lm_f1"] and cgc["rule"] > rand["rule"], (cgc, rand)

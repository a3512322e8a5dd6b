"""Candidate enumeration and the random-legal baseline."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from agent.baselines.random_legal import RandomLegalBaseline
from sim.candidates import (
    context_from_row,
    is_legal_action,
    label_from_row,
    legal_actions,
    legal_fields,
    read_sft_rows,
)
from sim.catalog import CatalogError
from sim.records import Action, Prompt

NOW = datetime(2026, 3, 2, 7, 30)


def _prompt(*devices: tuple[str, str]) -> Prompt:
    return Prompt(history=(), time=NOW, environment=(), devices=devices)


def test_legal_actions_enumerate_devices_fields_and_grids():
    prompt = _prompt(("hallway", "switch"), ("bedroom", "curtain"))
    types = {("hallway", "switch"): "wall_switch", ("bedroom", "curtain"): "curtain"}
    acts = legal_actions(prompt, types)
    # wall switch: power on/off (2); curtain: action open/close/stop (3) + position 0..100 (101)
    assert len(acts) == 2 + 3 + 101 == len(set(acts))
    assert legal_fields(prompt, types) == ((("hallway", "switch"), "power"), (("bedroom", "curtain"), "action"),
                                           (("bedroom", "curtain"), "position"))
    assert Action("bedroom", "curtain", "position", "55") in acts
    assert all(is_legal_action(a, prompt, types) for a in acts)
    assert not is_legal_action(Action("bedroom", "curtain", "position", "101"), prompt, types)
    assert not is_legal_action(Action("bedroom", "curtain", "power", "on"), prompt, types)
    assert not is_legal_action(Action("kitchen", "switch", "power", "on"), prompt, types)


def test_unknown_type_and_untyped_device_are_named():
    with pytest.raises(CatalogError, match="toaster"):
        legal_actions(_prompt(("kitchen", "t")), {("kitchen", "t"): "toaster"})
    with pytest.raises(CatalogError, match="kitchen/kettle"):
        legal_actions(_prompt(("kitchen", "kettle")), {})
    with pytest.raises(ValueError, match="no candidate device"):
        RandomLegalBaseline(0).predict(_prompt(), {})


def test_random_legal_is_seeded_legal_and_uniform():
    prompt = _prompt(("hallway", "switch"), ("porch", "cam"))
    types = {("hallway", "switch"): "wall_switch", ("porch", "cam"): "camera"}
    n = 6000
    base = RandomLegalBaseline(seed=3)
    seq = [base.predict(prompt, types) for _ in range(n)]
    base.reset(3)
    assert [base.predict(prompt, types) for _ in range(50)] == seq[:50]
    other = RandomLegalBaseline(seed=4)
    assert [other.predict(prompt, types) for _ in range(50)] != seq[:50]
    assert all(len(p) == 1 and is_legal_action(p[0], prompt, types) for p in seq)
    counts = Counter(p[0] for p in seq)
    assert len(counts) == 6  # switch power x2, camera power x2 + motion_detection x2
    assert all(abs(c - n / 6) < 0.15 * n / 6 for c in counts.values()), counts


def test_random_legal_on_sft_rows(tiny_sft_dataset):
    rows = read_sft_rows(tiny_sft_dataset, "test")
    base = RandomLegalBaseline(seed=0)
    contexts = [context_from_row(r) for r in rows]
    preds = base.predict_batch(contexts)
    assert len(preds) == len(rows)
    for (prompt, types), pred, row in zip(contexts, preds, rows, strict=True):
        assert is_legal_action(pred[0], prompt, types)
        assert set(types) == set(prompt.devices)
        assert label_from_row(row)  # the label parses with the one grammar


def test_context_from_row_names_bad_input(tiny_sft_dataset):
    row = read_sft_rows(tiny_sft_dataset, "train")[0]
    bad = {**row, "devices": [{**row["devices"][0], "type": "toaster"}, *row["devices"][1:]]}
    with pytest.raises(CatalogError, match="toaster"):
        context_from_row(bad)
    with pytest.raises(CatalogError, match="has no type"):
        context_from_row({**row, "devices": row["devices"][1:]})
    with pytest.raises(KeyError, match="prompt"):
        context_from_row({k: v for k, v in row.items() if k != "prompt"})

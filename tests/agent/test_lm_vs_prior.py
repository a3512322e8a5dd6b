"""benchmarks/lm_vs_prior.py (hand-worked): origin features, the fitted choice learns where the
label sits or how much the LM's scores are worth, and one real run's study end to end."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from sim.records import Action, Operation, Prompt
from tests.agent.conftest import load_benchmark

A, B, C = (Action("bedroom", "light", "power", "on"),), (Action("bedroom", "curtain", "action", "open"),), \
    (Action("study", "fan", "power", "on"),)


@pytest.fixture(scope="module")
def lvp():
    return load_benchmark("lm_vs_prior")


def prompt(usual, history=()):
    return Prompt(history=history, time=datetime(2026, 3, 2, 7, 0), environment=(),
                  devices=(("bedroom", "light"), ("bedroom", "curtain"), ("study", "fan")), usual=usual)


def test_origin_features_name_the_usual_position_the_window_and_bundles(lvp):
    op = Operation(time=datetime(2026, 3, 2, 6, 0), actions=C, environment=(), description="")
    x = lvp.origin_features(prompt((A, B), history=(op,)), [A, B, C, A + B])
    names = lvp.ORIGINS
    assert [names[i] for i in np.flatnonzero(x[0])] == ["usual 1"]
    assert [names[i] for i in np.flatnonzero(x[1])] == ["usual 2"]
    assert [names[i] for i in np.flatnonzero(x[2])] == ["not usual", "in window"]
    assert [names[i] for i in np.flatnonzero(x[3])] == ["not usual", "several actions"]


def test_the_prior_learns_where_the_label_sits_and_the_lm_weight_what_its_scores_are_worth(lvp):
    rng = np.random.default_rng(0)
    p = prompt((A, B))
    x = lvp.origin_features(p, [A, B, C])
    # the label is the second usual operation 3 times in 4, else the first; the LM's scores are noise
    noisy = [(rng.normal(size=3), x, 1 if i % 4 else 0) for i in range(40)]
    a, w = lvp.fit_choice(noisy, use_lm=False)
    assert a == 0.0 and w[1] > w[0] > w[6]  # usual 2 > usual 1 > not usual
    got = lvp.answers([(p, [A, B, C], rng.normal(size=3), x)], {"origin prior": (a, w), "LM + origin prior": (a, w)})
    assert got["origin prior"] == [B] and got["Usual rule"] == [A]
    # the LM's score marks the label wherever it sits: its weight grows, the origins' stay small
    exact = []
    for _ in range(40):
        y = int(rng.integers(3))
        exact.append((np.where(np.arange(3) == y, 0.0, -3.0), x, y))
    a, w = lvp.fit_choice(exact, use_lm=True)
    assert a > 1.0 and np.abs(w).max() < a
    with pytest.raises(ValueError, match="no decision whose label is among"):
        lvp.fit_choice([(np.zeros(3), x, -1)], use_lm=True)


def test_a_quickstart_directory_is_studied_end_to_end(lvp, tiny_preset_dataset, tmp_path):
    """A random-weight model on a generated dataset: the figures are what the run's answers give."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from sim.dataset.files import read_rows
    from training.tokenizer import train_tokenizer

    q = tmp_path / "q"
    q.mkdir()
    (q / "data").symlink_to(tiny_preset_dataset, target_is_directory=True)
    rows = read_rows(tiny_preset_dataset, "sft", "train", ["prompt", "completion"])
    tok = train_tokenizer([r["prompt"] + r["completion"] for r in rows[:200]], vocab_size=400)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=64, max_position_embeddings=2048,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
    run = q / "runs" / "main" / "model"
    model.save_pretrained(run)
    tok.save_pretrained(run)
    (run.parent / "config.json").write_text(json.dumps({"order": "action-first"}))
    (q / "report").mkdir()
    (q / "report" / "report.json").write_text(json.dumps({"seeds": {"evaluation": 0}, "n_samples": 12}))
    res = lvp.main(["--out", str(tmp_path / "res"), "--quickstart", str(q)])
    s = res["studies"][0]
    test = s["splits"]["test"]
    assert test["n"] == 12 and set(test["variants"]) == set(lvp.VARIANTS)
    assert s["pool"] == "plausible"  # uncalibrated: the recommender's default
    assert sum(test["positions"]["labels"].values()) == 12
    assert s["weights"]["origin prior"]["lm"] == 0.0
    # score_candidates ranks as the recommender answers: its best set is recommend_batch's answer
    from agent.context import Context
    from agent.evaluate import diversity, load_samples
    from agent.recommender import Recommender, RecommenderConfig

    samples = load_samples(q / "data", max_samples=12, seed=0)
    recs = Recommender.from_run(q / "runs" / "main", RecommenderConfig(search="candidates")).recommend_batch(
        [Context.from_prompt(x.prompt_text, x.types) for x in samples])
    assert {k: test["variants"]["LM, every plausible set"][k] for k in ("top_answer", "distinct_per_100")} == \
        {k: diversity(recs)[k] for k in ("top_answer", "distinct_per_100")}
    assert "| Usual rule |" in (tmp_path / "res" / "lm_vs_prior.md").read_text()
    saved = json.loads((tmp_path / "res" / "lm_vs_prior.json").read_text())
    assert saved["studies"][0]["splits"]["test"]["variants"]["Usual rule"] == test["variants"]["Usual rule"]


def test_an_unfinished_quickstart_is_named(lvp, tmp_path):
    with pytest.raises(FileNotFoundError, match="report.json is missing"):
        (tmp_path / "data").mkdir()
        (tmp_path / "runs" / "main").mkdir(parents=True)
        lvp.study(tmp_path, 1e-2)

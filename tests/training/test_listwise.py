"""The listwise preference stage (``training.listwise``): the loss by hand, training-time candidate
scores equal to the recommender's (``training.scoring.score_sets``), the rows it trains on, and a tiny
run through the pipeline (tiny's default preference loss)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sim.candidates import label_from_row, plausible_sets, types_from_devices
from sim.dataset.files import held_out_since, is_held_out, read_rows
from sim.records import parse_prompt, parse_target
from training.data import dpo_dataset, fits, listwise_dataset, subsample
from training.listwise import candidate_logprobs, candidate_scores, encode, listwise_loss
from training.models import load_model
from training.pipeline import TrainConfig, main
from training.scoring import completion_text, left_pad, score_sets
from training.tokenizer import load_tokenizer, train_tokenizer


def test_listwise_loss_by_hand():
    """Two rows: 3 candidates, and 2 with an absent third slot. With beta 1 and ref 0 the loss is
    the softmax cross-entropy of the log-probabilities; the absent slot takes no probability."""
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -0.5, -1e9]])
    ref = torch.tensor([[-1.0, -1.0, -1.0], [0.0, -1.0, 0.0]])
    label = torch.tensor([0, 1])
    # row 0: beta*(logp-ref) = [0, -1, -2]; -log softmax[0] = log(1 + e^-1 + e^-2)
    # row 1: [-0.5, 0.5]; -log softmax[1] = log(1 + e^-1)
    want = (math.log(1 + math.exp(-1) + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert listwise_loss(logp, ref, label, beta=1.0).item() == pytest.approx(want, rel=1e-6)
    # beta scales the differences: row 1 at beta 2 is log(1 + e^-2)
    one = listwise_loss(logp[1:], ref[1:], label[1:], beta=2.0).item()
    assert one == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)
    # policy == reference: every candidate equally likely, loss = log(number of candidates)
    assert listwise_loss(logp, logp.clone(), label, beta=1.0).item() == pytest.approx((math.log(3) + math.log(2)) / 2)


@pytest.fixture(scope="module")
def tok_model(tiny_dataset):
    from training.data import pretrain_texts

    tok = train_tokenizer(pretrain_texts(tiny_dataset), vocab_size=400)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, intermediate_size=64,
                                         max_position_embeddings=1024))
    return tok, model.eval()


def test_training_scores_are_the_recommenders_scores(tiny_dataset, tok_model):
    """What the stage trains (candidate_logprobs, differentiable) is what candidate scoring ranks
    at inference (training.scoring.score_sets), candidate by candidate."""
    tok, model = tok_model
    ds = listwise_dataset(tiny_dataset).select(range(5))
    enc = encode(tok, ds)
    ids, am = left_pad(enc["prompt_ids"], tok.pad_token_id)
    logp = candidate_logprobs(model, ids, am, enc["cand_ids"], tok.pad_token_id)
    assert logp.requires_grad
    sets = [[parse_target(c)[0] for c in cands] for cands in ds["candidates"]]
    want = score_sets(model, tok, list(ds["prompt"]), sets, "action-first")
    for k, s in enumerate(want):
        np.testing.assert_allclose(logp[k, :len(s.logp)].detach().numpy(), s.logp, rtol=1e-4, atol=1e-4)
        assert (logp[k, len(s.logp):] < -1e8).all()  # absent slots


def test_listwise_rows_are_the_decisions_plausible_sets(tiny_dataset):
    """One row per train decision (held-out prompts left out) whose label is among >= 2 plausible
    sets; candidates in the run's order; label = the index of the user's operation."""
    ds = listwise_dataset(tiny_dataset)
    since = held_out_since(tiny_dataset)
    rows = [r for r in read_rows(tiny_dataset, "sft", "train", ["prompt", "devices", "actions"])
            if not is_held_out(r["prompt"], since)]
    expect = []
    for r in rows:
        sets = plausible_sets(parse_prompt(r["prompt"]), types_from_devices(r["devices"]), drop_noops=True)
        hit = [j for j, c in enumerate(sets) if frozenset(c) == frozenset(label_from_row(r))]
        if hit and len(sets) > 1:
            expect.append((r["prompt"], [completion_text(c, "action-first") for c in sets], hit[0]))
    assert 0 < len(expect) <= len(rows)
    assert [(p, list(c), lab) for p, c, lab in zip(ds["prompt"], ds["candidates"], ds["label"], strict=True)] == expect
    for cands, lab, r in zip(ds["candidates"], ds["label"], expect, strict=True):
        assert cands[lab] == r[1][r[2]]
    text_first = listwise_dataset(tiny_dataset, order="text-first")
    assert list(text_first["label"]) == list(ds["label"])
    assert all(c.startswith("<desc> ") and " <act> " in c for cands in text_first["candidates"] for c in cands)


def test_a_text_first_run_prefers_text_first_completions(tiny_dataset):
    """The dpo config stores action-first pairs; a text-first run's DPO reads them text-first, as its SFT."""
    af = dpo_dataset(tiny_dataset)
    tf = dpo_dataset(tiny_dataset, order="text-first")
    assert len(af) == len(tf) > 0 and list(af["prompt"]) == list(tf["prompt"])
    for a, t in zip([*af["chosen"], *af["rejected"]], [*tf["chosen"], *tf["rejected"]], strict=True):
        assert t.startswith("<desc> ") and parse_target(t, "text-first") == parse_target(a, "action-first")


def test_tiny_pipeline_runs_the_listwise_stage(tiny_dataset, tmp_path):
    """tiny's default preference stage: one step over every row (policy == reference, so the first
    loss is the mean log number of candidates), then its record in config.json."""
    cfg = TrainConfig(data=tiny_dataset, out=tmp_path / "run", preset="tiny", seed=0, vocab_size=400, block_size=128,
                      pretrain_batch_size=8, pretrain_epochs=1, pretrain_tokens=None, sft_batch_size=8, sft_epochs=1,
                      sft_max_rows=16, sft_min_steps=0, dpo_max_rows=8, dpo_batch_size=8, dpo_epochs=2,
                      logging_steps=1, save_steps=1000)
    assert cfg.dpo_loss == "listwise" and cfg.dpo_beta == 1.0 and "dpo_loss" in cfg.hyper_from_preset
    info = main(cfg)
    stage = info["stages"]["dpo"]
    assert stage["loss"] == "listwise" and stage["rows"] == 8 and stage["steps"] == 2
    tok = load_tokenizer(tmp_path / "run" / "tokenizer")
    kept, _ = fits(tok, listwise_dataset(tiny_dataset), cfg.sft_max_length, ["candidates"])
    rows = subsample(kept, 8, 0)
    first = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["stage"] == "dpo"][0]
    # policy == reference at the first step: every candidate equally likely
    assert first["step"] == 1
    assert first["loss"] == pytest.approx(float(np.mean([math.log(len(c)) for c in rows["candidates"]])), rel=1e-3)
    scores = candidate_scores(load_model(tmp_path / "run" / "sft" / "final"), tok, rows, "action-first")
    top1 = np.mean([int(np.argmax(s)) == lab for s, lab in zip(scores, rows["label"], strict=True)])
    assert stage["label_top1_before"] == pytest.approx(top1, abs=1e-4)
    with pytest.raises(ValueError, match="dpo_loss must be one of sigmoid, listwise, got 'hinge'"):
        TrainConfig(data=tiny_dataset, out=tmp_path / "bad", dpo_loss="hinge")

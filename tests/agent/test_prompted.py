"""The prompted-LLM baseline: a local causal LM with its own (non-domain) tokenizer, zero-shot, read
through the instruction header and the recommender's candidate scoring; clear errors for paths
that are not a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from typer.testing import CliRunner

from agent.baselines.prompted import INSTRUCTION, PromptedModelError, check_model_dir, load_prompted
from agent.evaluate import PROMPTED, EvaluateConfig, evaluate
from sim.candidates import plausible_sets, types_from_devices
from sim.dataset.files import read_rows
from sim.records import parse_prompt
from training.scoring import score_sets


@pytest.fixture(scope="module")
def general_lm(tmp_path_factory, tiny_sft_dataset) -> Path:
    """A 2-layer random Llama with a whitespace-BPE tokenizer of its own, as a user's local LLM folder."""
    path = tmp_path_factory.mktemp("general_lm")
    texts = [r["prompt"] for r in read_rows(tiny_sft_dataset, "sft", "train", ["prompt"])][:50]
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator([INSTRUCTION, *texts], trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="</s>", unk_token="<unk>")
    tok.save_pretrained(path)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def test_prompted_model_scores_the_same_candidates_after_the_instruction(general_lm, tiny_sft_dataset):
    row = read_rows(tiny_sft_dataset, "sft", "test", ["prompt", "devices"])[0]
    types = types_from_devices(row["devices"])
    rec = load_prompted(general_lm)
    assert rec.config.instruction == INSTRUCTION and rec.config.search == "candidates"
    got = rec.recommend(row["prompt"])
    # by hand: the recommender's candidates (the prompt's plausible sets, no-ops left out), scored by the
    # model after INSTRUCTION + the prompt; the answer is the most likely one with its posterior
    sets = plausible_sets(parse_prompt(row["prompt"]), types, drop_noops=True)
    scored = score_sets(rec.model, rec.tokenizer, [INSTRUCTION + row["prompt"]], [sets], "action-first")[0]
    post = scored.posterior()
    assert got.actions == scored.candidates[int(np.argmax(post))]
    assert got.confidence == pytest.approx(float(post.max()), rel=1e-5)
    without = score_sets(rec.model, rec.tokenizer, [row["prompt"]], [sets], "action-first")[0]
    assert not np.allclose(without.logp, scored.logp)  # the header is really read


def test_evaluate_reports_the_prompted_row_legal_everywhere(general_lm, tiny_sft_dataset, tmp_path):
    report = evaluate(EvaluateConfig(data=tiny_sft_dataset, runs=[], out=tmp_path / "rep", baselines=("Random",),
                                     splits=("test",),
                                     prompted_model=general_lm, max_samples=12, n_boot=20, compare_searches=()))
    assert set(report["whole"]) == {"Random", PROMPTED}
    assert report["whole"][PROMPTED]["n"] == 12 and 0.0 <= report["whole"][PROMPTED]["em_acc"] <= 1.0
    assert report["legal_rate"][PROMPTED] == 1.0  # every answer is a legal action set of the home


def test_paths_that_are_not_a_model_are_named(tmp_path, general_lm, tiny_sft_dataset):
    with pytest.raises(PromptedModelError, match="no such folder"):
        check_model_dir(tmp_path / "nope")
    with pytest.raises(PromptedModelError, match="no config.json"):
        check_model_dir(tiny_sft_dataset)  # a dataset folder
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(PromptedModelError, match="no model.safetensors"):
        check_model_dir(bare)
    (bare / "model.safetensors").write_bytes((general_lm / "model.safetensors").read_bytes())
    with pytest.raises(PromptedModelError, match="no tokenizer"):
        check_model_dir(bare)
    odd = tmp_path / "odd"
    odd.mkdir()
    for f in general_lm.iterdir():
        (odd / f.name).write_bytes(f.read_bytes())
    (odd / "config.json").write_text(json.dumps({"model_type": "not-a-model-type"}))
    with pytest.raises(PromptedModelError, match="transformers cannot load"):
        load_prompted(odd)
    with pytest.raises(ValueError, match="no config.json"):
        EvaluateConfig(data=tiny_sft_dataset, runs=[], out=tmp_path / "r", prompted_model=tiny_sft_dataset)


def test_cli_evaluate_names_a_bad_prompted_model(tmp_path, tiny_sft_dataset):
    from app.cli import app

    r = CliRunner().invoke(app, ["evaluate", "--data", str(tiny_sft_dataset), "--out", str(tmp_path / "rep"),
                                 "--prompted-model", str(tmp_path / "nope")])
    assert r.exit_code == 1 and "--prompted-model" in r.output and "no such folder" in r.output

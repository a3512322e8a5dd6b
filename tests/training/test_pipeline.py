"""End to end: all three stages on the tiny dataset with a tiny model, the run directory
contract, kill -9 + --resume in a subprocess, the resume rules (same options and data, an earlier
final model only with --replace-model), and a --base-model with its own tokenizer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import trl
from huggingface_hub import ModelCard
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from typer.testing import CliRunner

from app.cli import app
from tests.training.conftest import write_dataset
from training.data import dpo_dataset, pretrain_texts, subsample
from training.dpo import preference_margin
from training.models import load_model
from training.pipeline import TrainConfig, main
from training.tokenizer import is_domain_tokenizer, load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
# tiny sizes: 3 x 3 pretrain steps, 2 x 3 SFT steps (24 rows), 3 DPO steps (24 pairs)
FAST = dict(vocab_size=400, block_size=128, pretrain_batch_size=8, pretrain_epochs=3, pretrain_tokens=None,
            sft_batch_size=8, sft_epochs=2, sft_max_rows=24, dpo_batch_size=8, dpo_epochs=1, dpo_max_rows=24,
            logging_steps=1, save_steps=1000, full_finetune=False,  # LoRA SFT (the paper's); tiny's default is full
            dpo_loss="sigmoid", dpo_beta=0.1,  # the paper's DPO (tiny's default, listwise, has its own tests below)
            sft_min_steps=0)  # tiny's 800-step floor off: these runs pin plumbing, not quality


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def run(tiny_dataset, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run") / "run"
    seen: list[tuple[str, int, int]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = main(TrainConfig(data=tiny_dataset, out=out, preset="tiny", seed=0, **FAST),
                    progress=lambda s, d, t: seen.append((s, d, t)))
    info["progress"] = seen
    info["warnings"] = [str(w.message) for w in caught]
    return out, info


def test_a_lora_run_reuses_no_peft_config(run):
    """SFT and DPO each get their own LoraConfig: PEFT writes the base model's path into the one it
    is given, and a shared one warned "base_model_name_or_path was renamed" in every LoRA run."""
    _, info = run
    assert info["full_finetune"] is False
    assert not [m for m in info["warnings"] if "was renamed" in m or "with PEFT for a second time" in m]


def test_sft_mode_comes_from_the_preset_unless_given(tiny_dataset, tmp_path):
    assert TrainConfig(data=tiny_dataset, out=tmp_path / "a", preset="tiny").full_finetune is True
    assert TrainConfig(data=tiny_dataset, out=tmp_path / "b", preset="small").full_finetune is False
    assert TrainConfig(data=tiny_dataset, out=tmp_path / "c", preset="tiny", full_finetune=False).full_finetune is False
    with pytest.raises(ValueError, match="pretrain_view must be one of actions, full"):
        TrainConfig(data=tiny_dataset, out=tmp_path / "d", pretrain_view="summary")


def test_loss_falls_in_every_stage(run):
    out, _ = run
    rows = _metrics(out)
    for stage in ("pretrain", "sft", "dpo"):
        losses = [r["loss"] for r in rows if r["stage"] == stage]
        assert len(losses) >= 3, stage
        assert losses[-1] < losses[0], (stage, losses)
        assert all(r["tokens_per_s"] > 0 for r in rows if r["stage"] == stage and r["step"] > 1)
    assert [r["loss"] for r in rows if r["stage"] == "dpo"][0] == pytest.approx(0.6931, abs=1e-3)  # policy == ref


def test_dpo_raises_the_preference_margin(run, tiny_dataset):
    out, info = run
    tok = load_tokenizer(out / "model")
    pairs = subsample(dpo_dataset(tiny_dataset), 24, seed=0)  # the pairs the run trained on (none too long)
    before = preference_margin(load_model(out / "sft" / "final"), tok, pairs)
    after = preference_margin(load_model(out / "dpo" / "final"), tok, pairs)
    assert after > before
    assert info["stages"]["dpo"]["margin_after"] > info["stages"]["dpo"]["margin_before"]


def test_run_directory_contract(run, tiny_dataset):
    out, info = run
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["order"] == "action-first" and cfg["stages_run"] == ["pretrain", "sft", "dpo"]
    assert cfg["preset"] == "tiny" and cfg["block_size"] == 128 and cfg["sft_lr"] == 2e-3  # resolved from preset
    assert cfg["full_finetune"] is False and "full_finetune" not in cfg["hyper_from_preset"]  # given, not the preset's
    # what computed the run's numbers (they are reproducible only with the same machine and libraries)
    assert cfg["software"]["torch"] == torch.__version__ and cfg["software"]["trl"] == trl.__version__
    assert cfg["software"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert {"stage", "step", "loss", "tokens_per_s"} <= set(_metrics(out)[0])
    for stage in ("pretrain", "sft", "dpo"):
        assert (out / stage / "final" / "model.safetensors").is_file()
    assert (out / "sft" / "adapter" / "adapter_model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(out / "model", use_safetensors=True)
    assert cfg["refs"] is True and model.config.completion_refs is True  # targets named their usual operation
    assert load_model(out / "sft" / "final").config.completion_refs is True
    assert not getattr(load_model(out / "pretrain" / "final").config, "completion_refs", False)
    dpo_final = load_model(out / "dpo" / "final")
    assert all(torch.equal(v, dpo_final.state_dict()[k]) for k, v in model.state_dict().items())
    assert not any("lora" in k for k in model.state_dict())  # LoRA merged into the weights
    tok = load_tokenizer(out / "model")
    assert is_domain_tokenizer(out / "model") and isinstance(tok, PreTrainedTokenizerFast)
    assert len(tok) == model.config.vocab_size == cfg["vocab_size"]
    assert not (out / "model_card.md").exists()
    card = ModelCard.load(out / "model" / "README.md")  # the final model's card, next to its weights
    assert (card.data.license, card.data.library_name, card.data.pipeline_tag) == (
        "apache-2.0", "transformers", "text-generation")
    assert card.data.datasets == [tiny_dataset.name] and "homepilot" in card.data.tags
    assert "pretrain" in card.text and "dpo" in card.text and "LoRA r=16 alpha=32" in card.text
    assert "agent.recommender" in card.text and "Recommender.from_run" in card.text
    assert "`recommender.json`" in card.text and "candidate pool" in card.text  # what calibration adds
    for path in ("/tmp", str(out), str(out.resolve()), str(tiny_dataset), str(tiny_dataset.resolve())):
        assert path not in card.content, path  # no local paths
    assert info["progress"][-1][0] == "dpo" and info["progress"][-1][1] == info["progress"][-1][2]


def test_existing_run_needs_resume(run, tiny_dataset):
    out, _ = run
    with pytest.raises(FileExistsError, match="--resume"):
        main(TrainConfig(data=tiny_dataset, out=out, **FAST))
    with pytest.raises(ValueError, match="order"):
        main(TrainConfig(data=tiny_dataset, out=out, order="text-first", resume=True, **FAST))


def _copy(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


def test_resume_refuses_options_that_change_results(run, tiny_dataset, tmp_path):
    out, _ = run
    stored = (out / "config.json").read_bytes()
    with pytest.raises(ValueError) as e:
        main(TrainConfig(data=tiny_dataset, out=out, resume=True, **{**FAST, "sft_lr": 1e-3, "sft_epochs": 3,
                                                                      "dpo_beta": 0.2}))
    msg = str(e.value)
    assert msg.startswith(f"--resume with options that differ from {out / 'config.json'}")
    assert "sft_lr: run 0.002, now 0.001" in msg and "sft_epochs: run 2, now 3" in msg and "dpo_beta: run 0.1, now 0.2" in msg
    other = write_dataset(tmp_path / "other", n_days=11)  # other rows: same options, different data
    with pytest.raises(ValueError, match=r"data contents: run sha256 [0-9a-f]{12}, now [0-9a-f]{12}"):
        main(TrainConfig(data=other, out=out, resume=True, **FAST))
    assert (out / "config.json").read_bytes() == stored  # the run's record still tells what was used


def test_resume_refuses_a_run_trained_under_another_validation_slice(run, tiny_dataset, tmp_path):
    import json

    from sim.dataset.files import validation_rule

    out = _copy(run[0], tmp_path / "run")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["inputs"]["validation"] == validation_rule(tiny_dataset)
    # the fixture's sft rows span 9 days (test_data): ceil(0.9) = 1, the last one
    assert validation_rule(tiny_dataset) == "the sft train days from 2026-03-11 (the last 10% of its days, rounded up)"
    del cfg["inputs"]["validation"]  # a run trained before the time-based slice records none
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"validation slice: run a random 1 in 10 of the prompts, now the sft "
                                         r"train days from 2026-03-11 \(the last 10% of its days, rounded up\)"):
        main(TrainConfig(data=tiny_dataset, out=out, resume=True, **FAST))


def test_resume_refuses_a_run_trained_before_refs(run, tiny_dataset, tmp_path):
    out = _copy(run[0], tmp_path / "run")
    cfg = json.loads((out / "config.json").read_text())
    del cfg["refs"]  # a run from before refs learned its targets without them
    (out / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"refs: run False, now True"):
        main(TrainConfig(data=tiny_dataset, out=out, resume=True, **FAST))


def test_resume_cli_prints_the_differences(run, tiny_dataset):
    out, _ = run
    res = CliRunner().invoke(app, ["train", "--data", str(tiny_dataset), "--out", str(out), "--resume",
                                   "--sft-lr", "0.001"])
    assert res.exit_code == 1 and "error: --resume with options that differ" in res.output
    assert "sft_lr: run 0.002, now 0.001" in res.output


def test_resume_of_a_moved_dataset_runs_nothing_again(run, tiny_dataset, tmp_path):
    out = _copy(run[0], tmp_path / "run")
    moved = _copy(tiny_dataset, tmp_path / "moved")  # same bytes, another path
    lines = (out / "metrics.jsonl").read_text()
    info = main(TrainConfig(data=moved, out=out, resume=True, **FAST))
    assert info["stages_run"] == ["pretrain", "sft", "dpo"] and (out / "metrics.jsonl").read_text() == lines


def test_resume_with_an_earlier_last_stage_needs_replace_model(run, tiny_dataset, tmp_path):
    out = _copy(run[0], tmp_path / "run")
    before = (out / "model" / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"--resume --stages sft would replace .* \(now dpo/final\) with sft/final; "
                                         r"pass --replace-model"):
        main(TrainConfig(data=tiny_dataset, out=out, resume=True, stages="sft", **FAST))
    assert (out / "model" / "model.safetensors").read_bytes() == before
    info = main(TrainConfig(data=tiny_dataset, out=out, resume=True, stages="sft", replace_model=True, **FAST))
    assert info["final_from"] == "sft/final"
    assert (out / "model" / "model.safetensors").read_bytes() == (out / "sft" / "final" / "model.safetensors").read_bytes()


def test_bad_config_fields_are_named(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="stages"):
        TrainConfig(data=tiny_dataset, out=tmp_path, stages="pretrain,finetune")
    with pytest.raises(ValueError, match="preset"):
        TrainConfig(data=tiny_dataset, out=tmp_path, preset="huge")
    with pytest.raises(ValueError, match="order"):
        TrainConfig(data=tiny_dataset, out=tmp_path, order="backwards")


_CHILD = """
import os, signal, sys
from training.pipeline import TrainConfig, main

def progress(stage, step, total):
    if sys.argv[3] == "0" and step == 8:  # mid-stage, after checkpoint-6 was written
        os.kill(os.getpid(), signal.SIGKILL)

main(TrainConfig(data=sys.argv[1], out=sys.argv[2], stages=("pretrain",), resume=sys.argv[3] == "1",
                 vocab_size=400, block_size=32, pretrain_batch_size=4, pretrain_epochs=2, pretrain_tokens=None,
                 logging_steps=1, save_steps=3), progress)
"""


def test_sft_min_steps_adds_epochs_to_small_datasets():
    from training.pipeline import sft_epochs

    assert sft_epochs(rows=2400, batch_size=4, epochs=1, min_steps=500) == 1  # 600 steps already
    assert sft_epochs(rows=250, batch_size=4, epochs=2, min_steps=500) == 8.0  # 500 steps of 4 over 250 rows
    assert sft_epochs(rows=250, batch_size=4, epochs=2, min_steps=0) == 2
    assert TrainConfig(data="d", out="o", preset="tiny").sft_min_steps == 800


def test_kill_9_then_resume_continues_from_checkpoint(tiny_dataset, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", _CHILD, str(tiny_dataset), str(out)]
    first = subprocess.run([*cmd, "0"], cwd=ROOT, env=env, capture_output=True, timeout=300)
    assert first.returncode == -signal.SIGKILL
    assert (out / "pretrain" / "checkpoint-6").is_dir() and not (out / "pretrain" / "final").exists()
    assert [r["step"] for r in _metrics(out)] == list(range(1, 8))  # killed before step 8 was logged
    subprocess.run([*cmd, "1"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    rows = _metrics(out)
    resumed = rows[7:]
    total = json.loads((out / "pretrain" / "stage_done.json").read_text())["steps"]
    assert total >= 15
    assert [r["step"] for r in resumed] == list(range(7, total + 1))  # continued after checkpoint-6, not step 1
    assert AutoModelForCausalLM.from_pretrained(out / "model", use_safetensors=True) is not None


_THREADS_CHILD = """
import hashlib, sys
from pathlib import Path
import torch
if sys.argv[3] == "after":  # what every evaluation does before reproduce's next seed trains (CGC)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_num_threads(n)
from training.pipeline import TrainConfig, main
main(TrainConfig(data=Path(sys.argv[1]), out=Path(sys.argv[2]), stages=("pretrain",), pretrain_tokens=40_960,
                 logging_steps=1, save_steps=1000))
print(hashlib.md5(Path(sys.argv[2], "pretrain", "final", "model.safetensors").read_bytes()).hexdigest())
"""


@pytest.mark.skipif(torch.get_num_threads() < 2, reason="one intra-op thread: MKL's threading cannot change rounding")
def test_a_seed_trains_the_same_weights_after_an_earlier_set_num_threads(tmp_path):
    # The tiny preset's sizes on 60 days (6 pre-training steps): without training.runtime.pin_threads
    # the two processes' weights differed (2-core AVX512 box, torch 2.13.0+cpu); smaller sizes did not show it.
    data = write_dataset(tmp_path / "data", n_days=60)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    md5 = {}
    for when in ("fresh", "after"):
        r = subprocess.run([sys.executable, "-c", _THREADS_CHILD, str(data), str(tmp_path / when), when], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
        md5[when] = r.stdout.split()[-1]
    assert md5["fresh"] == md5["after"]


def _foreign_base_model(path: Path, texts: list[str]) -> Path:
    """A tiny random Llama with its own (non-domain) tokenizer, as a user's --base-model."""
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<eos>", unk_token="<unk>")
    tok.save_pretrained(path)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(path)
    return path


def test_base_model_trains_with_its_own_tokenizer(tiny_dataset, tmp_path, general_text_file):
    base = _foreign_base_model(tmp_path / "base", pretrain_texts(tiny_dataset))
    out = tmp_path / "run"
    info = main(TrainConfig(data=tiny_dataset, out=out, base_model=base, stages="pretrain,sft",
                            general_text=general_text_file, general_ratio=0.5,
                            **{**FAST, "pretrain_epochs": 1, "sft_epochs": 1, "sft_max_rows": 16,
                               "sft_max_length": 2048}))
    assert info["stages_run"] == ["pretrain", "sft"] and info["stages"]["pretrain"]["init"] == str(base)
    pre = info["stages"]["pretrain"]
    assert pre["general_ratio"] == 0.5 and pre["rows"] > len(pretrain_texts(tiny_dataset))  # general text mixed in
    assert not is_domain_tokenizer(out / "model")
    tok = load_tokenizer(out / "model")
    assert tok.get_vocab() == load_tokenizer(base).get_vocab() and tok.pad_token == "<eos>"
    model = AutoModelForCausalLM.from_pretrained(out / "model", use_safetensors=True)
    assert model.config.hidden_size == 32
    card = (out / "model" / "README.md").read_text()
    assert "from base" in card and "`general.txt`" in card and str(tmp_path) not in card  # base names, no paths

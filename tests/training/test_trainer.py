"""``training.runtime.LMTrainer``: the plain cross-entropy path gives TRL's loss and gradients."""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from training.models import build_model
from training.runtime import LMTrainer, Runtime, trainer_args
from training.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    texts = [f"<hist> [bedroom][light][power][on] {i} </hist> <rec> <act> [kitchen][kettle][power][on]" for i in range(40)]
    tok = train_tokenizer(texts, vocab_size=300)
    model = build_model("tiny", tok, seed=0)
    rows = [{"prompt": f"<hist> [bedroom][light][power][on] {'x ' * (i % 7)}</hist> <rec>",
             "completion": f"<act> [kitchen][kettle][power][{'on' if i % 2 else 'off'}] <desc> kettle {i}"}
            for i in range(8)]
    return tok, model, Dataset.from_list(rows), tmp_path_factory.mktemp("trainer")


def _trainer(cls, model, tok, ds, out, lora=None):
    rt = Runtime(seed=0, use_cpu=True, bf16=False, logging_steps=1, save_steps=100, metrics_path=out / "m.jsonl")
    args = SFTConfig(**trainer_args(rt, out, learning_rate=1e-3, epochs=1, batch_size=4), packing=False,
                     max_length=128, completion_only_loss=True, dataset_num_proc=None)
    return cls(model=model, args=args, train_dataset=ds, processing_class=tok, peft_config=lora)


def test_plain_loss_equals_trl_loss_and_gradients(setup):
    tok, model, ds, out = setup
    ours = _trainer(LMTrainer, copy.deepcopy(model), tok, ds, out / "ours")
    trl = _trainer(SFTTrainer, copy.deepcopy(model), tok, ds, out / "trl")
    batch = next(iter(ours.get_train_dataloader()))
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()  # a prompt part and a completion
    n = int((batch["labels"][:, 1:] != -100).sum())
    losses, grads = [], []
    for tr in (ours, trl):
        tr.model.train()
        tr.model.zero_grad()
        loss = tr.compute_loss(tr.model, dict(batch), num_items_in_batch=torch.tensor(n))
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.flatten() for p in tr.model.parameters() if p.grad is not None]))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-6)
    assert ours._metrics["train"]["mean_token_accuracy"]  # the accuracy metric is still logged


def test_large_logits_go_to_trl(setup, monkeypatch):
    """Above PLAIN_LOSS_MAX_LOGITS the batch takes TRL's chunked head (GPU presets): same loss."""
    import training.runtime as R

    tok, model, ds, out = setup
    tr = _trainer(LMTrainer, copy.deepcopy(model), tok, ds, out / "big")
    batch = next(iter(tr.get_train_dataloader()))
    small = tr.compute_loss(tr.model, dict(batch)).item()
    called = []
    real = SFTTrainer.compute_loss
    monkeypatch.setattr(SFTTrainer, "compute_loss", lambda self, *a, **k: called.append(1) or real(self, *a, **k))
    monkeypatch.setattr(R, "PLAIN_LOSS_MAX_LOGITS", 1)
    big = tr.compute_loss(tr.model, dict(batch)).item()
    assert called and big == pytest.approx(small, rel=1e-5)


def test_lora_model_gets_the_same_loss(setup):
    """The small preset's SFT: a PEFT-wrapped model takes the plain path with TRL's loss."""
    from training.sft import lora_config

    tok, model, ds, out = setup
    ours = _trainer(LMTrainer, copy.deepcopy(model), tok, ds, out / "lora_ours", lora_config())
    trl = _trainer(SFTTrainer, copy.deepcopy(model), tok, ds, out / "lora_trl", lora_config())
    batch = next(iter(ours.get_train_dataloader()))
    assert type(ours.model).__name__.startswith("Peft")
    losses = [tr.compute_loss(tr.model, dict(batch)).item() for tr in (ours, trl)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)

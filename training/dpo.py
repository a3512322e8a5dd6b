"""Stage 3, direct preference optimisation (paper Sec. 3.4) on the ``dpo`` config.

TRL ``DPOTrainer``, sigmoid loss, ``beta`` configurable:
``L = -log sigmoid(beta * [(log pi(y_w|x) - log ref(y_w|x)) - (log pi(y_l|x) - log ref(y_l|x))])``.

Reference = the SFT policy, without a second copy of the model: a fresh LoRA adapter (same
r/alpha/dropout as SFT) goes on the merged SFT model and TRL computes the reference
log-probabilities with the adapter disabled, which is exactly the SFT policy (LoRA starts at
B = 0). The adapter is merged into the returned model (``RUN/dpo/final``).

``preference_margin`` measures what DPO should raise: the mean over pairs of
``log p(chosen | prompt) - log p(rejected | prompt)`` (sums over completion tokens, nats).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import DPOConfig, DPOTrainer

from training.runtime import Runtime, callbacks, last_checkpoint, quiet, trainer_args


def dpo(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: Dataset, stage_dir: Path, rt: Runtime, *,
        lora: LoraConfig, beta: float, max_length: int, batch_size: int, learning_rate: float, epochs: float,
        resume: bool = False) -> PreTrainedModel:
    """Preference-train ``model`` (the SFT policy) on ``ds`` (prompt, chosen, rejected)."""
    args = DPOConfig(
        **trainer_args(rt, stage_dir, learning_rate=learning_rate, epochs=epochs, batch_size=batch_size, warmup=0.0),
        beta=beta, loss_type=["sigmoid"], max_length=max_length, padding_free=False,
        precompute_ref_log_probs=False, dataset_num_proc=None,
    )
    trainer = DPOTrainer(model=model, ref_model=None, args=args, train_dataset=ds, processing_class=tokenizer,
                         peft_config=lora, callbacks=callbacks(rt, "dpo"))
    quiet(trainer)
    ckpt = last_checkpoint(stage_dir) if resume else None
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    return trainer.model.merge_and_unload()


@torch.no_grad()
def completion_logprobs(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                        completions: list[str], batch_size: int = 16) -> np.ndarray:
    """``log p(completion | prompt)`` per row, summed over completion tokens (+ ``</s>``), nats."""
    model.eval()
    device = next(model.parameters()).device
    out: list[float] = []
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer(completions, add_special_tokens=False)["input_ids"]
    for i in range(0, len(prompts), batch_size):
        rows = [(p, c + [tokenizer.eos_token_id]) for p, c in zip(p_ids[i:i + batch_size], c_ids[i:i + batch_size],
                                                                   strict=True)]
        width = max(len(p) + len(c) for p, c in rows)
        ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        target = torch.zeros_like(ids, dtype=torch.bool)  # True where the token belongs to the completion
        for j, (p, c) in enumerate(rows):
            ids[j, :len(p) + len(c)] = torch.tensor(p + c)
            mask[j, :len(p) + len(c)] = 1
            target[j, len(p):len(p) + len(c)] = True
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()  # (b, seq, vocab)
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None].to(device))[..., 0]  # (b, seq-1)
        out += (logp * target[:, 1:].to(device)).sum(-1).tolist()
    return np.array(out)


def preference_margin(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: Dataset) -> float:
    """Mean chosen-minus-rejected log-probability over the pairs of ``ds`` (nats)."""
    prompts = list(ds["prompt"])
    chosen = completion_logprobs(model, tokenizer, prompts, list(ds["chosen"]))
    rejected = completion_logprobs(model, tokenizer, prompts, list(ds["rejected"]))
    return float(np.mean(chosen - rejected))

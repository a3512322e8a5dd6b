"""Stage 1, domain pre-training (paper Eq. 1): causal LM over serialised operation histories.

``L = -sum_t log p(x_t | x_<t)`` over every token of the packed corpus: documents (one serialised
history per row, optionally mixed with general-domain paragraphs) end on ``</s>`` and are
concatenated and cut into ``block_size`` rows (TRL ``packing_strategy="wrapped"``, the fastest on
CPU per NOTES; no padding, so every position carries loss).

Runs on TRL ``SFTTrainer`` over a ``text`` dataset, so it checkpoints and resumes like the other
stages. ``benchmarks/train_speed.py`` compares its throughput with a plain PyTorch AdamW loop on
the same model and the same packed batches (``pretrain_ratio_to_plain_loop``).
"""

from __future__ import annotations

import math
from pathlib import Path

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig

from training.runtime import LMTrainer, Runtime, callbacks, last_checkpoint, quiet, trainer_args


def count_tokens(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> int:
    """Tokens of the corpus including one ``</s>`` per document."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return sum(len(x) + 1 for x in ids)


def pretrain_steps(n_tokens: int, block_size: int, batch_size: int, epochs: float, token_budget: int | None) -> int:
    """Optimizer steps: ``epochs`` passes over the packed corpus, capped at ``token_budget`` tokens."""
    per_step = block_size * batch_size
    steps = math.ceil(epochs * max(n_tokens // block_size, 1) / batch_size)
    if token_budget is not None:
        steps = min(steps, math.ceil(token_budget / per_step))
    return max(steps, 1)


def build_trainer(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], stage_dir: Path,
                  rt: Runtime, *, block_size: int, batch_size: int, learning_rate: float, max_steps: int) -> LMTrainer:
    """The pre-training ``SFTTrainer`` (packed, wrapped, loss on every token)."""
    args = SFTConfig(
        **trainer_args(rt, stage_dir, learning_rate=learning_rate, epochs=1, batch_size=batch_size,
                       max_steps=max_steps),
        dataset_text_field="text", packing=True, packing_strategy="wrapped", max_length=block_size,
        completion_only_loss=False, shuffle_dataset=True, dataset_num_proc=None,
    )
    return LMTrainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": texts}),
                      processing_class=tokenizer, callbacks=callbacks(rt, "pretrain"))


def pretrain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], stage_dir: Path,
             rt: Runtime, *, block_size: int, batch_size: int, learning_rate: float, max_steps: int,
             resume: bool = False) -> PreTrainedModel:
    """Train ``model`` in place on ``texts``; resumes from the newest checkpoint in ``stage_dir``."""
    trainer = build_trainer(model, tokenizer, texts, stage_dir, rt, block_size=block_size, batch_size=batch_size,
                            learning_rate=learning_rate, max_steps=max_steps)
    quiet(trainer)
    ckpt = last_checkpoint(stage_dir) if resume else None
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    return trainer.model

"""Stage 2, supervised fine-tuning (paper Sec. 3.3): prompt -> target operation.

TRL ``SFTTrainer`` on prompt-completion rows: prompt and completion are tokenised separately
and the loss covers the completion only (``completion_only_loss=True``); the prompt ends on the
special ``<rec>`` token so no BPE merge crosses the boundary (NOTES). No packing.

LoRA (paper): r=16, alpha=32, dropout 0.05 on every linear projection (``target_modules=
"all-linear"`` = q, k, v, o, gate, up, down; lm_head excluded). ``full_finetune`` trains every
weight instead. The LoRA adapter is saved to ``RUN/sft/adapter`` and merged into the weights of
the returned model (``RUN/sft/final``).
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset
from peft import LoraConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import SFTConfig

from training.runtime import LMTrainer, Runtime, callbacks, last_checkpoint, quiet, trainer_args


def lora_config(r: int = 16, alpha: int = 32, dropout: float = 0.05) -> LoraConfig:
    """The paper's LoRA setting on all linear projections."""
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules="all-linear",
                      task_type="CAUSAL_LM", bias="none")


def sft(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: Dataset, stage_dir: Path, rt: Runtime, *,
        lora: LoraConfig | None, max_length: int, batch_size: int, learning_rate: float, epochs: float,
        resume: bool = False) -> PreTrainedModel:
    """Fine-tune on ``ds`` (columns prompt, completion); returns the model with LoRA merged in."""
    args = SFTConfig(
        **trainer_args(rt, stage_dir, learning_rate=learning_rate, epochs=epochs, batch_size=batch_size),
        packing=False, max_length=max_length, completion_only_loss=True, shuffle_dataset=True,
        dataset_num_proc=None,
    )
    trainer = LMTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer, peft_config=lora,
                         callbacks=callbacks(rt, "sft"))
    quiet(trainer)
    ckpt = last_checkpoint(stage_dir) if resume else None
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    trained = trainer.model
    if lora is None:
        return trained
    trained.save_pretrained(str(stage_dir / "adapter"))
    return trained.merge_and_unload()

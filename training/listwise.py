"""Stage 3 with ``dpo_loss="listwise"``: softmax DPO over the decision's plausible action sets.

The paper's DPO (``training.dpo``) contrasts the user's operation with one negative at a time. The
recommender, though, answers by *candidate scoring*: it ranks every plausible action set of the
decision (``sim.candidates.plausible_sets``: usual operations, the history window's
operations, their actions and inverses, toggles; no-ops left out) by its sequence log-probability
(``training.scoring``). The listwise loss trains exactly that ranking, with all of a decision's sets as
negatives at once (the S-DPO loss of Chen et al. 2024, "On Softmax Direct Preference Optimization
for Recommendation")::

    h_j = log pi(c_j | x) - log ref(c_j | x)            (sequence log-probabilities of candidate j)
    L   = -log softmax_j(beta * h_j)[label]  =  log(1 + sum_{j != label} exp(beta * (h_j - h_label)))

With one negative it is DPO's sigmoid loss. The reference is the SFT model, its log-probabilities
computed once before training by the recommender's own candidate scoring. It matters for the model
as a generator, not as a ranker: on the quickstart (seed 0, 1000 rows) candidate scoring scored 0.242
with it and 0.240 without, but without it greedy decoding fell from 0.14 to 0.00 EM-Acc on the first
100 test contexts (half its answers one action), with it 0.14 (the SFT model's: 0.12).

The negatives are the time-sensitive (usual operations of other hours, operations from earlier in
the window) and conflicting ones (inverses, toggles) the paper's DPO targets, drawn from the same
generator the recommender decodes with. Rows are the ``sft`` train decisions (held-out validation
prompts left out) whose label is one of at least two sets.

Each step runs the prompts once (KV cache kept, with gradients), then every candidate of every
prompt in one pass over that cache repeated per candidate slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import LoraConfig
from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainingArguments

from sim.records import parse_prompt, parse_target
from training.runtime import Runtime, callbacks, last_checkpoint, quiet, trainer_args
from training.scoring import cache_of, left_pad, model_kwargs, score_sets, uses_refs

_MASKED = -1e9  # score of an absent candidate slot


def _right_pad(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    am = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(list(s), dtype=torch.long)
        am[i, :len(s)] = 1
    return ids, am


def candidate_logprobs(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor,
                       cand_ids: Sequence[Sequence[Sequence[int]]], pad: int) -> torch.Tensor:
    """(batch, max candidates) summed log-probabilities of each prompt's candidates (left-padded
    prompts, candidate token lists per prompt); absent slots get ``_MASKED``. Differentiable.

    The prompts run once; their KV cache is then repeated once per candidate slot
    (``batch_repeat_interleave``) and every candidate of every prompt runs in one forward pass over
    it: one pass instead of one per slot (``training.scoring.score_sets``, which never holds all the
    candidates' logits at once, loops over the slots; the log-probabilities are the same)."""
    dev = prompt_ids.device
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cache_kw, keep_last = model_kwargs(base)
    pos = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    first = model(input_ids=prompt_ids, attention_mask=prompt_mask, position_ids=pos, use_cache=True,
                  **({"logits_to_keep": 1} if keep_last else {}))
    n, k = len(cand_ids), max(len(c) for c in cand_ids)
    ids, cam = _right_pad([c[j] if j < len(c) else [pad] for c in cand_ids for j in range(k)], pad)  # row i*k + j
    ids, cam = ids.to(dev), cam.to(dev)
    last_logp = torch.log_softmax(first.logits[:, -1, :].float(), -1).repeat_interleave(k, dim=0)
    total = last_logp.gather(1, ids[:, :1]).squeeze(1)
    width = ids.shape[1]
    if width > 1:
        cache = cache_of(first)
        cache.batch_repeat_interleave(k)  # each prompt's cache once per candidate slot
        cpos = pos[:, -1:].repeat_interleave(k, dim=0) + torch.arange(1, width, device=dev)[None, :]
        am = torch.cat([prompt_mask.repeat_interleave(k, dim=0), cam[:, :-1]], dim=1)
        nxt = model(input_ids=ids[:, :-1], attention_mask=am, position_ids=cpos, use_cache=True, **{cache_kw: cache})
        step = torch.log_softmax(nxt.logits.float(), -1)
        total = total + (step.gather(2, ids[:, 1:, None]).squeeze(2) * cam[:, 1:]).sum(1)
    present = torch.tensor([j < len(c) for c in cand_ids for j in range(k)], device=dev)
    return torch.where(present, total, torch.full_like(total, _MASKED)).view(n, k)


def listwise_loss(logp: torch.Tensor, ref: torch.Tensor, label: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over rows of ``-log softmax(beta * (logp - ref))[label]``; absent slots (``logp`` at
    ``_MASKED``) stay out of the softmax."""
    present = logp > _MASKED / 2
    z = torch.where(present, beta * (logp - ref), torch.full_like(logp, _MASKED))
    return F.cross_entropy(z, label)


class _Collator:
    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def __call__(self, rows: list[dict]) -> dict:
        ids, am = left_pad([r["prompt_ids"] for r in rows], self.pad)
        ref = torch.zeros((len(rows), max(len(r["ref"]) for r in rows)))
        for i, r in enumerate(rows):
            ref[i, :len(r["ref"])] = torch.tensor(r["ref"])
        return {"input_ids": ids, "attention_mask": am, "cand_ids": [r["cand_ids"] for r in rows], "ref": ref,
                "label": torch.tensor([r["label"] for r in rows], dtype=torch.long)}


class ListwiseTrainer(Trainer):
    """``transformers.Trainer`` with the listwise loss (checkpoints, resume, logging as the other stages)."""

    def __init__(self, *args, beta: float, pad: int, **kw) -> None:
        super().__init__(*args, **kw)
        self.beta, self.pad = beta, pad

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logp = candidate_logprobs(model, inputs["input_ids"], inputs["attention_mask"], inputs["cand_ids"], self.pad)
        loss = listwise_loss(logp, inputs["ref"].to(logp.device), inputs["label"].to(logp.device), self.beta)
        return (loss, {"logp": logp}) if return_outputs else loss


def encode(tokenizer: PreTrainedTokenizerBase, ds: Dataset) -> Dataset:
    """Token ids of the prompts and candidates (no special tokens: the prompt ends on ``<rec>``)."""
    prompts = tokenizer(list(ds["prompt"]), add_special_tokens=False)["input_ids"]
    cands = [tokenizer(list(c), add_special_tokens=False)["input_ids"] for c in ds["candidates"]]
    return Dataset.from_dict({"prompt_ids": prompts, "cand_ids": cands, "label": list(ds["label"])})


def candidate_scores(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: Dataset, order: str,
                     batch_size: int = 16) -> list[list[float]]:
    """Every row's candidate log-probabilities under ``model``, by the recommender's own candidate
    scoring (``training.scoring.score_sets``, inference mode: one pass per candidate slot over the
    shared prompt cache, cheaper without gradients than one repeated cache)."""
    was_training = model.training
    model.eval()
    out: list[list[float]] = []
    for i in range(0, len(ds), batch_size):
        chunk = ds[i:i + batch_size]
        sets = [[parse_target(c, order)[0] for c in cands] for cands in chunk["candidates"]]
        usual = [parse_prompt(p).usual for p in chunk["prompt"]] if uses_refs(model) else None
        out += [s.logp.tolist() for s in score_sets(model, tokenizer, chunk["prompt"], sets, order, usual=usual)]
    model.train(was_training)
    return out


def label_top1(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: Dataset, order: str) -> float:
    """Share of rows whose label is the model's best-scored candidate (what the stage raises)."""
    logp = candidate_scores(model, tokenizer, ds, order)
    return float(np.mean([int(np.argmax(lp)) == lab for lp, lab in zip(logp, ds["label"], strict=True)]))


def listwise(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, ds: Dataset, stage_dir: Path, rt: Runtime, *,
             order: str, lora: LoraConfig | None, beta: float, batch_size: int, learning_rate: float, epochs: float,
             resume: bool = False) -> PreTrainedModel:
    """Train ``model`` (the SFT policy, also the reference) on ``ds`` (prompt, candidates in ``order``,
    label) with the listwise loss; LoRA when ``lora`` is given (merged into the returned model)."""
    enc = encode(tokenizer, ds).add_column("ref", candidate_scores(model, tokenizer, ds, order))
    if lora is not None:
        from peft import get_peft_model

        model = get_peft_model(model, lora)
    args = TrainingArguments(**trainer_args(rt, stage_dir, learning_rate=learning_rate, epochs=epochs,
                                            batch_size=batch_size, warmup=0.0),
                             remove_unused_columns=False)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainer = ListwiseTrainer(model=model, args=args, train_dataset=enc, data_collator=_Collator(tokenizer),
                              callbacks=callbacks(rt, "dpo"), beta=beta, pad=pad)
    quiet(trainer)
    ckpt = last_checkpoint(stage_dir) if resume else None
    trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    trained = trainer.model
    return trained.merge_and_unload() if lora is not None else trained

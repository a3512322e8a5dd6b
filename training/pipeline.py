"""The training pipeline: ``main(TrainConfig)`` runs pre-training -> SFT -> DPO into a run directory.

Run directory (read by the recommender and the evaluation)::

    RUN/config.json        resolved TrainConfig + stages_run, stage inits, parameter count, device
    RUN/metrics.jsonl      one JSON per logged step: stage, step, loss, tokens_per_s, epoch, lr
    RUN/tokenizer/         the tokenizer every stage uses
    RUN/<stage>/checkpoint-N   Trainer checkpoints (what --resume returns to)
    RUN/<stage>/final/     that stage's model, LoRA merged (ablation: base LM = pretrain/final,
                           FT only = sft/final of a --stages sft run, PT+FT = sft/final, PT+FT+DPO = dpo/final)
    RUN/model/             the FINAL model (last stage run) + tokenizer, safetensors
    RUN/model/README.md    its model card (Hugging Face metadata, stages, usage)
    RUN/.homepilot.json    what HomePilot writes here (``sim.outdir``: only a new, empty or run folder is used)

Each stage starts from the newest finished earlier stage in the run (sft from pretrain/final,
dpo from sft/final), else from the preset's random init (or ``--base-model``).

``--resume`` continues a run with the options it was started with: any option that changes the
result (all but ``NOT_RESULTS``; the data and general text by content) must be the same, and a
``--stages`` list ending before the stage ``RUN/model`` came from needs ``replace_model``.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import datasets
import torch
from accelerate import PartialState
from huggingface_hub import ModelCard, ModelCardData
from peft import LoraConfig
from transformers.utils import logging as hf_logging

from sim import outdir
from sim.dataset.files import dataset_digest, validation_rule
from sim.records import ORDERS
from training import data as D
from training.dpo import dpo, preference_margin
from training.listwise import label_top1, listwise
from training.models import PRESETS, build_model, count_parameters, load_model
from training.pretrain import count_tokens, pretrain, pretrain_steps
from training.runtime import ProgressFn, Runtime, detect_device, is_done, mark_done, pin_threads, save_final, software
from training.sft import lora_config, sft
from training.tokenizer import load_tokenizer, train_tokenizer

STAGES: tuple[str, ...] = ("pretrain", "sft", "dpo")
DPO_LOSSES: tuple[str, ...] = ("sigmoid", "listwise")


def _is_main() -> bool:
    """True in the main process of an ``accelerate launch`` (and in a plain run)."""
    return PartialState().is_main_process


def _barrier() -> None:
    PartialState().wait_for_everyone()


@dataclass(frozen=True)
class Hyper:
    """Per-preset hyperparameters; every ``None`` field of ``TrainConfig`` is filled from here."""

    vocab_size: int
    block_size: int  # pre-training row length, tokens
    pretrain_batch_size: int
    pretrain_lr: float
    pretrain_epochs: float
    pretrain_tokens: int | None  # token budget of pre-training (caps the epochs), None = no cap
    sft_batch_size: int
    sft_lr: float
    sft_epochs: float
    sft_max_length: int  # longer prompt+completion rows are dropped (counted in the model card)
    sft_max_rows: int | None
    dpo_batch_size: int
    dpo_lr: float
    dpo_epochs: float
    dpo_beta: float
    dpo_max_rows: int | None
    # preference stage: "sigmoid" = the paper's DPO on the dpo config's pairs (TRL, training.dpo);
    # "listwise" = softmax DPO over each decision's plausible sets (training.listwise)
    dpo_loss: str = "sigmoid"
    full_finetune: bool = False  # SFT trains every weight instead of LoRA
    # SFT takes at least this many optimizer steps (more epochs over a small dataset): the
    # from-scratch model needs steps, not epochs, to learn to read its prompt
    sft_min_steps: int = 0


# CPU presets are sized for 2 cores (tiny: ~5 min for all three stages on the quickstart
# dataset). tiny fine-tunes every weight: LoRA adapters on a 128-wide model are nearly as large as
# the weights, and full fine-tuning ran 1.6x faster per row and reached a lower loss (quickstart
# preset, 600 rows, one pre-trained model, 8-operation prompts: EM-Acc 0.083 vs 0.027 with LoRA).
# LoRA on a small model needs a larger step than the paper's 4e-4 on 7B weights. Pre-training on
# the stored rows (pretrain_view="full") beat the actions-only view: SFT then starts at loss 2.9
# instead of 7.9 (descriptions already seen). The from-scratch model needs *optimizer steps* to
# learn to copy an operation out of the prompt: on a pure copy task (target = the first usual
# operation) it copied 10% of test prompts after 75 steps and 50% after 375, so tiny fine-tunes
# 600 steps of 4 rows (quickstart: EM-Acc 0.127 vs 0.017-0.083 for 75-225 steps of 8; lr 5e-3: 0.090); since
# generator 0.5.0 (prompts ~18% longer; the quickstart took 925 s idle at 600 steps) 500 steps (2000 rows).
# Generator 0.4.0 (device state in prompts, usual operations most likely last), candidate scoring,
# 400 test contexts, seed 0, one pre-trained model per comparison: 1 SFT epoch (~570 steps of 4,
# ~135 s idle) 0.153-0.178; 2 epochs 0.200 (twice the time: over the quickstart budget); 3 epochs
# (most likely first) 0.148 vs 0.135 at 1; lr 4e-3 0.143; batch 2 for the same rows 0.165; twice
# the distinct rows (sft_rate 1.0) in one epoch 0.175; rooms renamed at random in half the rows
# 0.143. None reaches the time-of-day frequency baseline (0.255 on those contexts).
# tiny's SFT takes at least 500 optimizer steps (sft_min_steps): on a ~300-operation imported log
# (tests/agent/test_imported_log.py, 48 test contexts) 2 epochs were 108 steps and the model gave
# one answer 58% of the time (6 distinct per 100, EM-Acc 0.125); 540 steps: 21 distinct per 100,
# top answer 25%, EM-Acc 0.250 (time-of-day frequency: 0.52). The quickstart's one epoch is ~570.
# Learning curve (generator 0.5.0, quickstart seed 0, one pre-trained model, PT+FT, candidate
# scoring, 600 test contexts): 600 SFT steps of 4 rows EM-Acc 0.183, 777 (one epoch) 0.202, 2000
# (2.6 epochs) 0.225; time-of-day frequency 0.233, "first usual operation that is not a no-op"
# 0.24. The model underfits (0.23 on its own training contexts after one epoch): steps buy ~0.02
# per doubling. LMTrainer (training.runtime) made an SFT step 1.6x cheaper, so tiny now takes 800
# steps in the time 500 took. On-policy DPO (rejected = the SFT model's own wrong pick, 616 pairs,
# lr 1e-3) fell to 0.097: it pushes the model off the usual operations, which are right most often.
# A listwise loss (tried, not adopted): cross-entropy over the decision's plausible sets' sequence
# log-probabilities (training.scoring's sets, no-ops dropped, the prompt's KV cache shared), same seed-0
# contexts: from the pre-trained model, 3200 rows 0.215; after the 800 token-SFT steps, 3200 more
# listwise rows 0.245 (twice the compute; 2000 token steps gave 0.225). That 0.245 model answers the
# first usual operation not already in place 290 of 600 times (113 right), a window operation 48
# times (0 right; such labels are 2.3% of train contexts), another single/inverse/toggle 85 times
# (3 right): it is a noisy copy of the rule "first usual operation not in place", which alone
# scores 0.293 (agent.baselines.usual, the "Usual" row of the report). It cannot learn even that
# rule in the budget: 800 steps on the rule's own answers (a deterministic function of the prompt)
# give the rule's answer on 53% of test contexts (72% where it is the last-written usual operation,
# 29% where that one is already in place and it must read the state) and EM-Acc 0.215; the same
# script on the labels 0.202 (43% agreement); 300 steps on the rule then 500 on the labels 0.193;
# labels with a usual list that leaves out operations already in place 0.212. Reading the prompt
# is what the 1M-parameter model does not learn in ~1M tokens of fine-tuning.
# Nor does size alone (H200, same 600 contexts, benchmarks/results/lm_scaling.md): base (30M) as below
# 0.182; base fine-tuning every weight, 4 epochs at 1e-3, 0.228 (seed 1: 0.230); small 0.162. The same
# 30M model on 6x the distinct SFT rows (160 homes, every operation, one epoch) reached 0.255 (PT+FT):
# data, not parameters, moved it, and ~20k rows do not fit a 2-core budget. base's pre-training below
# is short (~55 steps on the quickstart corpus, loss 4.1; small reaches 1.05): not yet measured longer.
# tiny, quickstart seed 0: 3x the pre-training tokens 0.218 (the preset's 0.230); DPO on 1000 mined pairs
# 0.222; DPO on 1000 (label, opposite of the label) pairs 0.065 (collapsed); SFT loss on the action
# tokens weighted 5x the description's 0.215. Session 10 (generator 0.6.0, seed 0, PT+FT 0.223): pre-training
# blocks of 512 tokens instead of 256 (the SFT rows are ~350 tokens long) 0.215; the SFT loss over the
# whole prompt as well as the completion (short answers after long prompts, little data) 0.225 at 1.3x
# the step time; on the PT+FT+DPO model (0.230), a bias per candidate origin (usual operation 1-6,
# window operation, other) fitted on 400 held-out prompts 0.252, scoring only the usual operations 0.260
# on test but 0.235 on the held-out prompts (0.238 unrestricted), so validation would not choose it. For
# 212 of the 600 test contexts the label is none of the scored sets (no-ops left out): the ceiling is 0.65.
# Session 11 (generator 0.7.0, 600 test contexts drawn with seed 0; seed 1 = reproduce's seed-1 dataset and
# run): tiny's preference stage is the listwise loss (training.listwise: softmax DPO over the decision's
# plausible sets, what candidate scoring ranks). From the same PT+FT model (0.227 / 0.215), 1000 rows at
# 5e-4: 0.242 (beta 1, reference = SFT) and 0.240 (no reference; its greedy decoding fell to 0.00) on
# seed 0, 0.240 (no reference) on seed 1, where the paper's pairwise DPO (160 pairs of the dpo config)
# gave 0.232 / 0.217; 2000 rows 0.245 (twice the time), lr 2e-3 0.220. tiny takes 800 rows: the
# quickstart trains the stage twice (main and text-first) and must stay within 15 minutes with the
# install. Measured and not adopted: contextual calibration (score minus a * the score
# under a content-free prompt, three such prompts, a 0.25-1): accuracy flat or down (to 0.06), the top
# answer's share below 0.10 only where accuracy fell; length normalisation (log P / tokens^a): +0.008
# on seed 0 at a = 0.75, -0.025 on seed 1; SFT on the rows whose label is a plausible set only: 0.237
# vs 0.227 (seed 0), 0.203 vs 0.215 (seed 1); torch.compile of the tiny model: 6.55 vs 6.89 eager
# steps/s after 33 s of compiling (and again for each new sequence length).
# Session 12: SFT+DPO prompts with a history window of 4 (2) operations instead of 8, listwise stage, from
# the same pre-trained models: 0.253 (0.250) vs 0.252 on seed 0, 0.228 vs 0.220 on seed 1 (600 contexts):
# the window's +0.026 under pairwise DPO (docs/reproduce, generator 0.7.0 pairwise run) does not carry
# over; the stored 8 stay. small takes tiny's listwise stage (so the model-size study of reproduce
# compares one recipe at two sizes); base keeps the paper's pairwise DPO.
# Session 14, on another machine (AVX512/AMX CPU, torch 2.13.0, transformers 5.24.0; training.runtime.software is
# now in config.json and report.json): the same seed-0 quickstart gave PT+FT+DPO 0.235 (the docs' machine: 0.252),
# PT+FT 0.220, seed 1 0.217 (0.220); a rerun on this machine repeats 0.235 to the last digit, so a recipe
# comparison on one seed is only meaningful on one machine, and differences under ~0.02 are rounding-order noise.
# From the same pre-trained model unless said (seed 0, 600 test contexts, baseline 0.235): an EMA of the weights
# (decay 0.99) in SFT and the preference stage 0.230; the same ~1.1M parameters as 8 layers x 96 (pre-trained
# anew) 0.252 on seed 0 but 0.197 on seed 1 (0.217), at 1.3x (SFT) and 1.8x (preference stage) the step time; 2
# layers x 192 0.243 (seed 0); averaging candidate log-probs over prompts with history windows 8/6/4/3/2 at test
# 0.233-0.240 (the model barely reads its window); an ensemble of those four seed-0 models 0.242 (pairs
# 0.235-0.253): they make the same mistakes (the top answer's share rises to 0.19), so the shortfall is bias in
# what the recipe teaches, not variance between runs. Answer length: the model answers one action for 528 of 600
# contexts where 434 labels are one action; right on 43% of the one-action labels among its candidates but 16% of
# the two-action ones; a bonus per extra action at scoring gives at most 0.243. What the GBDT reranker uses that the
# LM does not show it reads (its LightGBM gain): the usual-list rank 0.21, whether the set is a no-op 0.17 (candidate
# scoring drops no-ops), minutes since the device was last operated 0.09, the candidate room's readings (illuminance,
# occupancy, temperature, humidity: 0.19 together), the minute of day 0.05: time arithmetic over the window and
# numeric readings, which the prompt holds only as clock times and decimal numbers. The LM ignores the readings:
# the seed-0 model scores 0.235 with the environment section emptied and 0.230 with another context's (0.235).
# Nor recency made explicit: each listed device's state extended with the minutes since its last operation in
# the window, bucketed ([ago][5|15|30|60|100], every sft prompt rewritten), SFT + listwise from the same
# pre-trained models: 0.215 on seed 0 (0.235), 0.217 on seed 1 (0.217). By candidate origin, the LM's answers that
# are not usual operations are right 3/128 + 2/59 (seed 0) and 1/110 + 2/61 (seed 1); its best-scored usual
# operation alone scores 0.285 / 0.273 on test, 0.230 / 0.252 on the held-out prompts (all sets: 0.221 / 0.210).
# Adopted at decoding, not in training: agent.calibrate chooses each model's candidate pool on its held-out prompts
# (sim.candidates.restrict_pool; RecommenderConfig.pool).
# Session 18 (benchmarks/lm_vs_prior.py, results/lm_vs_prior.md; the pinned quickstart runs of seeds 0 / 1 / 2, 600 test
# contexts): a conditional logit on the candidate's origin alone (usual operation 1-6, not usual, in the window,
# several actions), fitted on the held-out prompts, scores 0.310 / 0.295 / 0.315 on test, the LM's usual-pool answers
# 0.295 / 0.263 / 0.255, the logit with the LM's log-probability as one more feature 0.310 / 0.275 / 0.320: the LM's
# scores add nothing the origin does not give (+0.036 / +0.031 / +0.003 on the held-out prompts it was fitted on).
# Its answers spread over the usual list like the labels do (seed 0: positions 1-6 answered 204/134/100/72/49/41
# times, labels 121/82/71/33/24/25, the rule 325/171/76/17/8/3), though it has the order: its log-probabilities
# centred within a decision's usual operations are 0.8-1.5 nats lower at position 2 than 1 and 3.3 lower at 6 (all
# seeds), but order and value type explain 21-25% of their variance; the rest (std ~2.7 nats) does not carry to the
# test days and homes (LM beside the origin: +0.006 / -0.008 / +0.008 on the training homes' later days,
# -0.040 / -0.088 / -0.018 on the unseen homes). The listwise stage from the same SFT models, seed 0
# (0.295) / seed 1 (0.263): on the usual operations only (the pool the recommender answers from; rows whose label is
# one, 1,399 / 1,404) 0.280 / 0.277; those rows restricted and the rest kept whole, 0.287 (seed 0); the pool rows for
# 3 epochs 0.290 (seed 0) while its probe of training rows went from 0.47 to 0.58 right: it memorises rows instead of
# learning where the label sits. Weight decay in SFT + listwise from the same pre-trained model (seed 0; the recipe
# rerun so: 0.295 exactly): 0.287 at 0.1, 0.283 at 1.0. The whole tiny recipe on a 160-home dataset of seed 0
# (lm_scaling.more_data; its 3,200 SFT rows from 140 training homes instead of 36, same steps): 0.278 on the same
# test contexts (training homes' later days 0.291, unseen homes 0.187; shipped 0.301 / 0.253). 1,600 SFT steps (2
# epochs, same pre-trained model): test 0.293 (0.295), held-out prompts 0.275 (0.224), top share 0.125 (0.150).
# Session 19, same protocol: rooms renamed at random (one injective map per row over prompt, label and candidates) in
# half the SFT and listwise rows 0.288 (seed 0; 0.295); readings rounded in every prompt (temperature to 1 C, humidity
# to 10 %, illuminance to one significant digit: the digits the model ignores) SFT + listwise 0.302 / 0.263 (seeds 0 / 1;
# 0.295 / 0.263), the whole recipe on the rounded dataset, pre-training included, 0.288 (seed 0). Neither adopted.
# A time-based validation slice (the train period's last 2 days, 382 prompts, out of every stage; seed 0): the recipe
# so trained scores 0.280 on test; on the slice the LM 0.257, the origin logit 0.319 (test 0.317), with the LM's scores
# 0.309: like test, unlike the random held-out prompts (47% of labels not a usual operation; the slice 38%, test 41%).
# Adopted that night (sim.dataset.files.is_held_out): docs/reproduce PT+FT+DPO 0.280 / 0.265 / 0.245 (0.295 / 0.263 /
# 0.255 with the random slice), its fitted gate delivering 1.24 / 1.22 / 1.39x on test where it promised (1.10-1.14x).
# Session 20, from those pinned pre-trained models: attention_dropout 0.1 in SFT + listwise (the Llama has no other
# dropout; none as shipped) 0.297 / 0.247 on seeds 0 / 1 (0.280 / 0.265): a retrain's spread, not adopted. Summing the
# PT+FT+DPO and FT-only models' normalised scores over the usual pool: 0.280 / 0.262 / 0.268 (0.280 / 0.265 / 0.245).
# Distilling a cross-fitted GBDT reranker (agent.baselines.gbdt, fitted on the other half of the train rows) into the
# listwise stage, soft targets over the same plausible sets (seed 0, from the pinned SFT model): half label, half
# teacher 0.278; the teacher alone on all 1,793 rows for 2 epochs 0.278 (0.280; the GBDT itself 0.390). Not adopted.
# Session 21, Refs (TrainConfig.refs, adopted): every target names which usual operation of the prompt it is, one token
# after <act> (``<act> [k] ACTIONS``, k = 1 for the most likely, 0 for none of them; sim.records ref): choosing a listed
# operation becomes one classification token instead of a copy of 4-8 tokens the model could not learn to make (see
# session 5's copy task above). SFT + listwise from the pinned pre-trained models of seeds 0 / 1 / 2 (benchmarks/
# lm_vs_prior.py, usual pool): test 0.305 / 0.300 / 0.272 (0.280 / 0.265 / 0.245 without), validation prompts 0.304 /
# 0.246 / 0.265 (0.257 / 0.213 / 0.249), every plausible set 0.270 / 0.242 / 0.228 (0.215 / 0.205 / 0.220), top answer
# share 0.110 / 0.112 / 0.155 (0.138 / 0.117 / 0.187), with the usual list also numbered in the prompt; the ref in the
# targets alone (the prompt as stored, what was adopted), seed 0: test 0.310, validation 0.285.
# Session 22, the readings next to the usual operations (the GBDT's room occupancy and illuminance are worth ~0.03
# EM-Acc each to it, benchmarks/gbdt_features.py): each usual operation of every SFT, listwise and scored prompt
# followed by its room's [occupancy][v] [illuminance][bucket] (bucket 0 / 25 / 50 / 100 / high lux), SFT + listwise
# from the pinned refs pre-trained models, usual pool: test 0.310 / 0.265 on seeds 0 / 1 (0.310 / 0.287 as pinned),
# validation 0.293 / 0.231 (0.285 / 0.228); every plausible set 0.292 / 0.252 (0.265 / 0.235). Not adopted.
HYPER: dict[str, Hyper] = {
    "tiny": Hyper(vocab_size=1024, block_size=256, pretrain_batch_size=16, pretrain_lr=3e-3, pretrain_epochs=3,
                  pretrain_tokens=400_000, sft_batch_size=4, sft_lr=2e-3, sft_epochs=1, sft_max_length=768,
                  sft_max_rows=3200, dpo_batch_size=4, dpo_lr=5e-4, dpo_epochs=1, dpo_beta=1.0, dpo_max_rows=800,
                  dpo_loss="listwise", full_finetune=True, sft_min_steps=800),
    "small": Hyper(vocab_size=2048, block_size=512, pretrain_batch_size=16, pretrain_lr=1.5e-3, pretrain_epochs=3,
                   pretrain_tokens=2_000_000, sft_batch_size=8, sft_lr=1.5e-3, sft_epochs=2, sft_max_length=1024,
                   sft_max_rows=3000, dpo_batch_size=8, dpo_lr=5e-4, dpo_epochs=1, dpo_beta=1.0, dpo_max_rows=800,
                   dpo_loss="listwise"),
    # GPU preset. The paper's SFT (LoRA, 2 epochs at 4e-4: made for pre-trained 7B weights) scored 0.182 on the
    # from-scratch 30M model; every weight, 4 epochs at 1e-3 scored 0.228 / 0.230 on seeds 0 / 1 (H200,
    # benchmarks/results/lm_scaling.md). ``--lora --sft-epochs 2 --sft-lr 4e-4`` gives the paper's recipe.
    "base": Hyper(vocab_size=4096, block_size=1024, pretrain_batch_size=32, pretrain_lr=6e-4, pretrain_epochs=3,
                  pretrain_tokens=None, sft_batch_size=16, sft_lr=1e-3, sft_epochs=4, sft_max_length=2048,
                  sft_max_rows=None, dpo_batch_size=16, dpo_lr=5e-5, dpo_epochs=1, dpo_beta=0.1, dpo_max_rows=None,
                  full_finetune=True),
}


@dataclass
class TrainConfig:
    """``homepilot train``: every option of a training run. ``None`` = the preset's value."""

    data: Path  # dataset directory (sim.dataset.schema layout)
    out: Path  # run directory
    preset: str = "tiny"  # tiny | small | base: model size and hyperparameters
    stages: tuple[str, ...] = STAGES  # subset of pretrain, sft, dpo, run in that order
    order: str = "action-first"  # SFT target order: action-first | text-first
    # SFT and preference targets name which usual operation of the prompt they are (``<act> [k]
    # ACTIONS``, sim.records ref; the model's config records it as ``completion_refs``, read by the
    # recommender): see "Refs" in the preset notes for what it measured
    refs: bool = True
    base_model: Path | None = None  # a local HF causal LM (+ its tokenizer) instead of the preset's Llama
    resume: bool = False  # continue a run: skip finished stages, resume the newest checkpoint
    replace_model: bool = False  # --resume whose last stage precedes the run's final model may replace RUN/model
    full_finetune: bool | None = None  # SFT trains every weight instead of LoRA (None: the preset's)
    seed: int = 0  # model init, data order and dropout
    device: str = "auto"  # auto | cpu | cuda
    general_text: Path | None = None  # local UTF-8 text file mixed into pre-training
    general_ratio: float = 1.0  # general-domain characters per domain character (paper 1:1)
    pretrain_view: str = "full"  # full: as stored (+ env, desc) | actions: time + actions (the prompt's history layout)
    # operations in the SFT/DPO prompts' history window, rebuilt from the operations config
    # (sim.prompts.rewindow); None = the prompts as stored (sim.prompts.HISTORY_K). The recommender
    # reads the window the run was trained with (agent.evaluate.run_history_k).
    history_k: int | None = None
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    logging_steps: int = 5  # optimizer steps per metrics.jsonl line
    save_steps: int = 50  # optimizer steps per checkpoint
    vocab_size: int | None = None
    block_size: int | None = None
    pretrain_batch_size: int | None = None
    pretrain_lr: float | None = None
    pretrain_epochs: float | None = None
    pretrain_tokens: int | None = None
    sft_batch_size: int | None = None
    sft_lr: float | None = None
    sft_epochs: float | None = None
    sft_max_length: int | None = None
    sft_max_rows: int | None = None
    sft_min_steps: int | None = None
    dpo_batch_size: int | None = None
    dpo_lr: float | None = None
    dpo_epochs: float | None = None
    dpo_beta: float | None = None
    dpo_max_rows: int | None = None
    dpo_loss: str | None = None  # sigmoid | listwise (DPO_LOSSES)
    hyper_from_preset: list[str] = field(default_factory=list)  # derived: which fields the preset filled

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        self.base_model = Path(self.base_model) if self.base_model else None
        self.general_text = Path(self.general_text) if self.general_text else None
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        if isinstance(self.stages, str):
            self.stages = tuple(s.strip() for s in self.stages.split(",") if s.strip())
        bad = [s for s in self.stages if s not in STAGES]
        if bad or not self.stages:
            raise ValueError(f"stages must be a non-empty subset of {', '.join(STAGES)}, got {self.stages!r}")
        self.stages = tuple(s for s in STAGES if s in self.stages)
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be one of auto, cpu, cuda, got {self.device!r}")
        if self.pretrain_view not in D.PRETRAIN_VIEWS:
            raise ValueError(f"pretrain_view must be one of {', '.join(D.PRETRAIN_VIEWS)}, got {self.pretrain_view!r}")
        if self.general_ratio < 0:
            raise ValueError(f"general_ratio must be >= 0, got {self.general_ratio}")
        if self.lora_r < 1 or not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_r must be >= 1 and lora_dropout in [0, 1), got {self.lora_r}, {self.lora_dropout}")
        if self.history_k is not None and self.history_k < 1:
            raise ValueError(f"history_k must be >= 1 or None, got {self.history_k}")
        if self.logging_steps < 1 or self.save_steps < 1:
            raise ValueError("logging_steps and save_steps must be >= 1")
        hyper = HYPER[self.preset]
        for f in fields(Hyper):
            if getattr(self, f.name) is None and getattr(hyper, f.name) is not None:
                setattr(self, f.name, getattr(hyper, f.name))
                self.hyper_from_preset.append(f.name)
        if self.dpo_loss not in DPO_LOSSES:
            raise ValueError(f"dpo_loss must be one of {', '.join(DPO_LOSSES)}, got {self.dpo_loss!r}")
        if self.dpo_beta is not None and self.dpo_beta <= 0:
            raise ValueError(f"dpo_beta must be > 0, got {self.dpo_beta}")

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
                for k, v in asdict(self).items()}


# ---------------------------------------------------------------- helpers


def _stage_summary(metrics_path: Path, stage: str) -> dict:
    rows = [json.loads(line) for line in metrics_path.read_text().splitlines()] if metrics_path.is_file() else []
    rows = [r for r in rows if r["stage"] == stage]
    if not rows:
        return {}
    speeds = [r["tokens_per_s"] for r in rows[1:]] or [rows[0]["tokens_per_s"]]
    return {"steps": rows[-1]["step"], "first_loss": rows[0]["loss"], "last_loss": rows[-1]["loss"],
            "median_tokens_per_s": statistics.median(speeds)}


#: TrainConfig fields a resume may change: where the files are, how the run logs and checkpoints,
#: which stages this call runs, the device (a resumed run may move; config.json records the one
#: used), vocab_size (RUN/tokenizer fixes it once trained; config.json records its length).
#: ``data`` and ``general_text`` are compared by content (``_inputs``), not by path.
NOT_RESULTS = frozenset({"data", "out", "resume", "replace_model", "stages", "device", "logging_steps", "save_steps",
                         "hyper_from_preset", "general_text", "vocab_size"})
RUN_PATHS = ("config.json", "metrics.jsonl", "tokenizer", *STAGES, "model")  # what a run writes (sim.outdir)


def _inputs(cfg: TrainConfig) -> dict[str, str | None]:
    """sha256 of what the run reads: the train splits of pretrain, sft and dpo, and the general-domain
    text (None without one); and the validation slice every stage leaves out
    (``sim.dataset.files.validation_rule``)."""
    text = cfg.general_text
    return {"data": dataset_digest(cfg.data, ("pretrain", "sft", "dpo")),
            "general_text": hashlib.sha256(text.read_bytes()).hexdigest() if text and text.is_file() else None,
            "validation": validation_rule(cfg.data)}


def _check_base_model(path: Path) -> None:
    """A ``--base-model`` folder must hold what ``save_pretrained`` writes: config, safetensors, tokenizer."""
    weights = ("model.safetensors", "model.safetensors.index.json")
    if not path.is_dir():
        raise FileNotFoundError(f"--base-model {path}: no such folder")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"--base-model {path}: no config.json (a save_pretrained folder is needed)")
    if not any((path / w).is_file() for w in weights):
        raise FileNotFoundError(f"--base-model {path}: no model.safetensors (HomePilot loads safetensors weights "
                                "only: save the model with save_pretrained)")
    if not any((path / t).is_file() for t in ("tokenizer.json", "tokenizer_config.json")):
        raise FileNotFoundError(f"--base-model {path}: no tokenizer.json or tokenizer_config.json (save the "
                                "tokenizer next to the model)")


def _check_out_dir(cfg: TrainConfig, inputs: dict[str, str | None]) -> None:
    """The run directory may take this run: new, empty or HomePilot's run (``sim.outdir``); an existing
    run needs ``--resume`` with the same options that affect results and, to replace ``RUN/model``
    with an earlier stage's model, ``--replace-model``."""
    outdir.check(cfg.out, "run")
    stored = cfg.out / "config.json"
    if not stored.is_file():
        return
    if not cfg.resume:
        raise FileExistsError(f"run directory {cfg.out} already holds a run; pass --resume or choose a new --out")
    old = json.loads(stored.read_text())
    new = {**cfg.to_json(), "inputs": inputs}
    diff = [f"{k}: run {old[k]!r}, now {new[k]!r}" for k in new
            if k not in NOT_RESULTS and k != "inputs" and k in old and old[k] != new[k]]
    if "inputs" in old:
        diff += [f"{k} contents: run sha256 {str(old['inputs'].get(k))[:12]}, now {str(v)[:12]}"
                 for k, v in inputs.items() if k != "validation" and old["inputs"].get(k) != v]
        if old["inputs"].get("validation") != inputs["validation"]:  # absent: before the time-based slice
            diff.append(f"validation slice: run {old['inputs'].get('validation') or 'a random 1 in 10 of the prompts'}, "
                        f"now {inputs['validation']}")
    else:  # a run from before input digests: compare the paths
        diff += [f"{k}: run {old.get(k)!r}, now {new[k]!r}" for k in ("data", "general_text") if old.get(k) != new[k]]
    if "refs" not in old and cfg.refs:  # a run from before refs learned targets without them
        diff.append(f"refs: run False, now {cfg.refs!r}")
    if diff:
        raise ValueError(f"--resume with options that differ from {stored} ({'; '.join(diff)}): rerun with the "
                         "run's options or choose a new --out")
    final = str(old.get("final_from") or "").split("/")[0]
    last = cfg.stages[-1]
    if final in STAGES and STAGES.index(last) < STAGES.index(final) and not cfg.replace_model:
        raise ValueError(f"--resume --stages {','.join(cfg.stages)} would replace {cfg.out / 'model'} (now {final}/final) "
                         f"with {last}/final; pass --replace-model to do that, or add the later stages")


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").is_file() or (path / "tokenizer_config.json").is_file()


def _tokenizer(cfg: TrainConfig, corpus: list[str]):
    path = cfg.out / "tokenizer"
    if _has_tokenizer(path):
        return load_tokenizer(path)
    if _is_main():
        tok = load_tokenizer(cfg.base_model) if cfg.base_model else train_tokenizer(corpus, vocab_size=cfg.vocab_size)
        tok.save_pretrained(str(path))
    _barrier()
    return load_tokenizer(path)


def _init_model(cfg: TrainConfig, tokenizer, before: tuple[str, ...]):
    """(model, where it came from): the newest finished stage in ``before``, else the initial model."""
    for stage in reversed(before):
        if is_done(cfg.out / stage):
            return load_model(cfg.out / stage / "final"), f"{stage}/final"
    if cfg.base_model:
        return load_model(cfg.base_model), str(cfg.base_model)
    return build_model(cfg.preset, tokenizer, cfg.seed), f"random init ({cfg.preset}, seed {cfg.seed})"


def sft_epochs(rows: int, batch_size: int, epochs: float, min_steps: int) -> float:
    """The SFT epochs actually run: ``epochs``, or more when that many would take fewer than
    ``min_steps`` optimizer steps of ``batch_size`` rows (a small imported log)."""
    return max(epochs, min_steps * batch_size / rows) if rows else epochs


def write_model_card(cfg: TrainConfig, info: dict) -> None:
    """Write ``RUN/model/README.md``: Hugging Face metadata (``huggingface_hub.ModelCardData``) and what
    the model is, how it was trained and how to use it. Paths appear by base name only."""
    base = f", from {cfg.base_model.name}" if cfg.base_model else ""
    dataset = cfg.data.resolve().name
    data = ModelCardData(license="apache-2.0", library_name="transformers", datasets=[dataset],
                         pipeline_tag="text-generation",
                         tags=["homepilot", "smart-home", "operation-recommendation", "devpiolt"])
    sft_kind = ("full fine-tune" if cfg.full_finetune
                else f"LoRA r={cfg.lora_r} alpha={cfg.lora_alpha} dropout={cfg.lora_dropout} all-linear")
    general = (f"; general-domain text `{cfg.general_text.name}` mixed into pre-training at {cfg.general_ratio}:1"
               if cfg.general_text else "")
    lines = [f"# HomePilot recommender ({cfg.preset}{base})", "",
             "Smart-home operation recommender after *DevPiolt: Operation Recommendation for IoT Devices at Xiaomi "
             "Home* (Wang et al., 2025): a causal LM trained by `homepilot train` on the HomePilot dataset "
             f"`{dataset}`. The prompt (`sim.prompts.prompt_text`: recent operations, readings, candidate devices "
             "and their state, usual operations; it ends on `<rec>`) is completed with the next operation, "
             f"`<act> ACTIONS <desc> TEXT` (order: **{cfg.order}**).", "",
             "**The model needs HomePilot's decoding.** Its free-running text is not guaranteed to be a well-formed "
             "action list for the home: use it through `agent.recommender`, whose legal-only decoding "
             "(`agent.automaton`) or candidate scoring (`search=\"candidates\"`, `training.scoring`) produces "
             "well-formed, legal actions and a confidence for the exposure gate.", "",
             "## Training", "",
             f"- parameters: {info['n_parameters']:,}; vocabulary: {info['vocab_size']}; device: {info['device']}",
             f"- stages run: {', '.join(info['stages_run'])}; SFT: {sft_kind}{general}", "",
             "| stage | init | rows | steps | first loss | last loss | median tokens/s | seconds | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for stage in STAGES:
        s = info["stages"].get(stage)
        if not s:
            continue
        init = cfg.base_model.name if cfg.base_model and s.get("init") == str(cfg.base_model) else s.get("init", "")
        notes = "; ".join(f"{k}={v}" for k, v in s.items()
                          if k in ("loss", "dropped_too_long", "margin_before", "margin_after", "label_top1_before",
                                   "label_top1_after", "general_ratio"))
        lines.append(f"| {stage} | {init} | {s.get('rows', '')} | {s.get('steps', '')} "
                     f"| {s.get('first_loss', float('nan')):.3f} | {s.get('last_loss', float('nan')):.3f} "
                     f"| {s.get('median_tokens_per_s', 0):.0f} | {s.get('seconds', 0):.0f} | {notes} |")
    lines += ["", f"This folder is the last stage's model (`{info['final_from']}`); the run directory also keeps "
              "each stage's: " + ", ".join(f"`{st}/final`" for st in info["stages_run"]) + ".", "",
              "## How to use", "",
              "```bash", "homepilot evaluate --data DATASET --runs RUN --out REPORT", "```", "",
              "```python", "from agent.recommender import Recommender", "",
              "rec = Recommender.from_run(\"RUN\")  # RUN/model + the completion order in RUN/config.json",
              "print(rec.recommend(context))  # an agent.context.Context or a prompt string", "```", "",
              "`homepilot train` then calibrates the model on held-out prompts (unless `--no-calibrate`) and writes "
              "`recommender.json` beside it: the confidence's temperature and bias, the candidate pool chosen "
              "(`usual` answers only with one of the prompt's usual operations) and the gate's operating point, "
              "which `Recommender.from_run` and every `homepilot` command apply.", "",
              "Plain `transformers`: `AutoModelForCausalLM.from_pretrained(\"RUN/model\")` with "
              "`training.tokenizer.load_tokenizer(\"RUN/model\")`; decode with `skip_special_tokens=False`.", "",
              "Not a model of any real household unless its dataset was imported from one (`homepilot import-log`).",
              ""]
    ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)).save(cfg.out / "model" / "README.md")


# ---------------------------------------------------------------- main


def _stage_rows(cfg: TrainConfig, todo: list[str]) -> dict[str, datasets.Dataset]:
    """The sft/dpo train rows of the stages still to run, read (and so checked) before any training."""
    rows = {}
    if "sft" in todo:
        rows["sft"] = D.sft_dataset(cfg.data, cfg.order, history_k=cfg.history_k, refs=cfg.refs)
    if "dpo" in todo:
        rows["dpo"] = (D.listwise_dataset(cfg.data, cfg.order, history_k=cfg.history_k, refs=cfg.refs)
                       if cfg.dpo_loss == "listwise"
                       else D.dpo_dataset(cfg.data, history_k=cfg.history_k, order=cfg.order, refs=cfg.refs))
    for stage, ds in rows.items():
        if len(ds) == 0 and stage == "dpo" and cfg.dpo_loss == "listwise":
            raise D.DatasetError(f"{cfg.data / 'data' / 'sft'}: no train decision whose label is among at least two "
                                 "plausible sets (the held-out validation prompts left out): the listwise preference "
                                 "stage has nothing to rank; use --dpo-loss sigmoid or leave dpo out of --stages")
        if len(ds) == 0:
            raise D.DatasetError(f"{cfg.data / 'data' / stage}: no {stage} train rows to train on (the held-out "
                                 f"validation prompts left out); --stages {stage} needs some")
    return rows


def _fitting(cfg: TrainConfig, tok, rows: dict[str, datasets.Dataset]) -> dict[str, tuple[datasets.Dataset, int]]:
    """(rows the stage trains on, rows dropped as longer than sft_max_length) per stage."""
    out = {}
    for stage, ds in rows.items():
        columns = ["completion"] if stage == "sft" else ["candidates"] if "candidates" in ds.column_names else [
            "chosen", "rejected"]
        kept, dropped = D.fits(tok, ds, cfg.sft_max_length, columns)
        if len(kept) == 0:
            raise D.DatasetError(f"{cfg.data / 'data' / stage}: none of the {len(ds)} {stage} train rows fits "
                                 f"sft_max_length={cfg.sft_max_length} tokens (prompt + completion)")
        out[stage] = (D.subsample(kept, cfg.sft_max_rows if stage == "sft" else cfg.dpo_max_rows, cfg.seed), dropped)
    return out


def main(cfg: TrainConfig, progress: ProgressFn | None = None) -> dict:
    """Run the configured stages into ``cfg.out``; returns the info written to config.json.

    Every input the selected stages need is read and checked before the run directory is
    claimed (``sim.outdir``) and before the first training step, so a bad input leaves nothing
    half-made. Under ``accelerate launch`` every process runs this; only the main one writes
    files and the others wait for it (``PartialState.wait_for_everyone``) before reading them.
    """
    datasets.disable_progress_bars()  # progress is the caller's (CLI) business
    hf_logging.disable_progress_bar()
    if cfg.base_model is not None:
        _check_base_model(cfg.base_model)
    inputs = _inputs(cfg)
    _check_out_dir(cfg, inputs)
    todo = [s for s in cfg.stages if not (cfg.resume and is_done(cfg.out / s))]
    stored = D.pretrain_texts(cfg.data)
    new_tokenizer = cfg.base_model is None and not _has_tokenizer(cfg.out / "tokenizer")
    if not stored and ("pretrain" in todo or new_tokenizer):
        raise D.DatasetError(f"{cfg.data / 'data' / 'pretrain'}: no pretrain train rows; pre-training and the "
                             "tokenizer are made from them")
    corpus = D.history_view(stored, cfg.pretrain_view)
    if cfg.general_text is not None:
        general = D.general_texts(cfg.general_text)
        stored = D.mix_texts(stored, general, cfg.general_ratio, cfg.seed)
        corpus = D.mix_texts(corpus, general, cfg.general_ratio, cfg.seed)
    rows = _stage_rows(cfg, todo)
    use_cpu, bf16 = detect_device(cfg.device)
    pin_threads()  # the same weights for a seed whatever ran earlier in this process
    if _is_main():
        outdir.claim(cfg.out, "run", RUN_PATHS)
    _barrier()
    rt = Runtime(seed=cfg.seed, use_cpu=use_cpu, bf16=bf16, logging_steps=cfg.logging_steps,
                 save_steps=cfg.save_steps, metrics_path=cfg.out / "metrics.jsonl", progress=progress)
    tok = _tokenizer(cfg, stored)  # trained on the stored rows: descriptions' words are in the vocabulary
    fitted = _fitting(cfg, tok, rows)
    device = "cpu" if use_cpu else torch.cuda.get_device_name(0)
    info: dict = {**cfg.to_json(), "inputs": inputs, "device": device, "torch_threads": torch.get_num_threads(),
                  "python": platform.python_version(), "software": software(), "stages_run": [], "stages": {},
                  "vocab_size": len(tok)}
    if _is_main():
        (cfg.out / "config.json").write_text(json.dumps(info, indent=2))
    # a fresh LoraConfig per stage: PEFT writes the base model's path into the one it is given, and
    # the same object reused by DPO warned "base_model_name_or_path was renamed" on every LoRA run
    def lora() -> LoraConfig:
        return lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout)

    model = None
    for stage in cfg.stages:
        sdir = cfg.out / stage
        if cfg.resume and is_done(sdir):
            info["stages"][stage] = json.loads((sdir / "stage_done.json").read_text())
            info["stages_run"].append(stage)
            continue
        earlier = STAGES[:STAGES.index(stage)]
        model, init = _init_model(cfg, tok, earlier)
        if stage != "pretrain":  # saved with the model: how the recommender must address it
            model.config.completion_refs = cfg.refs
        t0 = time.perf_counter()
        s: dict = {"init": init}
        if stage == "pretrain":
            steps = pretrain_steps(count_tokens(tok, corpus), cfg.block_size, cfg.pretrain_batch_size,
                                   cfg.pretrain_epochs, cfg.pretrain_tokens)
            s.update(rows=len(corpus), general_ratio=cfg.general_ratio if cfg.general_text else 0.0)
            model = pretrain(model, tok, corpus, sdir, rt, block_size=cfg.block_size,
                             batch_size=cfg.pretrain_batch_size, learning_rate=cfg.pretrain_lr, max_steps=steps,
                             resume=cfg.resume)
        elif stage == "sft":
            ds, dropped = fitted["sft"]
            epochs = sft_epochs(len(ds), cfg.sft_batch_size, cfg.sft_epochs, cfg.sft_min_steps or 0)
            s.update(rows=len(ds), dropped_too_long=dropped, epochs=round(epochs, 3))
            model = sft(model, tok, ds, sdir, rt, lora=None if cfg.full_finetune else lora(),
                        max_length=cfg.sft_max_length, batch_size=cfg.sft_batch_size, learning_rate=cfg.sft_lr,
                        epochs=epochs, resume=cfg.resume)
        elif cfg.dpo_loss == "listwise":
            ds, dropped = fitted["dpo"]
            probe = ds.select(range(min(len(ds), 64)))
            s.update(loss="listwise", rows=len(ds), dropped_too_long=dropped,
                     label_top1_before=round(label_top1(model, tok, probe, cfg.order), 4))
            model = listwise(model, tok, ds, sdir, rt, order=cfg.order, lora=None if cfg.full_finetune else lora(),
                             beta=cfg.dpo_beta, batch_size=cfg.dpo_batch_size, learning_rate=cfg.dpo_lr,
                             epochs=cfg.dpo_epochs, resume=cfg.resume)
            s["label_top1_after"] = round(label_top1(model, tok, probe, cfg.order), 4)
        else:
            ds, dropped = fitted["dpo"]
            probe = ds.select(range(min(len(ds), 64)))
            s.update(loss="sigmoid", rows=len(ds), dropped_too_long=dropped,
                     margin_before=round(preference_margin(model, tok, probe), 4))
            model = dpo(model, tok, ds, sdir, rt, lora=lora(), beta=cfg.dpo_beta, max_length=cfg.sft_max_length,
                        batch_size=cfg.dpo_batch_size, learning_rate=cfg.dpo_lr, epochs=cfg.dpo_epochs,
                        resume=cfg.resume)
            s["margin_after"] = round(preference_margin(model, tok, probe), 4)
        s.update(_stage_summary(rt.metrics_path, stage), seconds=round(time.perf_counter() - t0, 1))
        if _is_main():
            save_final(model, tok, sdir / "final")
            mark_done(sdir, s)
        _barrier()
        info["stages"][stage] = s
        info["stages_run"].append(stage)
        del model
    last = cfg.stages[-1]
    final = cfg.out / "model"
    info["final_from"] = f"{last}/final"
    info["n_parameters"] = count_parameters(load_model(cfg.out / last / "final"))
    if _is_main():
        if final.exists():
            shutil.rmtree(final)
        shutil.copytree(cfg.out / last / "final", final)
        (cfg.out / "config.json").write_text(json.dumps(info, indent=2))
        write_model_card(cfg, info)  # after the copy: nothing overwrites model/README.md
    _barrier()
    return info

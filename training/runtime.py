"""What every stage shares: device settings, trainer arguments, the metrics log, progress
hooks, checkpoint discovery and saving a final model.

CPU-safe by construction (NOTES, TRL 1.16 on CPU): without a GPU every stage runs with
``use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none",
dataloader_num_workers=0``. With a GPU, bf16 is on where the card supports it. Under
``accelerate launch`` the same arguments train data-parallel on every visible GPU.
"""

from __future__ import annotations

import inspect
import json
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase, PrinterCallback, TrainerCallback
from trl import SFTTrainer

# TRL 1.16 reads ``model.is_gradient_checkpointing``, which transformers 5.2x deprecated (renamed
# ``is_activation_checkpointing``): one FutureWarning per DPO stage that the user can do nothing about.
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)

#: progress(stage, step, total_steps): called after each optimizer step (the CLI draws a bar)
ProgressFn = Callable[[str, int, int], None]

#: the libraries whose versions change a trained model's numbers (recorded by ``software``)
SOFTWARE = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "numpy", "lightgbm")


def pin_threads() -> int:
    """Put torch's CPU threading in the one state training's rounding is defined for; returns the
    intra-op thread count (unchanged).

    Any ``torch.set_num_threads`` call (the CGC baseline's ``torch_threads``, run by every evaluation;
    a test; a notebook), even to the current count, also turns MKL's dynamic threading off and resets
    torch's thread pools; after it, some kernel rounds differently (plain matrix products of six
    shapes did not; which one does was not found) and training gives other (still repeatable)
    weights: ``homepilot reproduce``'s seeds 1 and 2, trained after seed 0's evaluation, gave PT+FT+DPO
    EM-Acc 0.263 / 0.255 where standalone quickstarts of the same seeds on the same data gave 0.273 /
    0.277. Calling it (``training.pipeline.main`` does, before the first stage) makes a
    seed's model the same whatever ran before it in the process. Restoring MKL's dynamic threading
    through its C API did not bring the fresh rounding back, so this is the state that can be pinned."""
    n = torch.get_num_threads()
    torch.set_num_threads(n)
    return n


def software() -> dict[str, str]:
    """What produced a run's or a report's numbers: Python, the versions of ``SOFTWARE``, the CPU
    kernels torch dispatches to (``torch.backends.cpu.get_cpu_capability``, e.g. AVX2 or AVX512)
    and its intra-op threads. Training is deterministic for a seed on one machine and library set
    (a rerun repeats every figure, whatever ran before it in the process: ``pin_threads``). On
    another machine it is not: the seed-0
    quickstart gave PT+FT+DPO EM-Acc 0.235 on an AVX512 machine with these libraries where the
    docs' earlier machine (not recorded) gave 0.252, and CGC 0.275 instead of 0.272. When two runs
    of one seed disagree, this is what to compare first (it does not name every difference: the CPU model
    itself is not recorded)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "machine": platform.machine(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": str(torch.get_num_threads())}
    for name in SOFTWARE:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


DONE_FILE = "stage_done.json"  # written last into RUN/<stage>/ when the stage's final model is saved


@dataclass(frozen=True)
class Runtime:
    """Run-wide settings every stage's trainer gets."""

    seed: int
    use_cpu: bool  # no GPU (or device="cpu" asked for)
    bf16: bool  # GPU with bf16 support
    logging_steps: int  # optimizer steps between metrics.jsonl lines
    save_steps: int  # optimizer steps between checkpoints (what --resume returns to)
    metrics_path: Path  # RUN/metrics.jsonl
    progress: ProgressFn | None = None


def detect_device(device: str) -> tuple[bool, bool]:
    """(use_cpu, bf16) for ``device`` in auto | cpu | cuda."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be one of auto, cpu, cuda, got {device!r}")
    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise ValueError("device='cuda' asked for but no CUDA GPU is visible")
    use_cpu = device == "cpu" or not has_cuda
    bf16 = (not use_cpu) and torch.cuda.is_bf16_supported()
    return use_cpu, bf16


def trainer_args(rt: Runtime, stage_dir: Path, *, learning_rate: float, epochs: float, batch_size: int,
                 max_steps: int = -1, grad_accum: int = 1, warmup: float = 0.05) -> dict:
    """Keyword arguments shared by ``SFTConfig`` and ``DPOConfig``."""
    return {**_no_checkpointing(), **dict(
        output_dir=str(stage_dir), learning_rate=learning_rate, num_train_epochs=epochs, max_steps=max_steps,
        per_device_train_batch_size=batch_size, gradient_accumulation_steps=grad_accum,
        lr_scheduler_type="cosine", warmup_steps=warmup, weight_decay=0.0,
        use_cpu=rt.use_cpu, bf16=rt.bf16, fp16=False,
        report_to="none", dataloader_num_workers=0, dataloader_pin_memory=not rt.use_cpu,
        logging_steps=rt.logging_steps, logging_first_step=True, save_strategy="steps", save_steps=rt.save_steps,
        save_total_limit=2, save_only_model=False, disable_tqdm=True, seed=rt.seed, data_seed=rt.seed,
        include_num_input_tokens_seen="non_padding",
    )}


def _no_checkpointing() -> dict:
    """Checkpointing off, explicitly: TRL's SFTConfig/DPOConfig default it to True, which runs
    pre-training at 0.55x the throughput. transformers 5.2x renamed ``gradient_checkpointing`` to
    ``activation_checkpointing`` (the old name warns at every stage); older releases know only the old one."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing": False} if "activation_checkpointing" in fields else {
        "gradient_checkpointing": False}


# Full logits up to this many elements (batch x length x vocab) take the plain cross-entropy path
# of ``LMTrainer``; larger batches keep TRL's chunked LM head, which never holds them all (GPU presets).
PLAIN_LOSS_MAX_LOGITS = 1 << 26


class LMTrainer(SFTTrainer):
    """TRL's ``SFTTrainer`` with a plain next-token cross-entropy when the logits are small.

    TRL 1.16 computes the loss through a chunked ("fused") LM head that also returns each token's
    entropy and top-1 hit, for its metrics. On the CPU presets that head is the costliest part of a
    step: SFT on the quickstart rows ran at 0.63x a bare AdamW loop on the same batches, pre-training at
    0.57x (``benchmarks/train_speed.py``). Here the model returns its logits and the loss is
    ``sum(-log p(label)) / num_items_in_batch`` over the labelled positions, the same quantity TRL's
    ``loss_type="nll"`` computes; ``mean_token_accuracy`` is still logged (argmax of the same logits),
    entropy is not. Batches whose logits exceed ``PLAIN_LOSS_MAX_LOGITS`` elements, label smoothing
    and other loss types go to TRL unchanged.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.get("labels")
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        vocab = base.config.get_text_config().vocab_size
        if (labels is None or getattr(self.args, "loss_type", "nll") != "nll" or self.label_smoother is not None
                or self.compute_loss_func is not None or getattr(self, "aux_loss_enabled", False)
                or "logits_to_keep" not in inspect.signature(base.forward).parameters
                or labels.numel() * vocab > PLAIN_LOSS_MAX_LOGITS):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        # logits only where some row of the batch has a label next (SFT: the completions)
        target = labels[:, 1:]
        keep = (target != -100).any(0).nonzero().squeeze(1)
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False, logits_to_keep=keep)
        logits = outputs.logits.float()
        target = target[:, keep]
        mask = target != -100
        total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100,
                                reduction="sum")
        n = mask.sum() if num_items_in_batch is None else num_items_in_batch
        loss = total / torch.as_tensor(n, device=total.device).clamp(min=1)
        if getattr(self.args, "average_tokens_across_devices", False) and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // getattr(self, "_tp_size", 1))
        mode = "train" if self.model.training else "eval"
        with torch.no_grad():
            valid = self.accelerator.gather_for_metrics(mask.sum()).sum()
            correct = self.accelerator.gather_for_metrics(((logits.argmax(-1) == target) & mask).sum()).sum()
            self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
            if mode == "train" and "attention_mask" in inputs and hasattr(self, "_total_train_tokens"):
                self._total_train_tokens += self.accelerator.gather_for_metrics(
                    inputs["attention_mask"].sum()).sum().item() // getattr(self, "_tp_size", 1)
                self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
        return (loss, outputs) if return_outputs else loss


class MetricsCallback(TrainerCallback):
    """Appends one JSON line per logged step to ``metrics.jsonl``:
    ``{"stage", "step", "loss", "tokens_per_s", "samples_per_s", "epoch", "lr", ...}`` (rates over the
    steps since the previous line; a DPO sample is a pair; DPO lines also carry TRL's reward margins)."""

    def __init__(self, stage: str, path: Path) -> None:
        self.stage, self.path = stage, path
        self._t = time.perf_counter()
        self._tokens = self._step = 0

    def on_train_begin(self, args, state, control, **kw):
        self._t, self._tokens, self._step = time.perf_counter(), state.num_input_tokens_seen, state.global_step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= state.max_steps:  # always log the last step (the loss a stage ends on)
            control.should_log = True
        return control

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        if "loss" not in logs or not state.is_world_process_zero:  # summary line, or not the main process
            return
        now = time.perf_counter()
        dt = max(now - self._t, 1e-9)
        tokens = state.num_input_tokens_seen - self._tokens
        samples = (state.global_step - self._step) * args.train_batch_size * args.gradient_accumulation_steps
        row = {"stage": self.stage, "step": state.global_step, "loss": float(logs["loss"]),
               "tokens_per_s": round(tokens / dt, 1), "samples_per_s": round(samples / dt, 3),
               "epoch": logs.get("epoch"), "lr": logs.get("learning_rate")}
        for k, v in logs.items():
            if k.startswith(("rewards/", "logps/")) and isinstance(v, int | float):
                row[k] = float(v)
        self._t, self._tokens, self._step = now, state.num_input_tokens_seen, state.global_step
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


class ProgressCallback(TrainerCallback):
    """Forwards (stage, step, max_steps) to a progress function after every optimizer step."""

    def __init__(self, stage: str, fn: ProgressFn) -> None:
        self.stage, self.fn = stage, fn

    def on_train_begin(self, args, state, control, **kw):
        self.fn(self.stage, state.global_step, state.max_steps)

    def on_step_end(self, args, state, control, **kw):
        self.fn(self.stage, state.global_step, state.max_steps)


def quiet(trainer) -> None:
    """No log printing from the trainer (metrics go to metrics.jsonl, progress to the CLI's bar)."""
    trainer.remove_callback(PrinterCallback)


def callbacks(rt: Runtime, stage: str) -> list[TrainerCallback]:
    out: list[TrainerCallback] = [MetricsCallback(stage, rt.metrics_path)]
    if rt.progress is not None:
        out.append(ProgressCallback(stage, rt.progress))
    return out


def last_checkpoint(stage_dir: Path) -> Path | None:
    """The newest complete ``checkpoint-N`` (one whose ``trainer_state.json`` was written)."""
    if not stage_dir.is_dir():
        return None
    done = [p for p in stage_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
            and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def save_final(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Model (safetensors) + tokenizer into ``path``; loadable with ``from_pretrained``."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))


def mark_done(stage_dir: Path, info: dict) -> None:
    (stage_dir / DONE_FILE).write_text(json.dumps(info, indent=2))


def is_done(stage_dir: Path) -> bool:
    return (stage_dir / DONE_FILE).is_file() and (stage_dir / "final" / "config.json").is_file()

"""Training speed on this machine: every stage's throughput, the pre-training stage against a
plain PyTorch loop, and a full quickstart training run.

    python benchmarks/train_speed.py --out benchmarks/results [--data DIR] [--repeats 3] [--steps 20]

Writes ``train_speed.json`` and ``train_speed.md``:
- ``pretrain_tokens_per_s``: the pre-training stage (TRL SFTTrainer, packed "wrapped" rows) on the
  tiny preset, median over ``repeats`` runs of ``steps`` optimizer steps;
- ``plain_loop_tokens_per_s`` and ``pretrain_ratio_to_plain_loop``: a bare PyTorch AdamW loop
  (forward, backward, step, zero_grad) on the same initial model and *the same packed batches*
  (taken from the stage's own dataloader), timed in the same run, alternating with the stage;
  ratio = median stage tokens/s / median plain tokens/s (goal >= 0.8);
- ``sft_tokens_per_s``, ``dpo_rows_per_s``: medians over the logged intervals of the quickstart run (a
  DPO row is a pair for the sigmoid loss, a decision with all its candidate sets for tiny's listwise one);
- ``quickstart_train_seconds``: wall time of ``homepilot train --preset tiny`` (all three stages)
  on the quickstart dataset (goal <= 600 s on 2 CPU cores).
The quickstart dataset is generated into a temporary folder unless ``--data`` names one.
The machine may be shared: the 1-min load average before and after is recorded with the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import datasets  # noqa: E402
import torch  # noqa: E402

from training.data import pretrain_texts  # noqa: E402
from training.models import build_model, count_parameters  # noqa: E402
from training.pipeline import HYPER, TrainConfig, main  # noqa: E402
from training.pretrain import build_trainer  # noqa: E402
from training.runtime import Runtime, quiet  # noqa: E402
from training.tokenizer import train_tokenizer  # noqa: E402


def plain_loop(model: torch.nn.Module, batches: list[dict], lr: float) -> float:
    """Seconds for one AdamW step per batch: the reference loop."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    t0 = time.perf_counter()
    for b in batches:
        loss = model(input_ids=b["input_ids"], labels=b["labels"]).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def pretrain_vs_plain(data: Path, work: Path, steps: int, repeats: int) -> dict:
    hp = HYPER["tiny"]
    texts = pretrain_texts(data)
    tok = train_tokenizer(texts, vocab_size=hp.vocab_size)
    init = build_model("tiny", tok, seed=0)
    rt = Runtime(seed=0, use_cpu=True, bf16=False, logging_steps=5, save_steps=50,
                 metrics_path=work / "bench_metrics.jsonl")
    stage, plain = [], []
    batches: list[dict] = []
    tokens_per_run = 0
    for r in range(repeats):
        trainer = build_trainer(copy.deepcopy(init), tok, texts, work / f"pt{r}", rt, block_size=hp.block_size,
                                batch_size=hp.pretrain_batch_size, learning_rate=hp.pretrain_lr, max_steps=steps)
        quiet(trainer)
        if not batches:  # the very batches the stage trains on
            it = iter(trainer.get_train_dataloader())
            batches = [next(it) for _ in range(steps)]
            tokens_per_run = sum(int(b["input_ids"].numel()) for b in batches)
        t0 = time.perf_counter()
        trainer.train()
        stage.append(tokens_per_run / (time.perf_counter() - t0))
        plain.append(tokens_per_run / plain_loop(copy.deepcopy(init), batches, hp.pretrain_lr))
    return {"pretrain_tokens_per_s": round(statistics.median(stage), 1),
            "plain_loop_tokens_per_s": round(statistics.median(plain), 1),
            "pretrain_ratio_to_plain_loop": round(statistics.median(stage) / statistics.median(plain), 3),
            "pretrain_runs_tokens_per_s": [round(x, 1) for x in stage],
            "plain_runs_tokens_per_s": [round(x, 1) for x in plain],
            "pretrain_bench_steps": steps, "pretrain_bench_tokens_per_run": tokens_per_run,
            "tiny_parameters": count_parameters(init)}


def quickstart_run(data: Path, work: Path) -> dict:
    out = work / "run"
    t0 = time.perf_counter()
    info = main(TrainConfig(data=data, out=out, preset="tiny", seed=0))
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    def med(stage: str, key: str) -> float:
        vals = [r[key] for r in rows if r["stage"] == stage and r["step"] > 1]
        return round(statistics.median(vals), 2) if vals else 0.0

    return {"quickstart_train_seconds": round(seconds, 1), "sft_tokens_per_s": med("sft", "tokens_per_s"),
            "dpo_rows_per_s": med("dpo", "samples_per_s"), "dpo_tokens_per_s": med("dpo", "tokens_per_s"),
            "quickstart_pretrain_tokens_per_s": med("pretrain", "tokens_per_s"),
            "quickstart_stage_seconds": {s: v["seconds"] for s, v in info["stages"].items()},
            "quickstart_losses": {s: [v.get("first_loss"), v.get("last_loss")] for s, v in info["stages"].items()},
            "quickstart_dpo_probe": {k: v for k, v in info["stages"]["dpo"].items()
                                     if k.startswith(("margin_", "label_top1_"))} | {
                                         "loss": info["stages"]["dpo"].get("loss")},
            "quickstart_rows": {s: v.get("rows") for s, v in info["stages"].items()}}


def write_md(res: dict, path: Path) -> None:
    lines = ["# Training speed", "", f"Machine: {res['machine']}; torch threads {res['torch_threads']}; "
             f"load average before/after {res['load_before']:.1f}/{res['load_after']:.1f}.", "",
             "| figure | value | goal |", "|---|---|---|",
             f"| pretrain_tokens_per_s (stage, tiny) | {res['pretrain_tokens_per_s']:.0f} | |",
             f"| plain_loop_tokens_per_s (same model, same batches) | {res['plain_loop_tokens_per_s']:.0f} | |",
             f"| pretrain_ratio_to_plain_loop | {res['pretrain_ratio_to_plain_loop']:.3f} | >= 0.8 |"]
    if "quickstart_train_seconds" in res:
        lines += [f"| sft_tokens_per_s (quickstart run) | {res['sft_tokens_per_s']:.0f} | |",
                  f"| dpo_rows_per_s (quickstart run, {res['quickstart_dpo_probe'].get('loss')} loss) | "
                  f"{res['dpo_rows_per_s']:.2f} | |",
                  f"| quickstart_train_seconds (PT+FT+DPO, tiny) | {res['quickstart_train_seconds']:.0f} | <= 600 |",
                  "", f"Stage seconds: {res['quickstart_stage_seconds']}; rows: {res['quickstart_rows']}; "
                  f"loss first->last: {res['quickstart_losses']}; DPO probe before -> after: "
                  f"{res['quickstart_dpo_probe']}."]
    lines += ["", "Medians over repeats (pre-training) or logged intervals (SFT, DPO). The machine is shared, so",
              "absolute figures move with its load; the ratio is measured within one run.", ""]
    path.write_text("\n".join(lines))


def run(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    datasets.disable_progress_bars()
    res: dict = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}, "
                            f"torch {torch.__version__}", "torch_threads": torch.get_num_threads(),
                 "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else work / "data"
        if not args.data:
            from sim.dataset.build import DatasetConfig, build
            build(DatasetConfig(out=str(data), preset="quickstart", seed=0, workers=2))
        res.update(pretrain_vs_plain(data, work, args.steps, args.repeats))
        _write(res, out)  # the comparison is kept even if the long quickstart run is interrupted
        if not args.skip_quickstart:
            res.update(quickstart_run(data, work))
            _write(res, out)
    return res


def _write(res: dict, out: Path) -> None:
    res["load_after"] = os.getloadavg()[0]
    (out / "train_speed.json").write_text(json.dumps(res, indent=2))
    write_md(res, out / "train_speed.md")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for train_speed.json and train_speed.md")
    p.add_argument("--data", default=None, help="an existing quickstart dataset (default: generate one)")
    p.add_argument("--repeats", type=int, default=3, help="pre-training repeats (stage and plain loop each)")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per pre-training repeat")
    p.add_argument("--skip-quickstart", action="store_true", help="only the pre-training comparison")
    print(json.dumps(run(p.parse_args()), indent=2))

"""Inference speed of the confidence-gated recommender.

    python benchmarks/infer_speed.py --out benchmarks/results

Writes ``infer_speed.json`` and ``infer_speed.md``:
- ``recs_per_s_{tiny,small}_batch32``: recommendations per second through ``recommend_batch``
  (batch 32, left padding): prompt -> constrained decoding -> Eq. 6 confidence -> gate;
- ``p50_ms_{tiny,small}_batch1`` / ``p95_ms_...``: latency of one ``recommend`` call;
- ``constrained_over_plain`` (tiny; ``..._small`` too): CPU time of constrained decoding plus
  confidence divided by that of plain greedy ``model.generate`` producing the same number of new
  tokens on the same prompts, batch by batch, interleaved, in the same run (``..._wall``: the same
  with wall-clock time, which the shared machine's load makes noisier; ``..._same_cache``: with
  the recommender on the same growing KV cache as ``generate``, i.e. the grammar's own cost).

Models are random-weight ``training.models`` presets (``tiny`` h128 L4, ``small`` h256 L6) with the
domain tokenizer (``training.tokenizer``) trained on the benchmark's own synthetic prompts; contexts
come from ``agent.context.random_contexts`` (history ``sim.prompts.HISTORY_K``, 1-24 devices). A random
model's device probability is tiny, so cascade pruning would stop every recommendation after a few tokens: the
benchmark turns the cascade off to time full decodes (the worst case); ``..._cascade_on`` shows
the pruned rate. On a shared machine wall-clock rates depend on the load (recorded); the
``recs_per_cpu_s_...`` / ``p50_cpu_ms_...`` figures divide by this process's CPU time instead,
which approximates an unloaded core (with ``--threads 1``). Medians are quoted.

A random model spells names in BPE pieces and runs every description to its budget, so it decodes
~2x the tokens of a trained one. ``--run RUN --data DATA`` also times a trained run on its
dataset's test prompts (``recs_per_s_trained_batch32``, cascade off and on, median of 3)::

    python benchmarks/infer_speed.py --out benchmarks/results --run quickstart_out/runs/main \
        --data quickstart_out/data
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from agent.context import random_contexts
from agent.recommender import Recommender, RecommenderConfig
from sim.dataset.shards import write_text_atomic
from sim.prompts import HISTORY_K


@dataclass(frozen=True)
class BenchConfig:
    """Sizes of the benchmark."""

    out: Path = Path("benchmarks/results")  # where infer_speed.json / .md go
    n_batch: int = 64  # contexts for the batch-32 throughput and the ratio (2 batches; small: 1 batch)
    n_single: int = 16  # contexts for the batch-1 latency (small: half)
    repeats: int = 1  # throughput repeats (median)
    max_desc_tokens: int = 16  # description budget
    threads: int = 0  # torch threads; 0 = torch's default
    seed: int = 0
    presets: tuple[str, ...] = ("tiny", "small")
    run: Path | None = None  # a trained run directory to time as well (with ``data``)
    data: Path | None = None  # its dataset: the test prompts come from the sft config

    def __post_init__(self) -> None:
        if min(self.n_batch, self.n_single, self.repeats, self.max_desc_tokens) < 1:
            raise ValueError("n_batch, n_single, repeats and max_desc_tokens must be >= 1")
        if (self.run is None) != (self.data is None):
            raise ValueError("--run and --data go together: a trained run is timed on its dataset's test prompts")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


def _plain_generate(model, tokenizer, prompts: list[str], n_new: int) -> tuple[float, float]:
    """(wall s, CPU s) of plain greedy generate of exactly ``n_new`` tokens (left padding)."""
    from agent.decoding import encode_left_padded

    ids, am = encode_left_padded(tokenizer, prompts)
    t, c = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=am, do_sample=False, max_new_tokens=n_new, min_new_tokens=n_new,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return time.perf_counter() - t, time.process_time() - c


def bench_preset(name: str, tok, ctxs_batch, ctxs_single, cfg: BenchConfig) -> dict:
    from training.models import build_model, count_parameters

    model = build_model(name, tok, seed=cfg.seed).eval()
    rcfg = RecommenderConfig(cascade=False, batch_size=32, max_desc_tokens=cfg.max_desc_tokens)
    rec = Recommender(model, tok, rcfg)
    if name != "tiny":  # a bigger model gets a smaller sample (same contexts, first ones)
        ctxs_batch, ctxs_single = ctxs_batch[:32], ctxs_single[:max(1, len(ctxs_single) // 2)]
    rec.recommend_batch(ctxs_batch[:4])  # warm-up: masks of shared states, allocator
    # throughput, batch 32
    rates, cpu_rates = [], []
    for _ in range(cfg.repeats):
        t, c = time.perf_counter(), time.process_time()
        recs = rec.recommend_batch(ctxs_batch)
        rates.append(len(ctxs_batch) / (time.perf_counter() - t))
        cpu_rates.append(len(ctxs_batch) / (time.process_time() - c))
    # the same with cascade pruning on (a random model's device probability prunes almost at once)
    pruned = Recommender(model, tok, replace(rcfg, cascade=True))
    t = time.perf_counter()
    pruned.recommend_batch(ctxs_batch)
    cascade_rate = len(ctxs_batch) / (time.perf_counter() - t)
    # latency, batch 1
    lat, cpu_lat = [], []
    for c in ctxs_single:
        t, cp = time.perf_counter(), time.process_time()
        rec.recommend(c)
        lat.append(1000 * (time.perf_counter() - t))
        cpu_lat.append(1000 * (time.process_time() - cp))
    # constrained (+ confidence) over plain generate, same prompts and token counts, interleaved per batch
    growing = Recommender(model, tok, replace(rcfg, static_cache=False))  # generate's own (growing) KV cache
    cons, plain, cons_cpu, plain_cpu, same_cache_cpu = 0.0, 0.0, 0.0, 0.0, 0.0
    for b in range(0, len(ctxs_batch), 32):
        chunk = ctxs_batch[b:b + 32]
        t, c = time.perf_counter(), time.process_time()
        out = rec.recommend_batch(chunk)
        tc, cc = time.perf_counter() - t, time.process_time() - c
        n_new = max(len(r.steps) for r in out)
        tp, cp = _plain_generate(model, tok, [c.prompt_text() for c in chunk], n_new)
        c = time.process_time()
        growing.recommend_batch(chunk)
        same_cache_cpu += time.process_time() - c
        cons, plain, cons_cpu, plain_cpu = cons + tc, plain + tp, cons_cpu + cc, plain_cpu + cp
    n_actions = [len(r.actions) for r in recs]
    return {
        f"recs_per_s_{name}_batch32": round(statistics.median(rates), 2),
        f"recs_per_cpu_s_{name}_batch32": round(statistics.median(cpu_rates), 2),
        f"recs_per_s_{name}_batch32_cascade_on": round(cascade_rate, 2),
        f"p50_ms_{name}_batch1": round(float(np.percentile(lat, 50)), 1),
        f"p95_ms_{name}_batch1": round(float(np.percentile(lat, 95)), 1),
        f"p50_cpu_ms_{name}_batch1": round(float(np.percentile(cpu_lat, 50)), 1),
        f"constrained_over_plain_{name}": round(cons_cpu / plain_cpu, 3),  # CPU time: robust to machine load
        f"constrained_over_plain_{name}_wall": round(cons / plain, 3),
        f"constrained_over_plain_{name}_same_cache": round(same_cache_cpu / plain_cpu, 3),  # both growing caches
        f"params_{name}": count_parameters(model),
        f"mean_new_tokens_{name}": round(float(np.mean([len(r.steps) for r in recs])), 1),
        f"mean_actions_{name}": round(float(np.mean(n_actions)), 2),
    }


def bench_trained(cfg: BenchConfig) -> dict:
    """Batch-32 throughput of a trained run on 128 of its dataset's test prompts (median of 3)."""
    from agent.context import Context
    from agent.evaluate import load_samples

    samples = load_samples(cfg.data, max_samples=128, seed=cfg.seed)
    ctxs = [Context.from_prompt(s.prompt_text, s.types) for s in samples]
    out: dict = {"trained_run": str(cfg.run)}
    for cascade in (False, True):
        rec = Recommender.from_run(cfg.run, RecommenderConfig(cascade=cascade, min_history=0, batch_size=32))
        rec.recommend_batch(ctxs[:8])  # warm-up
        times, recs = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            recs = rec.recommend_batch(ctxs)
            times.append(time.perf_counter() - t0)
        key = "recs_per_s_trained_batch32" + ("_cascade_on" if cascade else "")
        out[key] = round(len(ctxs) / statistics.median(times), 1)
        if not cascade:
            out["mean_new_tokens_trained"] = round(float(np.mean([len(r.steps) for r in recs])), 1)
            out["mean_prompt_tokens_trained"] = round(float(np.mean(
                [len(rec.tokenizer(s.prompt_text)["input_ids"]) for s in samples])), 1)
    return out


def main(cfg: BenchConfig) -> dict:
    from training.tokenizer import train_tokenizer

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    load_before = os.getloadavg()[0]
    ctxs_batch = random_contexts(cfg.n_batch, seed=cfg.seed, devices=(1, 24), history=HISTORY_K,
                                 homes=max(1, cfg.n_batch // 4))
    ctxs_single = random_contexts(cfg.n_single, seed=cfg.seed + 1, devices=(1, 24), history=HISTORY_K)
    corpus = [c.prompt_text() for c in random_contexts(300, seed=cfg.seed + 2, history=HISTORY_K)]
    tok = train_tokenizer(corpus, vocab_size=1024)
    prompt_tokens = float(np.mean([len(tok(c.prompt_text())["input_ids"]) for c in ctxs_batch]))
    res: dict = {}
    for name in cfg.presets:
        res.update(bench_preset(name, tok, ctxs_batch, ctxs_single, cfg))
    if "tiny" in cfg.presets:
        res["constrained_over_plain"] = res["constrained_over_plain_tiny"]
    if cfg.run is not None:
        res.update(bench_trained(cfg))
    res.update({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "load_avg_1min_before": round(load_before, 2), "load_avg_1min_after": round(os.getloadavg()[0], 2),
        "vocab_size": len(tok), "mean_prompt_tokens": round(prompt_tokens, 1), "n_batch": cfg.n_batch,
        "n_single": cfg.n_single, "repeats": cfg.repeats, "max_desc_tokens": cfg.max_desc_tokens,
        "cascade": False, "weights": "random (training.models presets)",
        "goals": {"constrained_over_plain": "<= 1.25", "recs_per_s_tiny_batch32": ">= 50 on 2 CPU cores"},
    })
    cfg.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(res, indent=2), cfg.out / "infer_speed.json")
    lines = ["# Recommender inference speed", "",
             f"{res['machine']}, torch {res['torch']} with {res['torch_threads']} threads; load average "
             f"{res['load_avg_1min_before']} -> {res['load_avg_1min_after']} (shared machine: ratios are "
             "measured in one run). Random-weight presets, domain tokenizer, cascade off (full decodes), "
             f"mean prompt {res['mean_prompt_tokens']} tokens.", "",
             "| preset | params | recs/s (batch 32) | recs per CPU-s | recs/s cascade on | p50 ms (batch 1) "
             "| p95 ms (batch 1) | p50 CPU-ms | constrained / plain |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in cfg.presets:
        lines.append(f"| {name} | {res[f'params_{name}']:,} | {res[f'recs_per_s_{name}_batch32']} | "
                     f"{res[f'recs_per_cpu_s_{name}_batch32']} | {res[f'recs_per_s_{name}_batch32_cascade_on']} | "
                     f"{res[f'p50_ms_{name}_batch1']} | {res[f'p95_ms_{name}_batch1']} | "
                     f"{res[f'p50_cpu_ms_{name}_batch1']} | {res[f'constrained_over_plain_{name}']} |")
    if cfg.run is not None:
        lines += ["", f"Trained run `{res['trained_run']}` on 128 of its test prompts "
                  f"({res['mean_prompt_tokens_trained']} tokens, {res['mean_new_tokens_trained']} new tokens): "
                  f"**{res['recs_per_s_trained_batch32']} recs/s** at batch 32, "
                  f"{res['recs_per_s_trained_batch32_cascade_on']} with the cascade on."]
    lines += ["", "Goals: constrained_over_plain <= 1.25; recs_per_s_tiny_batch32 >= 50 on 2 CPU cores.", ""]
    write_text_atomic("\n".join(lines), cfg.out / "infer_speed.md")
    return res


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=BenchConfig.out)
    p.add_argument("--n-batch", type=int, default=BenchConfig.n_batch)
    p.add_argument("--n-single", type=int, default=BenchConfig.n_single)
    p.add_argument("--repeats", type=int, default=BenchConfig.repeats)
    p.add_argument("--threads", type=int, default=BenchConfig.threads)
    p.add_argument("--seed", type=int, default=BenchConfig.seed)
    p.add_argument("--run", type=Path, default=None, help="a trained run directory to time as well")
    p.add_argument("--data", type=Path, default=None, help="the run's dataset (its test prompts)")
    a = p.parse_args()
    try:
        cfg = BenchConfig(out=a.out, n_batch=a.n_batch, n_single=a.n_single, repeats=a.repeats, threads=a.threads,
                          seed=a.seed, run=a.run, data=a.data)
    except ValueError as e:
        p.error(str(e))
    res = main(cfg)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    cli()

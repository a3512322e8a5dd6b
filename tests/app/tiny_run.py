"""A tiny model trained on a simulated home's own history, for the app's tests (seconds, not minutes).

``train_live_run(out)`` simulates home ``index`` of ``seed`` for ``days`` days, cuts its sft rows
with the dataset builder (``sim.dataset.rows.home_rows``: the same prompts and completions as a
generated dataset), trains the domain tokenizer on them and fits a 2-layer Llama for ``steps``
AdamW steps on the completions (a plain loop: TRL's per-run overhead is most of a tiny run), and
saves a run directory that ``Recommender.from_run`` loads (``RUN/model`` + ``RUN/config.json``).
The live app's default home is seed 0, home 0: the model has seen that home's habits, so some of
its answers clear the 0.7 gate, as a trained per-home model's would. 300 steps: with 150 (generator
0.7.0) none of the first 30 decision points reached 0.7 (at most 0.48); with 300, 11 of them did.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path


def train_live_run(out: Path, seed: int = 0, index: int = 0, days: int = 8, steps: int = 300,
                   hidden: int = 64, batch: int = 8, lr: float = 3e-3) -> Path:
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sim.dataset.rows import RowSpec, home_rows
    from sim.world import SimConfig, simulate_home
    from training.tokenizer import train_tokenizer

    log = simulate_home(SimConfig(seed=seed, days=days), index)
    rows = home_rows(log, RowSpec(cutoff=log.start + timedelta(days=days), seed=seed))[("sft", "train")].to_pylist()
    tok = train_tokenizer([r["prompt"] + r["completion"] for r in rows], vocab_size=400)
    pairs = [(tok(r["prompt"], add_special_tokens=False)["input_ids"],
              tok(r["completion"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]) for r in rows]
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, intermediate_size=2 * hidden, max_position_embeddings=2048,
                      tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      bos_token_id=tok.bos_token_id)
    rng = np.random.default_rng([seed, index])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: op-level threading costs more than it gives on shared CPUs
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        model.train()
        for _ in range(steps):
            chunk = [pairs[i] for i in rng.integers(len(pairs), size=batch)]
            width = max(len(p) + len(c) for p, c in chunk)
            ids = torch.full((batch, width), tok.pad_token_id)
            labels = torch.full((batch, width), -100)  # loss on the completion only
            mask = torch.zeros((batch, width), dtype=torch.long)
            for i, (p, c) in enumerate(chunk):
                ids[i, :len(p) + len(c)] = torch.tensor(p + c)
                labels[i, len(p):len(p) + len(c)] = torch.tensor(c)
                mask[i, :len(p) + len(c)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.set_num_threads(threads)
    model.eval()
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    (out / "config.json").write_text(json.dumps({"order": "action-first", "trained_by": "tests/app/tiny_run.py",
                                                 "rows": len(rows), "steps": steps, "final_loss": round(loss.item(), 4)}))
    return out

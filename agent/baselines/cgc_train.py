"""Training the CGC baseline on a dataset's ``sft`` train split (the split every method trains on).

``train_cgc(data_dir, config)`` reads ``<data_dir>/data/sft/train-*.parquet`` (schema
``sim.dataset.schema.SCHEMAS["sft"]``), parses each row's prompt and label with the one grammar
(``sim.records``), and fits ``cgc.CGCNet`` with AdamW on the sum of the three tasks'
cross-entropies (device; field set given the label's device; each field's value given device and
set). A label gives one example per home-device it operates (``label_actions="all"``) or only
its first (``"first"``). Everything random comes from ``config.seed``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agent.baselines.cgc import CGCConfig, CGCModel, decode, torch_threads
from agent.baselines.cgc_features import N_SLOTS, Vocab, field_set_key, group_by_device
from agent.metrics import score
from sim.candidates import Types, context_from_row, home_devices, label_from_row, read_sft_rows
from sim.catalog import DEVICE_TYPES, CatalogError, validate
from sim.records import Action, Prompt

SFT_COLUMNS = ("prompt", "actions", "devices")
MIN_VAL_ROWS = 10  # fewer held-out rows than this: no tuning, keep the configured threshold
DEVICE_GRID: tuple[float | None, ...] = (None, 0.5, 0.4, 0.3)  # None first: ties keep one device
IGNORE = -100  # value target of a field slot outside the label's field set


def _targets(target: tuple[str, str], fields: dict[str, str], devices: tuple[tuple[str, str], ...], types: Types,
             vocab: Vocab) -> list[int]:
    """[device index, field-set position, value index per slot (-100 outside the set)] of one label device."""
    typ = types[target]
    for name, value in fields.items():
        validate(typ, name, value)  # CatalogError naming the illegal field/value
    names = list(DEVICE_TYPES[typ].fields)
    values = [IGNORE] * N_SLOTS
    for name, value in fields.items():
        values[names.index(name)] = vocab.value_ix[value]
    set_pos = vocab.type_sets[typ].index(vocab.set_ix[field_set_key(typ, fields)])
    return [devices.index(target), set_pos, *values]


def examples(contexts: Sequence[tuple[Prompt, Types]], labels: Sequence[Sequence[Action]], vocab: Vocab,
             label_actions: str = "all") -> tuple[np.ndarray, np.ndarray, int]:
    """(context index (N,), targets (N, 2 + S), skipped label devices) for teacher-forced training.

    One example per home-device the label operates (``"first"``: only the first one); its targets are
    the device, its field set and the value of every field in the set."""
    ctx, ys, skipped = [], [], 0
    for i, ((prompt, types), label) in enumerate(zip(contexts, labels, strict=True)):
        devices = home_devices(prompt, types)
        groups = list(group_by_device(label).items())
        for target, fields in groups if label_actions == "all" else groups[:1]:
            if target not in devices:
                skipped += 1
                continue
            ctx.append(i)
            ys.append(_targets(target, fields, devices, types, vocab))
    return np.asarray(ctx, dtype=np.int64), np.asarray(ys, dtype=np.int64).reshape(-1, 2 + N_SLOTS), skipped


def train_cgc_on(contexts: Sequence[tuple[Prompt, Types]], labels: Sequence[Sequence[Action]], config: CGCConfig,
                 log: Callable[[str], None] | None = None) -> CGCModel:
    """Fit CGC on in-memory (prompt, types) contexts and their label actions (the pure core).

    With ``config.tune_thresholds`` (and at least ``MIN_VAL_ROWS`` held-out rows), a seeded
    ``val_fraction`` of the rows is held out, the network trains on the rest, and the device
    threshold maximising EM-Acc on the held-out rows is written into the returned model's config.
    """
    n_val = int(round(config.val_fraction * len(contexts))) if config.tune_thresholds else 0
    if n_val < MIN_VAL_ROWS:
        with torch_threads(config.num_threads):
            return _train(contexts, labels, config, log)
    perm = np.random.default_rng(config.seed).permutation(len(contexts))
    val, fit = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    with torch_threads(config.num_threads):
        model = _train([contexts[i] for i in fit], [labels[i] for i in fit], config, log)
    tuned = tune_thresholds(model, [contexts[i] for i in val], [labels[i] for i in val])
    model.config = replace(config, device_threshold=tuned["device_threshold"])
    model.stats["tuning"] = tuned
    if log is not None:
        log(f"cgc device threshold {tuned}")
    return model


def tune_thresholds(model: CGCModel, contexts: Sequence[tuple[Prompt, Types]],
                    labels: Sequence[Sequence[Action]]) -> dict[str, Any]:
    """The device threshold with the best EM-Acc on these rows (ties: fewer bundles)."""
    probs = model.task_probs(contexts)
    best: dict[str, Any] = {}
    for dt in DEVICE_GRID:
        preds = [decode(tp, t, model.vocab, model.set_slots, dt).actions
                 for tp, (_, t) in zip(probs, contexts, strict=True)]
        em = score(labels, preds)["em_acc"]
        if not best or em > best["val_em_acc"] + 1e-12:
            best = {"device_threshold": dt, "val_em_acc": round(em, 4), "val_rows": len(contexts)}
    return best


def _train(contexts: Sequence[tuple[Prompt, Types]], labels: Sequence[Sequence[Action]], config: CGCConfig,
           log: Callable[[str], None] | None) -> CGCModel:
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    vocab = Vocab.build(contexts, labels)
    model = CGCModel(config, vocab)
    ctx_ix, ys, skipped = examples(contexts, labels, vocab, config.label_actions)
    if len(ctx_ix) == 0:
        raise ValueError("no training example: no label operates a device listed in its prompt")
    feats = model.featurize(contexts)
    opt = torch.optim.AdamW(model.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = len(ctx_ix)
    per_epoch = (n + config.batch_size - 1) // config.batch_size
    epochs = max(config.epochs, -(-config.min_steps // per_epoch))  # ceil: small data gets more epochs
    steps = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    y = torch.from_numpy(ys)
    losses = []
    model.net.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, config.batch_size):
            idx = perm[start:start + config.batch_size]
            batch = feats.tensors(ctx_ix[idx.numpy()])
            loss = model.net.loss(batch, y[idx, 0], y[idx, 1], y[idx, 2:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        losses.append(total / n)
        if log is not None:
            log(f"cgc epoch {epoch + 1}/{epochs} loss {losses[-1]:.4f}")
    model.net.eval()
    model.stats = {"rows": len(contexts), "examples": n, "skipped_label_devices": skipped,
                   "epochs": epochs, "steps": steps, "epoch_loss": [round(x, 5) for x in losses[-20:]], "train_seconds": round(time.perf_counter() - t0, 2),
                   "values": len(vocab.values), "parameters": sum(p.numel() for p in model.net.parameters())}
    return model


def contexts_and_labels(rows: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[Prompt, Types]], list[tuple[Action, ...]]]:
    """Parse sft rows into (prompt, types) contexts and label actions; errors name the bad row."""
    contexts, labels = [], []
    for i, row in enumerate(rows):
        try:
            contexts.append(context_from_row(row))
            labels.append(label_from_row(row))
        except (CatalogError, ValueError, KeyError) as e:
            raise type(e)(f"sft row {i}: {e}") from e
    return contexts, labels


def train_cgc(data_dir: str | Path, config: CGCConfig | None = None,
              log: Callable[[str], None] | None = None) -> CGCModel:
    """Train CGC on ``<data_dir>/data/sft/train-*.parquet``."""
    config = config or CGCConfig()
    rows = read_sft_rows(data_dir, "train", SFT_COLUMNS)
    if config.max_rows is not None:
        rows = rows[:config.max_rows]
    if not rows:
        raise ValueError(f"the sft train split of {data_dir} has no rows")
    contexts, labels = contexts_and_labels(rows)
    return train_cgc_on(contexts, labels, config, log)

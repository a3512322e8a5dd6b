"""Reading the dataset configs the training stages use (``pretrain``, ``sft``, ``dpo``).

A dataset directory follows ``sim.dataset.schema``: ``DIR/data/<config>/<split>-NNNNN-of-MMMMM.parquet``.
Readers check what they rely on and fail with a ``DatasetError`` naming the file (and the row
or column) and what was expected: a missing config directory, a missing shard of an
``-of-MMMMM`` set, an unreadable parquet file, a missing or non-string column, a prompt that does
not end on ``<rec>``.

Also here: the optional general-domain text mixed into pre-training (a local ``.txt`` file),
and the length filter that keeps SFT/DPO rows whose prompt + completion fits ``max_length``
(truncation would cut the completion, the only part that carries loss).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset

from sim.dataset.files import DatasetError, read_table  # noqa: F401 - DatasetError: what these readers raise
from sim.records import ORDERS, REC, GrammarError, parse_prompt, parse_target, serialize_target


def read_columns(root: str | Path, config: str, columns: Sequence[str], split: str = "train") -> dict[str, list]:
    """String columns of ``config``/``split`` (``sim.dataset.files.read_table``: every shard, strict),
    checked to be strings without nulls."""
    table = read_table(root, config, split, columns)
    where = Path(root) / "data" / config
    out: dict[str, list] = {}
    for c in columns:
        kind = table.schema.field(c).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise DatasetError(f"{where} ({split}): column {c!r} must be string, got {kind}")
        col = table.column(c).to_pylist()
        bad = next((i for i, v in enumerate(col) if v is None), None)
        if bad is not None:
            raise DatasetError(f"{where} ({split}) row {bad}: column {c!r} is null")
        out[c] = col
    return out


def pretrain_texts(root: str | Path, split: str = "train") -> list[str]:
    """Serialised histories of the ``pretrain`` config (paper Eq. 1 corpus), less the operations of the
    validation slice's days (``sim.dataset.files.held_out_since``): no stage learns those days. A row
    holding some of them is written anew with the operations before; a row with none left is dropped."""
    from sim.dataset.files import held_out_since
    from sim.records import parse_history, serialize_history

    texts = [t for t in read_columns(root, "pretrain", ["text"], split)["text"] if t.strip()]
    since = held_out_since(root) if split == "train" else None
    if since is None:
        return texts
    day = since.strftime("%Y-%m-%d")
    out = []
    for i, t in enumerate(texts):
        if max(re.findall(r"<op>\s+(\d{4}-\d{2}-\d{2})", t), default="") < day:
            out.append(t)  # every operation before the slice: as stored
            continue
        try:
            ops = [o for o in parse_history(t) if o.time < since]
        except GrammarError as e:
            raise DatasetError(f"pretrain {split} row {i} (in {Path(root) / 'data' / 'pretrain'}): not a serialised "
                               f"history ({e})") from None
        if ops:
            out.append(serialize_history(ops, env="<env>" in t, desc="<desc>" in t))  # as stored, shorter
    return out


PRETRAIN_VIEWS: tuple[str, ...] = ("actions", "full")


def history_view(texts: Sequence[str], view: str = "full") -> list[str]:
    """Pre-training rows in a view: ``full`` = as stored (each operation with its environment and
    description), ``actions`` = time and actions only, the exact layout of a prompt's history
    window (``sim.prompts``), so next-action pre-training reads what the recommender reads.
    A day of ``actions`` is ~4x shorter, so a block of context spans several days of one home."""
    if view not in PRETRAIN_VIEWS:
        raise DatasetError(f"pretrain view must be one of {', '.join(PRETRAIN_VIEWS)}, got {view!r}")
    if view == "full":
        return list(texts)
    from sim.records import parse_history, serialize_history

    out = []
    for i, t in enumerate(texts):
        try:
            out.append(serialize_history(parse_history(t), env=False, desc=False))
        except GrammarError as e:
            raise DatasetError(f"pretrain row {i}: not a serialised history ({e})") from None
    return out


def _check_prompts(root: Path, config: str, split: str, prompts: list[str]) -> None:
    for i, p in enumerate(prompts):
        if not p.rstrip().endswith(REC):
            raise DatasetError(f"{config} {split} row {i} (in {root / 'data' / config}): prompt must end on {REC!r},"
                               f" ends on {p[-20:]!r}")


def _keep(root: str | Path, prompts: Sequence[str], split: str) -> list[int]:
    """Row indices to train on: every row, less the validation slice of ``train``
    (``sim.dataset.files.is_held_out``: the train period's last days)."""
    from sim.dataset.files import held_out_since, is_held_out

    since = held_out_since(root) if split == "train" else None
    return [i for i, p in enumerate(prompts) if not is_held_out(p, since)]


def _rewindowed(root: str | Path, config: str, split: str, prompts: list[str], keep: list[int],
                history_k: int | None) -> list[str]:
    """The kept rows' prompts, their history windows rebuilt with ``history_k`` operations
    (``sim.dataset.files.rewindow_prompts``; None: as stored). Which rows are held out is decided
    on the stored prompts, so it does not depend on the window."""
    kept = [prompts[i] for i in keep]
    if history_k is None:
        return kept
    from sim.dataset.files import rewindow_prompts

    homes = read_columns(root, config, ["home_id"], split)["home_id"]
    return rewindow_prompts(root, [homes[i] for i in keep], kept, history_k)


def with_ref(prompt: str, completion: str, order: str) -> str:
    """``completion`` (stored, no ref) with the ``ref`` naming which of ``prompt``'s usual operations
    its actions are (``sim.records.usual_ref``): the targets of a model trained with refs."""
    actions, desc = parse_target(completion, order)
    return serialize_target(actions, desc, order, usual=parse_prompt(prompt).usual)


def sft_dataset(root: str | Path, order: str = "action-first", split: str = "train",
                history_k: int | None = None, refs: bool = False) -> Dataset:
    """Prompt-completion rows; ``order`` picks the ``completion`` or ``completion_text_first`` column.
    The train split leaves out the validation slice (``sim.dataset.files.is_held_out``: its last days).
    ``history_k``: prompts with that many operations in their history window (rebuilt from the
    ``operations`` config; None: as stored). ``refs``: completions carry their ``ref`` (``with_ref``).

    The model reads ``prompt + completion`` with nothing in between: the prompt ends on the
    special ``<rec>`` token and the completion starts on ``<act>`` (or ``<desc>``).
    """
    if order not in ORDERS:
        raise DatasetError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    column = "completion" if order == "action-first" else "completion_text_first"
    cols = read_columns(root, "sft", ["prompt", column], split)
    _check_prompts(Path(root), "sft", split, cols["prompt"])
    keep = _keep(root, cols["prompt"], split)
    prompts = _rewindowed(root, "sft", split, cols["prompt"], keep, history_k)
    completions = [cols[column][i].strip() for i in keep]
    if refs:
        completions = [with_ref(p, c, order) for p, c in zip(prompts, completions, strict=True)]
    return Dataset.from_dict({"prompt": prompts, "completion": completions})


def dpo_dataset(root: str | Path, split: str = "train", history_k: int | None = None,
                order: str = "action-first", refs: bool = False) -> Dataset:
    """Preference rows (prompt, chosen, rejected) of the ``dpo`` config, completions in ``order``
    (stored action-first; a text-first run learns ``<desc> TEXT <act> ACTIONS``, as in its SFT).
    The train split leaves out the held-out validation prompts, as ``sft_dataset`` does;
    ``history_k`` and ``refs`` as there."""
    if order not in ORDERS:
        raise DatasetError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    cols = read_columns(root, "dpo", ["prompt", "chosen", "rejected"], split)
    _check_prompts(Path(root), "dpo", split, cols["prompt"])
    keep = _keep(root, cols["prompt"], split)

    prompts = _rewindowed(root, "dpo", split, cols["prompt"], keep, history_k)

    def completion(text: str, i: int, column: str, prompt: str) -> str:
        if order == "action-first" and not refs:
            return text.strip()
        try:
            actions, desc = parse_target(text.strip())
        except GrammarError as e:
            raise DatasetError(f"dpo {split} row {i} ({column}): not an action-first completion ({e})") from None
        return serialize_target(actions, desc, order, usual=parse_prompt(prompt).usual if refs else None)

    return Dataset.from_dict({"prompt": prompts,
                              "chosen": [completion(cols["chosen"][i], i, "chosen", p) for i, p in zip(keep, prompts, strict=True)],
                              "rejected": [completion(cols["rejected"][i], i, "rejected", p)
                                           for i, p in zip(keep, prompts, strict=True)]})


def listwise_dataset(root: str | Path, order: str = "action-first", split: str = "train",
                     history_k: int | None = None, refs: bool = False) -> Dataset:
    """Rows of the listwise preference stage (``training.listwise``): ``prompt``, ``candidates`` (the
    completion of every plausible action set of the decision, ``sim.candidates.plausible_sets``
    with no-ops left out, in ``order``: what candidate scoring ranks) and ``label`` (the index of the
    user's operation among them). From the ``sft`` config; the train split leaves out the held-out
    prompts, and decisions whose label is not among at least two sets are left out (nothing to rank).
    ``history_k`` and ``refs`` as in ``sft_dataset``: the sets come from the prompt the model reads."""
    from sim.candidates import label_from_row, plausible_sets, types_from_devices
    from training.scoring import completion_text

    if order not in ORDERS:
        raise DatasetError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    from sim.dataset.files import read_rows

    rows = read_rows(root, "sft", split, ["prompt", "devices", "actions"])
    stored = [r["prompt"] for r in rows]
    _check_prompts(Path(root), "sft", split, stored)
    keep = _keep(root, stored, split)
    prompts = _rewindowed(root, "sft", split, stored, keep, history_k)
    out: dict[str, list] = {"prompt": [], "candidates": [], "label": []}
    for prompt, i in zip(prompts, keep, strict=True):
        label = frozenset(label_from_row(rows[i]))
        parsed = parse_prompt(prompt)
        sets = plausible_sets(parsed, types_from_devices(rows[i]["devices"]), drop_noops=True)
        hit = [j for j, c in enumerate(sets) if frozenset(c) == label]
        if hit and len(sets) > 1:
            out["prompt"].append(prompt)
            out["candidates"].append([completion_text(c, order, parsed.usual if refs else None) for c in sets])
            out["label"].append(hit[0])
    return Dataset.from_dict(out)


def general_texts(path: str | Path) -> list[str]:
    """Paragraphs (blank-line separated) of a local UTF-8 text file of general-domain text."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"general-domain text file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"general-domain text file {path} is not UTF-8: {e}") from None
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    paras = [p for p in paras if p]
    if not paras:
        raise DatasetError(f"general-domain text file {path} is empty")
    return paras


def mix_texts(domain: list[str], general: list[str], ratio: float, seed: int) -> list[str]:
    """Domain texts plus general-domain paragraphs totalling ``ratio`` x the domain characters
    (paper: 1:1 -> ``ratio=1.0``), general paragraphs cycled as needed, shuffled with ``seed``."""
    if ratio < 0:
        raise ValueError(f"general_ratio must be >= 0, got {ratio}")
    if ratio == 0 or not general:
        return list(domain)
    want = ratio * sum(len(t) for t in domain)
    extra: list[str] = []
    got, i = 0, 0
    while got < want:
        extra.append(general[i % len(general)])
        got += len(extra[-1])
        i += 1
    out = list(domain) + extra
    order = np.random.default_rng(seed).permutation(len(out))
    return [out[j] for j in order]


def fits(tokenizer, ds: Dataset, max_length: int, completion_columns: Sequence[str]) -> tuple[Dataset, int]:
    """Rows whose ``len(prompt + completion) + 1`` (eos) <= ``max_length`` for every completion
    column; returns (kept rows, number dropped)."""
    plen = [len(ids) for ids in tokenizer(list(ds["prompt"]), add_special_tokens=False)["input_ids"]]
    keep = np.ones(len(ds), dtype=bool)

    def lengths(texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    for c in completion_columns:  # a column of strings, or of lists of them (the longest counts)
        values = list(ds[c])
        if values and not isinstance(values[0], str):
            clen = np.array([max(lengths(v), default=0) for v in values])
        else:
            clen = np.array(lengths(values))
        keep &= (np.array(plen) + clen + 1) <= max_length
    idx = np.flatnonzero(keep).tolist()
    return ds.select(idx), len(ds) - len(idx)


def subsample(ds: Dataset, max_rows: int | None, seed: int) -> Dataset:
    """At most ``max_rows`` rows chosen with ``seed`` (order kept), or all of them."""
    if max_rows is None or len(ds) <= max_rows:
        return ds
    idx = np.sort(np.random.default_rng(seed).choice(len(ds), size=max_rows, replace=False))
    return ds.select(idx.tolist())


"""Dataset readers: the sim.dataset.schema layout, and errors that name the file, row or column."""

from __future__ import annotations

import shutil
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sim.dataset.files import split_files
from sim.records import parse_history, parse_prompt, parse_target, serialize_history
from tests.training.conftest import make_operations
from training.data import (
    DatasetError,
    dpo_dataset,
    fits,
    general_texts,
    history_view,
    listwise_dataset,
    mix_texts,
    pretrain_texts,
    sft_dataset,
)
from training.tokenizer import train_tokenizer


@pytest.fixture()
def ds_copy(tiny_dataset, tmp_path):
    return shutil.copytree(tiny_dataset, tmp_path / "ds")


def test_reads_every_config_in_schema(tiny_dataset):
    assert len(split_files(tiny_dataset, "pretrain", "train")) == 2
    texts = pretrain_texts(tiny_dataset)
    # 5 rows of 2 days; the validation slice is the last of the 10 days (2026-03-11): the row of
    # days 9-10 keeps day 9 only, in the stored layout
    assert len(texts) == 5 and all(t.startswith("<hist>") for t in texts)
    assert sorted(t.count("<op>") for t in texts) == [5, 10, 10, 10, 10]
    assert not any("2026-03-11" in t for t in texts)
    assert serialize_history(make_operations(10, 0)[40:45], desc=True) in texts
    sft = sft_dataset(tiny_dataset)
    # 10 days x 5 routines, minus the first 5 operations (history only), minus the last day's 5 prompts
    from sim.dataset.files import held_out_since, is_held_out, read_rows

    since = held_out_since(tiny_dataset)
    assert since == datetime(2026, 3, 11)
    stored = [r["prompt"] for r in read_rows(tiny_dataset, "sft", "train", ["prompt"])]
    held = [p for p in stored if is_held_out(p, since)]
    assert len(stored) == 45 and len(held) == 5 and len(sft) == 40
    assert all("<now> 2026-03-11" in p for p in held) and not any(is_held_out(p, since) for p in sft["prompt"])
    parse_prompt(sft[0]["prompt"])
    acts, desc = parse_target(sft[0]["completion"])
    assert acts and desc
    tf = sft_dataset(tiny_dataset, order="text-first")
    assert parse_target(tf[0]["completion"], "text-first") == (acts, desc)
    dpo = dpo_dataset(tiny_dataset)
    assert len(dpo) == 40 and dpo.column_names == ["prompt", "chosen", "rejected"]


def test_missing_config_names_directory(ds_copy):
    shutil.rmtree(ds_copy / "data" / "dpo")
    with pytest.raises(DatasetError, match=r"data/dpo"):
        dpo_dataset(ds_copy)


def test_missing_shard_names_the_file(ds_copy):
    (ds_copy / "data" / "pretrain" / "train-00001-of-00002.parquet").unlink()
    with pytest.raises(DatasetError, match=r"train-00001-of-00002\.parquet"):
        pretrain_texts(ds_copy)


def test_malformed_parquet_names_the_file(ds_copy):
    bad = ds_copy / "data" / "sft" / "train-00000-of-00001.parquet"
    bad.write_bytes(b"not a parquet file")
    with pytest.raises(DatasetError, match=r"malformed parquet file .*sft/train-00000-of-00001\.parquet"):
        sft_dataset(ds_copy)


def test_missing_column_names_file_and_column(ds_copy):
    path = ds_copy / "data" / "sft" / "train-00000-of-00001.parquet"
    pq.write_table(pq.read_table(path).drop(["completion_text_first"]), path)
    with pytest.raises(DatasetError, match=r"train-00000-of-00001\.parquet lacks column 'completion_text_first'"):
        sft_dataset(ds_copy, order="text-first")


def test_prompt_not_ending_on_rec_names_the_row(ds_copy):
    path = ds_copy / "data" / "dpo" / "train-00000-of-00001.parquet"
    t = pq.read_table(path)
    prompts = t.column("prompt").to_pylist()
    prompts[3] = prompts[3].removesuffix("<rec>")
    pq.write_table(t.set_column(t.column_names.index("prompt"), "prompt", pa.array(prompts)), path)
    with pytest.raises(DatasetError, match=r"row 3 .*must end on '<rec>'"):
        dpo_dataset(ds_copy)


def test_bad_order_is_rejected(tiny_dataset):
    with pytest.raises(DatasetError, match="action-first, text-first"):
        sft_dataset(tiny_dataset, order="random")


def test_general_text_mix_ratio_and_seed(tiny_dataset, general_text_file):
    domain = pretrain_texts(tiny_dataset)
    general = general_texts(general_text_file)
    assert len(general) == 3
    mixed = mix_texts(domain, general, 1.0, seed=0)
    extra = [t for t in mixed if t not in domain]
    dchars, gchars = sum(map(len, domain)), sum(map(len, extra))
    assert dchars <= gchars < dchars + max(map(len, general))  # 1:1 by characters, overshoot < 1 paragraph
    assert sorted(t for t in mixed if t in domain) == sorted(domain)
    assert mix_texts(domain, general, 1.0, seed=0) == mixed
    assert mix_texts(domain, general, 0.0, seed=0) == domain


def test_missing_general_text_file(tmp_path):
    with pytest.raises(DatasetError, match="general.txt does not exist"):
        general_texts(tmp_path / "general.txt")


def test_fits_drops_rows_longer_than_max_length(tiny_dataset):
    tok = train_tokenizer(pretrain_texts(tiny_dataset), vocab_size=400)
    ds = sft_dataset(tiny_dataset)
    lengths = [len(tok(p + c, add_special_tokens=False)["input_ids"]) + 1
               for p, c in zip(ds["prompt"], ds["completion"], strict=True)]
    cut = sorted(lengths)[len(lengths) // 2]
    kept, dropped = fits(tok, ds, cut, ["completion"])
    assert dropped == sum(n > cut for n in lengths) and len(kept) == len(ds) - dropped


def test_pretrain_actions_view_is_the_prompt_history_layout(tiny_dataset):
    texts = pretrain_texts(tiny_dataset)
    assert history_view(texts, "full") == texts
    actions = history_view(texts, "actions")
    assert len(actions) == len(texts)
    for full, short in zip(texts[:5], actions[:5], strict=True):
        ops = parse_history(full)
        assert "<desc>" in full and "<env>" not in short and "<desc>" not in short
        assert [(o.time, o.actions) for o in parse_history(short)] == [(o.time, o.actions) for o in ops]
        assert short == serialize_history(ops)  # exactly what a prompt's history window holds
    with pytest.raises(DatasetError, match="pretrain row 1: not a serialised history"):
        history_view([texts[0], "<hist> <op> yesterday </op> </hist>"], "actions")
    with pytest.raises(DatasetError, match="pretrain view must be one of actions, full"):
        history_view(texts, "summary")


def test_every_reader_refuses_an_incomplete_split(ds_copy):
    """One strict reader: evaluation, replay, the card and the app see a missing shard as training does."""
    from app.browse import BrowseError, summarize_dataset
    from app.browse import read_rows as browse_rows
    from sim.dataset.files import read_rows

    (ds_copy / "data" / "pretrain" / "train-00001-of-00002.parquet").unlink()
    missing = r"missing shard file .*pretrain/train-00001-of-00002\.parquet"
    with pytest.raises(DatasetError, match=missing):
        read_rows(ds_copy, "pretrain", "train")
    with pytest.raises(BrowseError, match=missing):
        browse_rows(ds_copy, "pretrain", "train")
    with pytest.raises(BrowseError, match=missing):
        summarize_dataset(ds_copy)
    assert read_rows(ds_copy, "feedback", "test", required=False) == []  # absent, and allowed to be
    with pytest.raises(DatasetError, match=r"no feedback test split .*config folder .*data/feedback is missing"):
        read_rows(ds_copy, "feedback", "test")


def test_training_prompts_rebuilt_with_a_shorter_window(tmp_path, tiny_dataset):
    from sim.dataset.build import DatasetConfig, build

    data = tmp_path / "data"
    build(DatasetConfig(out=str(data), preset="tiny", workers=1))
    for read in (lambda **kw: sft_dataset(data, **kw), lambda **kw: dpo_dataset(data, **kw)):
        stored, short = read(), read(history_k=4)
        assert len(short) == len(stored) > 0  # the same rows: held-out rows are picked on the stored prompts
        for a, b in zip(stored["prompt"], short["prompt"], strict=True):
            pa_, pb = parse_prompt(a), parse_prompt(b)
            assert pb.history == pa_.history[-4:] and pb.devices == pa_.devices and pb.usual == pa_.usual
    with pytest.raises(DatasetError, match="operations"):  # the hand-made dataset has no operations config
        sft_dataset(tiny_dataset, history_k=4)


def test_validation_slice_is_the_train_periods_last_days(tmp_path):
    """ceil(10% of the days the sft train rows span), at least one (the fixture's rows start on its
    second day, 2026-03-03): 9 days -> the last, 2026-03-11; 10 -> the last, 03-12; 11 -> the last two,
    03-12 and 03-13; rows of one day have no slice; a prompt without a decision time is named."""
    from sim.dataset.files import DatasetError as FilesError
    from sim.dataset.files import held_out_since, is_held_out, validation_rule
    from sim.records import GrammarError, prompt_time
    from tests.training.conftest import write_dataset

    assert held_out_since(write_dataset(tmp_path / "d10", n_days=10)) == datetime(2026, 3, 11)
    assert held_out_since(write_dataset(tmp_path / "d11", n_days=11)) == datetime(2026, 3, 12)
    assert held_out_since(write_dataset(tmp_path / "d12", n_days=12)) == datetime(2026, 3, 12)
    one = write_dataset(tmp_path / "one", n_days=2)
    assert held_out_since(one) is None and len(sft_dataset(one)) == 5
    assert validation_rule(one) == "none (the sft train split spans one day)"
    assert validation_rule(tmp_path / "nowhere") == "none (no sft train split)"
    p = "<hist> </hist> <now> 2026-03-11 06:59 Wed <env> <devices> <usual> <rec>"
    assert prompt_time(p) == datetime(2026, 3, 11, 6, 59)
    assert is_held_out(p, datetime(2026, 3, 11)) and not is_held_out(p, datetime(2026, 3, 12))
    assert not is_held_out(p, None)
    with pytest.raises(GrammarError, match="<now>"):
        prompt_time("<hist> </hist> <rec>")
    with pytest.raises(FilesError, match="decision time"):
        is_held_out("<hist> </hist> <now> 2026-03-11 06:59 Mon <rec>", datetime(2026, 3, 11))  # wrong weekday


def test_refs_name_the_usual_operation_each_target_is(tiny_dataset):
    """With ``refs`` every SFT, DPO and listwise target carries ``[k]`` after ``<act>``: the label's
    position among its own prompt's usual operations (1 = most likely), 0 when it is none."""
    from sim.records import parse_prompt, parse_ref, usual_ref

    plain, refs = sft_dataset(tiny_dataset), sft_dataset(tiny_dataset, refs=True)
    assert plain["prompt"] == refs["prompt"]
    refs_seen = []
    for p, c0, c in zip(refs["prompt"], plain["completion"], refs["completion"], strict=True):
        actions, desc = parse_target(c0)
        k = usual_ref(actions, parse_prompt(p).usual)
        assert parse_ref(c0) is None and parse_ref(c) == k and parse_target(c) == (actions, desc)
        assert c == c0.replace("<act> ", f"<act> [{k}] ", 1)
        refs_seen.append(k)
    assert max(refs_seen) >= 1  # labels among the usual operations get their position (the fixture's all are)
    tf = sft_dataset(tiny_dataset, order="text-first", refs=True)
    assert all(parse_ref(c, "text-first") is not None for c in tf["completion"])
    pairs = dpo_dataset(tiny_dataset, refs=True)
    assert all(parse_ref(r["chosen"]) is not None and parse_ref(r["rejected"]) is not None for r in pairs)
    lw = listwise_dataset(tiny_dataset, refs=True)
    got = []
    for row in lw:
        usual = parse_prompt(row["prompt"]).usual
        got += [parse_ref(c) for c in row["candidates"]]
        assert got[-len(row["candidates"]):] == [usual_ref(parse_target(c)[0], usual) for c in row["candidates"]]
    assert 0 in got and max(got) > 1  # candidates outside the usual operations and at several positions

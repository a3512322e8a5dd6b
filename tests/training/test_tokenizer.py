"""The domain tokenizer: whole domain tokens, special markers, exact round trips through save/load."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from sim.catalog import DEVICE_TYPES, ROOMS
from sim.records import MARKERS
from training.data import pretrain_texts, sft_dataset
from training.tokenizer import bracket_words, domain_words, is_domain_tokenizer, load_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok(tiny_dataset):
    return train_tokenizer(pretrain_texts(tiny_dataset), vocab_size=400)


def test_every_domain_word_is_one_token(tok):
    words = domain_words()
    assert set(ROOMS) <= set(words) and "light_2" in words and "target_temperature" in words
    for w in words:
        assert tok.tokenize(w) == [w], w
    for w in bracket_words():
        assert tok.tokenize(f"[{w}]") == [f"[{w}]"], w
        assert tok.tokenize(f"x [{w}]") == ["x", f" [{w}]"], w
    assert {"26", "6500", "cool", "return_to_base", "locked"} <= set(words)
    assert len(set(words)) == len(words)


def test_markers_are_special_single_tokens(tok):
    for m in MARKERS:
        ids = tok(m, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and m in tok.all_special_tokens


def test_action_tokenises_to_four_tokens_hand_worked(tok):
    # [room] [device] [field] [value]: one token each; a second action takes its space along
    assert tok.tokenize("[bedroom][light_2][power][on] [bedroom][light_2][brightness][60]") == [
        "[bedroom]", "[light_2]", "[power]", "[on]", " [bedroom]", "[light_2]", "[brightness]", "[60]"]
    # bare words (descriptions) stay whole tokens too, with the space before them
    assert tok.tokenize("bedroom light_2") == ["bedroom", " light_2"]


def test_operation_times_and_spaced_markers_are_whole_tokens_hand_worked(tok):
    op = "<hist> <op> 2026-01-21 17:31 Wed <act> [study][curtain][action][close] </op> </hist> <rec>"
    assert tok.tokenize(op) == ["<hist>", " <op>", " 2026", "-01", "-21", " 17", ":31", " Wed", " <act>", " [study]",
                                "[curtain]", "[action]", "[close]", " </op>", " </hist>", " <rec>"]
    assert tok.decode(tok(op, add_special_tokens=False)["input_ids"], skip_special_tokens=False) == op
    # a suffix beyond _9 falls back to brackets, the device type and BPE pieces, and still round-trips
    assert tok.tokenize("[light_10]")[:3] == ["[", "light", "_"]
    assert tok.decode(tok("[light_10]", add_special_tokens=False)["input_ids"]) == "[light_10]"


def test_ids_round_trip_through_save_and_load(tok, tiny_dataset, tmp_path):
    ds = sft_dataset(tiny_dataset)
    texts = [p + c for p, c in zip(ds["prompt"][:5], ds["completion"][:5], strict=True)]
    ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    tok.save_pretrained(tmp_path / "tk")
    assert is_domain_tokenizer(tmp_path / "tk")
    back = load_tokenizer(tmp_path / "tk")
    assert isinstance(back, PreTrainedTokenizerFast)
    assert back.get_vocab() == tok.get_vocab() and len(back) == len(tok)
    assert [back(t, add_special_tokens=False)["input_ids"] for t in texts] == ids
    # decoding gives the text back exactly (markers kept)
    assert [back.decode(i, skip_special_tokens=False) for i in ids] == texts
    assert (back.eos_token, back.pad_token, back.bos_token) == ("</s>", "<pad>", "<s>")


def test_same_corpus_same_vocabulary(tiny_dataset):
    a = train_tokenizer(pretrain_texts(tiny_dataset), vocab_size=400)
    b = train_tokenizer(pretrain_texts(tiny_dataset), vocab_size=400)
    assert a.get_vocab() == b.get_vocab()


def test_device_suffix_variants_cover_every_type():
    words = set(domain_words())
    for name in DEVICE_TYPES:
        assert {name, f"{name}_2", f"{name}_9"} <= words


def test_vocab_size_too_small_is_rejected():
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(["x"], vocab_size=100)

"""Model presets: sizes, seeded init, safetensors-only save/load."""

from __future__ import annotations

import pytest
import torch

from training.data import pretrain_texts
from training.models import PRESETS, build_model, count_parameters, load_model
from training.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tok(tiny_dataset):
    return train_tokenizer(pretrain_texts(tiny_dataset), vocab_size=1024)


@pytest.mark.parametrize(("name", "low", "high"), [("tiny", 0.7e6, 1.3e6), ("small", 4e6, 6.5e6),
                                                   ("base", 25e6, 35e6)])
def test_preset_sizes(tok, name, low, high):
    n = count_parameters(build_model(name, tok, seed=0))
    assert low <= n <= high, n


def test_init_depends_only_on_seed(tok):
    a, b, c = (build_model("tiny", tok, seed=s) for s in (1, 1, 2))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_save_load_is_safetensors_only(tok, tmp_path):
    m = build_model("tiny", tok, seed=0)
    m.save_pretrained(tmp_path / "m")
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    back = load_model(tmp_path / "m")
    assert all(torch.equal(v, back.state_dict()[k]) for k, v in m.state_dict().items())
    assert back.config.vocab_size == len(tok) and back.config.tie_word_embeddings


def test_unknown_preset_names_the_allowed(tok):
    with pytest.raises(ValueError, match=", ".join(PRESETS)):
        build_model("huge", tok, seed=0)


def test_load_model_missing_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path)

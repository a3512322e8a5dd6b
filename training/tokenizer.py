"""The domain tokenizer: byte-level BPE trained on the pre-training corpus, with the domain's
vocabulary as whole tokens.

Whole tokens (never split, never merged with neighbours):
- the grammar markers ``sim.records.MARKERS`` (``<op>``, ``<act>``, ``<rec>``, ...) as *special*
  tokens, plus ``<s>``, ``</s>``, ``<pad>``, ``<unk>``;
- every bracketed name ``[w]`` and its spaced form `` [w]`` (``bracket_words``: rooms, device
  names, fields, indicators, weather and field values), so an action ``[room][device][field][value]``
  is 4 tokens, not 12, and a prompt about 45% shorter than with bare names (measured on the
  quickstart preset: median prompt+completion 570 -> 297 tokens);
- ``[`` and ``]`` (for names outside the catalogue, spelled in pieces);
- every catalogue room (``sim.catalog.ROOMS`` and ``outdoor``), device type name and its
  ``_2`` .. ``_9`` suffix variants (``light_2`` is one token; a tenth light ``light_10`` falls back
  to BPE pieces), field name, environment indicator, weekday, and every enum or grid value of
  every field (``FieldSpec.grid()``: ``on``, ``cool``, ``0`` .. ``100``, ``2700`` .. ``6500``).

Added tokens match leftmost-longest in the raw text, so `` [bedroom]`` wins over ``[bedroom]``,
which wins over ``[``. Bare domain words are *normal* added tokens with ``single_word=True``,
matched in the raw text before BPE (longest match first: ``light_2`` beats ``light``) wherever
they are not glued to letters or digits: ``20`` is not cut out of the year ``2026``, while ``_`` may count as a boundary
(``light_10`` -> ``light`` ``_`` + BPE pieces). They match in names and descriptions alike ("turn on
the bedroom light"). They decode as themselves, and spaces are byte-level ``Ġ`` symbols, so
``decode(encode(x)) == x`` for any grammar text.
Markers are special tokens: decode with ``skip_special_tokens=False`` to keep the grammar.

Saved with ``save_pretrained`` (``tokenizer.json``) and reloaded with
``PreTrainedTokenizerFast.from_pretrained`` (never ``AutoTokenizer``: NOTES, it may swap the
class and change ids). A ``--base-model``'s own tokenizer is loaded with ``AutoTokenizer``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from sim.catalog import DEVICE_TYPES, INDICATORS, OUTDOOR, ROOMS, WEATHER
from sim.records import MARKERS, WEEKDAYS

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK, *MARKERS)
BRACKETS: tuple[str, ...] = ("[", "]")
MAX_SUFFIX = 9  # light_2 .. light_9 are whole tokens
DOMAIN_MARK = "homepilot_domain_tokenizer"  # written into tokenizer_config.json to recognise ours


def domain_words() -> tuple[str, ...]:
    """Every catalogue word that must be one token, in a fixed order (ids are deterministic)."""
    words: list[str] = [*ROOMS, OUTDOOR]
    for name, dt in DEVICE_TYPES.items():
        words += [name, *(f"{name}_{i}" for i in range(2, MAX_SUFFIX + 1))]
        for spec in dt.fields.values():
            words += [spec.name, *spec.grid()]
    words += [*INDICATORS, "weather", *WEATHER, *WEEKDAYS]
    return tuple(dict.fromkeys(words))  # dedupe, keep first occurrence order


def bracket_words() -> tuple[str, ...]:
    """Every catalogue word that appears inside brackets (all domain words but the weekdays)."""
    return tuple(w for w in domain_words() if w not in WEEKDAYS)


def bracketed_tokens() -> list[str]:
    """``[w]`` then `` [w]`` for every bracket word (fixed order: ids are deterministic)."""
    words = bracket_words()
    return [*(f"[{w}]" for w in words), *(f" [{w}]" for w in words)]


def spaced_tokens() -> list[str]:
    """Whole tokens for what every operation repeats: each marker with the space before it
    (`` <op>``; plain added tokens, the bare markers stay special), `` Mon`` .. `` Sun``, the
    time as one token per part: year `` 2020`` .. `` 2039``, hour `` 00`` .. `` 23``, minute
    ``:00`` .. ``:59``, month and day ``-01`` .. ``-31``; and every domain word with its space
    (`` bedroom`` in descriptions). An operation of one action is then 13 tokens, not 18, and the
    hour of day is one embedding (the signal time-of-day habits hang on)."""
    return [*(f" {m}" for m in MARKERS), *(f" {d}" for d in WEEKDAYS), *(f" {y}" for y in range(2020, 2040)),
            *(f" {h:02d}" for h in range(24)), *(f":{m:02d}" for m in range(60)), *(f"-{d:02d}" for d in range(1, 32)),
            *(f" {w}" for w in domain_words() if w not in WEEKDAYS)]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on ``texts`` (the pretrain corpus) and add the domain words.

    ``vocab_size`` counts the BPE vocabulary (256 byte symbols + merges + specials); the domain
    words, their bracketed forms and the brackets come on top, so ``len(tokenizer) ~= vocab_size + ~1.5k``.
    """
    if vocab_size < 300:
        raise ValueError(f"vocab_size must be >= 300 (256 byte symbols + specials), got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # added before training so the trainer skips them (no merges are spent on domain words)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    whole = [AddedToken(b, normalized=False) for b in BRACKETS]  # brackets touch names: no boundary
    whole += [AddedToken(w, single_word=True, normalized=False) for w in domain_words()]
    whole += [AddedToken(w, normalized=False) for w in (*bracketed_tokens(), *spaced_tokens())]
    tok.add_tokens(whole)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    # re-adding is a no-op for tokens already present; it guarantees they exist after training
    tok.add_tokens(whole)
    return wrap(tok)


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A ``tokenizers.Tokenizer`` as the transformers tokenizer the trainers take."""
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, model_max_length=4096)
    fast.add_special_tokens({"additional_special_tokens": list(MARKERS)})
    fast.padding_side = "right"
    fast.init_kwargs[DOMAIN_MARK] = True
    return fast


def is_domain_tokenizer(path: str | Path) -> bool:
    """True when ``path`` holds a tokenizer written by :func:`train_tokenizer`."""
    cfg = Path(path) / "tokenizer_config.json"
    if not cfg.is_file():
        return False
    return bool(json.loads(cfg.read_text()).get(DOMAIN_MARK, False))


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerBase:
    """Load the tokenizer saved next to a model: ours as ``PreTrainedTokenizerFast`` (ids stay
    exactly as trained), any other (a ``--base-model``'s) with ``AutoTokenizer``."""
    path = Path(path)
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(f"no tokenizer in {path}: expected tokenizer.json / tokenizer_config.json")
    if is_domain_tokenizer(path):
        tok = PreTrainedTokenizerFast.from_pretrained(str(path))
    else:
        tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    return prepare_tokenizer(tok)


def prepare_tokenizer(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Give a tokenizer what the trainers need: a pad token (eos if none), right padding."""
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token if tok.eos_token is not None else tok.unk_token
    if tok.eos_token is None:
        raise ValueError("the tokenizer has no eos_token; training needs one to end completions")
    tok.padding_side = "right"
    return tok

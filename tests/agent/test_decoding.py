"""Legal-only decoding: the automaton, token masks for two kinds of tokenizer, greedy and beam."""

from __future__ import annotations

import pytest
import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from agent.automaton import Constraint, DecodingError, Grammar, home_trie, type_trie
from agent.context import random_contexts
from agent.decoding import generate_beam, generate_greedy
from sim.catalog import DEVICE_TYPES, ROOMS, is_legal
from sim.records import MARKERS, parse_target

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", *MARKERS]


# ---------------------------------------------------------------- toy tokenizers and models (shared with other tests)


def toy_tokenizer() -> PreTrainedTokenizerFast:
    """Word-level: markers special, brackets and single spaces are tokens, catalogue words whole."""
    words = ["[", "]", " ", *ROOMS, "outdoor", "temperature", "humidity", "turn", "the", "set", "to"]
    for name, dt in DEVICE_TYPES.items():
        words += [name, *(f"{name}_{i}" for i in range(2, 10))]
        for spec in dt.fields.values():
            words += [spec.name, *spec.grid()]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(SPECIALS + words))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s|\[|\]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")


def bpe_tokenizer(texts: list[str], vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """Plain byte-level BPE trained on grammar text: names split into pieces, merges across brackets."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>")


def tiny_llama(tokenizer, seed: int = 0, hidden: int = 64, layers: int = 2, init: float = 0.3) -> LlamaForCausalLM:
    """Random weights; a large init spread makes greedy choices vary with the context."""
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                      num_key_value_heads=4, intermediate_size=2 * hidden, max_position_embeddings=2048,
                      tie_word_embeddings=True, initializer_range=init, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(cfg).eval()


def assert_legal(ctx, text: str, order: str) -> tuple:
    """The completion parses and every action is a legal setting of one of the context's candidates."""
    actions, desc = parse_target(text, order)
    types = {(r, d): t for r, d, t in ctx.legal_devices()}
    assert actions
    for a in actions:
        assert a.target in types, (a, text)
        assert is_legal(types[a.target], a.field, a.value), (a, text)
    return actions, desc


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: op-level threading costs more than it gives, and the CPUs are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def toy():
    tok = toy_tokenizer()
    return tok, tiny_llama(tok, hidden=32, layers=1)


# ---------------------------------------------------------------- tries and the automaton


def _count_terminals(node, seen=None) -> int:
    return int(node.terminal) + sum(_count_terminals(c) for c in node.children.values())


def test_type_trie_holds_every_field_value_once():
    for name in ("ac", "light", "lock"):
        want = sum(len(spec.grid()) for spec in DEVICE_TYPES[name].fields.values())
        assert _count_terminals(type_trie(name)) == want
    assert _count_terminals(type_trie("ac")) == 2 + 5 + 15 + 4  # power, mode, 16..30 C, fan speed


def test_grammar_walk_accepts_legal_and_rejects_illegal_text():
    g = Grammar("action-first", max_actions=2)
    root = home_trie((("bedroom", "ac", "ac"), ("bedroom", "light", "light")))
    ok = g.walk(g.start(root), "<act> [bedroom][ac][target_temperature][26] [bedroom][light][power][on] <desc> warm",
                root)
    assert ok is not None and ok[0] == ("d", 2)
    for bad in ("<act> [bedroom][ac][target_temperature][31]",  # out of range
                "<act> [bedroom][ac][brightness][50]",  # field of another type
                "<act> [kitchen][ac][power][on]",  # room without that device
                "<act> [bed room][ac][power][on]",  # space inside a name
                "<act>  [bedroom]",  # two spaces
                "<act> <desc> x",  # a description before any action
                "<act> [bedroom][ac][power][on][bedroom][ac][power][on][bedroom][ac][power][on]",  # > max_actions
                "<act> [bedroom][ac][power][on] <desc> a [b]"):  # brackets in the description
        assert g.walk(g.start(root), bad, root) is None, bad
    tf = Grammar("text-first")
    assert tf.walk(tf.start(root), "<desc> cool down <act> [bedroom][ac][mode][cool]", root)[0][0] == "s"


def test_spans_label_the_last_character_of_each_token():
    g = Grammar()
    root = home_trie((("bedroom", "ac", "ac"),))
    st = g.walk(g.start(root), "<act> ", root)[0]
    for text, span, action in (("[bedroom]", "device", 0), ("[ac]", "device", 0), ("[mode", "field", 0),
                               ("][", "value", 0), ("cool]", "value", 0), (" [", "device", 1)):
        st, sp, a = g.walk(st, text, root)
        assert (sp, a) == (span, action), text


def test_duplicate_device_and_unknown_type_are_errors():
    with pytest.raises(DecodingError, match="listed twice"):
        home_trie((("bedroom", "ac", "ac"), ("bedroom", "ac", "ac")))
    with pytest.raises(DecodingError, match="unknown type 'toaster'"):
        home_trie((("kitchen", "toaster", "toaster"),))


def test_masks_are_exactly_the_legal_next_tokens(toy):
    tok, _ = toy
    c = Constraint(tok, Grammar())
    root = c.root((("bedroom", "ac", "ac"), ("kitchen", "light", "light")))
    allowed, bias = c.mask(c.grammar.start(root), root)
    assert tok.convert_ids_to_tokens(allowed) == ["<act>"]
    st = c.advance(c.advance(c.grammar.start(root), allowed[0], root)[0], tok.convert_tokens_to_ids("["), root)[0]
    allowed, bias = c.mask(st, root)
    assert sorted(tok.convert_ids_to_tokens(allowed)) == ["bedroom", "kitchen"]
    assert torch.isinf(bias).sum() == len(tok) - 2


# ---------------------------------------------------------------- generation


def test_legal_action_rate_is_100_percent_over_1000_contexts(toy):
    tok, model = toy
    ctxs = random_contexts(1000, seed=7, devices=(1, 10), history=1, homes=250)
    c = Constraint(tok, Grammar("action-first", max_actions=2))
    n_actions = 0
    devices_seen = set()
    for b in range(0, len(ctxs), 250):
        chunk = ctxs[b:b + 250]
        out = generate_greedy(model, tok, c, [x.prompt_text(1) for x in chunk],
                              [c.root(x.legal_devices()) for x in chunk], max_desc_tokens=1)
        for x, d in zip(chunk, out, strict=True):
            assert d.stopped == "eos", d.text
            acts, _ = assert_legal(x, d.text, "action-first")
            n_actions += len(acts)
            devices_seen |= {a.device for a in acts}
    assert n_actions >= 1000
    assert len(devices_seen) > 10  # the random model's choices vary with the home


def test_text_first_and_beam_are_legal(toy):
    tok, model = toy
    ctxs = random_contexts(24, seed=3, devices=(2, 8), history=2)
    c = Constraint(tok, Grammar("text-first", max_actions=2))
    roots = [c.root(x.legal_devices()) for x in ctxs]
    prompts = [x.prompt_text(2) for x in ctxs]
    for d, x in zip(generate_greedy(model, tok, c, prompts, roots, max_desc_tokens=4), ctxs, strict=True):
        assert d.text.startswith("<desc>")
        assert_legal(x, d.text, "text-first")
    cb = Constraint(tok, Grammar("action-first", max_actions=2))
    rb = [cb.root(x.legal_devices()) for x in ctxs[:6]]
    beam = generate_beam(model, tok, cb, prompts[:6], rb, num_beams=3, max_desc_tokens=3)
    for d, x in zip(beam, ctxs[:6], strict=True):
        assert_legal(x, d.text, "action-first")
        assert all(0 < s.p_raw <= s.p_legal <= 1 + 1e-6 for s in d.steps)


def test_description_budget_and_probabilities(toy):
    tok, model = toy
    ctxs = random_contexts(8, seed=5, devices=(2, 6), history=2)
    c = Constraint(tok, Grammar())
    out = generate_greedy(model, tok, c, [x.prompt_text(2) for x in ctxs], [c.root(x.legal_devices()) for x in ctxs],
                          max_desc_tokens=2)
    for d in out:
        if "<desc>" in d.text:
            assert len(tok(d.text.split("<desc>")[1], add_special_tokens=False)["input_ids"]) <= 2
        forced = [s for s in d.steps if s.n_allowed == 1]
        assert forced and all(s.p_legal == pytest.approx(1.0) for s in forced)
        assert all(s.p_raw <= s.p_legal + 1e-6 for s in d.steps)


def test_generic_bpe_tokenizer_with_merged_pieces_stays_legal():
    ctxs = random_contexts(40, seed=11, devices=(2, 10), history=3)
    corpus = [x.prompt_text(3) for x in ctxs[:30]] + [" ".join(str(o.actions[0]) for o in x.history) for x in ctxs]
    tok = bpe_tokenizer(corpus)
    assert any(len(t) > 3 for t in tok.get_vocab())  # real merges exist
    model = tiny_llama(tok, seed=1)
    c = Constraint(tok, Grammar("action-first", max_actions=2))
    test = ctxs[30:]
    out = generate_greedy(model, tok, c, [x.prompt_text(3) for x in test], [c.root(x.legal_devices()) for x in test],
                          max_desc_tokens=3, max_new_tokens=200)
    for d, x in zip(out, test, strict=True):
        assert d.stopped == "eos", d.text
        assert_legal(x, d.text, "action-first")
    assert any(len(c.vocab.text[s.token]) > 1 and s.span != "other" for d in out for s in d.steps)


def test_same_inputs_same_outputs(toy):
    tok, model = toy
    ctxs = random_contexts(6, seed=2, devices=(2, 6), history=2)
    c = Constraint(tok, Grammar())
    args = ([x.prompt_text(2) for x in ctxs], [c.root(x.legal_devices()) for x in ctxs])
    a = generate_greedy(model, tok, c, *args, max_desc_tokens=3)
    b = generate_greedy(model, tok, Constraint(tok, Grammar()), *args, max_desc_tokens=3)
    assert [d.text for d in a] == [d.text for d in b]
    growing = generate_greedy(model, tok, c, *args, max_desc_tokens=3, static_cache=False)  # concatenated KV cache
    assert [d.text for d in growing] == [d.text for d in a]
    assert [s.p_raw for s in growing[0].steps] == pytest.approx([s.p_raw for s in a[0].steps], rel=1e-4)


def test_a_ref_may_open_the_actions_once_when_the_grammar_takes_refs():
    root = home_trie((("bedroom", "ac", "ac"), ("2nd_floor", "light", "light"), ("5", "light", "light")))
    g, plain = Grammar("action-first", max_actions=2, refs=True), Grammar("action-first", max_actions=2)
    ok = g.walk(g.start(root), "<act> [3] [bedroom][ac][mode][cool] <desc> cool", root)
    assert ok is not None and ok[0] == ("d", 1)
    assert g.walk(g.start(root), "<act> [bedroom][ac][mode][cool]", root)[0][0] == "s"  # the ref is optional
    assert g.walk(g.start(root), "<act> [2nd_floor][light][power][on]", root)[0][0] == "s"  # a digit-led room
    assert g.walk(g.start(root), "<act> [5][light][power][on]", root)[0][0] == "s"  # a room named "5" stays one
    st, span, idx = g.walk(g.start(root), "<act> [0]", root)
    assert (span, idx) == ("other", -1)  # not an action's device: Eq. 6 and the first-token probability skip it
    for bad in ("<act> [3] [2] [bedroom][ac][mode][cool]",  # two refs
                "<act> [bedroom][ac][mode][cool] [3]",  # a ref after an action
                "<act> [12] [bedroom][ac][mode][cool]",  # one digit
                "<act> [3]<desc> x"):  # a ref alone
        assert g.walk(g.start(root), bad, root) is None, bad
    assert plain.walk(plain.start(root), "<act> [3] [bedroom][ac][mode][cool]", root) is None
    tf = Grammar("text-first", refs=True)
    assert tf.walk(tf.start(root), "<desc> cool down <act> [1] [bedroom][ac][mode][cool]", root)[0][0] == "s"


def test_with_the_prompts_usual_operations_a_ref_is_followed_by_exactly_the_operation_it_names():
    from sim.records import Action

    devices = (("bedroom", "ac", "ac"), ("bedroom", "light", "light"))
    cool = (Action("bedroom", "ac", "mode", "cool"),)
    light_on = (Action("bedroom", "light", "power", "on"), Action("bedroom", "light", "brightness", "50"))
    elsewhere = (Action("kitchen", "light", "power", "on"),)  # not a device of this home: no ref for it
    root = home_trie(devices, (cool, light_on, elsewhere))
    g = Grammar("action-first", max_actions=3, refs=True)

    def walk(text):
        return g.walk(g.start(root), text, root)

    assert walk("<act> [1] [bedroom][ac][mode][cool]") == (("s", None, 1, False), "value", 0)
    assert walk("<act> [1] [bedroom][ac][mode][cool] <desc> cool")[0] == ("d", 1)
    assert walk("<act> [2] [bedroom][light][power][on] [bedroom][light][brightness][50]")[0] == ("s", None, 2, False)
    # [0]: the actions are free; past them the states are the home's (root.base), shared by all its prompts
    assert walk("<act> [0] [bedroom][light][power][off]")[0] == ("s", root.base, 1, False)
    assert walk("<act> [bedroom][light][power][off]")[0] == ("s", root.base, 1, False)
    for bad in ("<act> [1] [bedroom][ac][mode][heat]",  # not the operation [1] names
                "<act> [1] [bedroom][light][power][on]",
                "<act> [2] [bedroom][light][power][on] <desc> x",  # only part of it
                "<act> [1] [bedroom][ac][mode][cool] [bedroom][light][power][on]",  # nothing after the copy
                "<act> [3] [kitchen][light][power][on]",  # an operation the home cannot do has no ref
                "<act> [4] [bedroom][ac][mode][cool]"):  # past the list
        assert walk(bad) is None, bad
    assert walk("<act> [2] [bedroom][light][power][on]")[0][0] == "c"  # mid-copy
    tf = Grammar("text-first", refs=True)
    assert tf.walk(tf.start(root), "<desc> cool <act> [1] [bedroom][ac][mode][cool]", root)[0] == ("s", None, 1, False)
    assert tf.walk(tf.start(root), "<desc> cool <act> [1] [bedroom][ac][mode][cool] <desc>", root) is None

    # the token masks: after "<act> [2]" every allowed token continues the copy, and once it is done
    # no token opens another action; a grammar without refs ignores the usual operations
    tok = toy_tokenizer()
    c = Constraint(tok, g)
    r = c.root(devices, (cool, light_on, elsewhere))
    assert c.root(devices, (cool, light_on, elsewhere)) is r and c.root(devices) is not r
    assert r.base is c.root(devices) is c.root(devices, (light_on,)).base  # one home, one set of shared states
    state, text = g.walk(g.start(r), "<act> [2]", r)[0], ""
    want = " [bedroom][light][power][on] [bedroom][light][brightness][50]"
    while state[0] == "c":
        allowed, _ = c.mask(state, r)
        texts = {c.vocab.text[i] for i in allowed}
        assert texts and all(want.startswith(text + t) for t in texts), texts
        i = max(allowed, key=lambda j: len(c.vocab.text[j]))
        state, text = c.advance(state, i, r)[0], text + c.vocab.text[i]
    assert text == want and state == ("s", None, 2, False)
    after = {c.vocab.text[i] for i in c.mask(state, r)[0] if i != c.vocab.eos_id}
    assert after and not any(t.startswith("[") for t in after)
    plain = Constraint(tok, Grammar("action-first", refs=False))
    assert plain.root(devices, (cool,)) is plain.root(devices)

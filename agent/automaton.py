"""Legal-only decoding, the grammar side: a character automaton over the home's legal actions,
turned into per-step token masks for any Hugging Face tokenizer (``agent.decoding`` generates with them).

Legal actions of a home = its candidate devices x each device type's catalogue fields x each
field's ``FieldSpec.grid()`` values, spelled ``[room][device][field][value]`` (``sim.records``).
A completion (after the prompt's ``<rec>``) is, in the order the model was trained in::

    action-first:  <act> [R] A ( A)* [ <desc> TEXT] eos    (at most ``max_actions`` actions)
    text-first:    <desc> TEXT <act> [R] A ( A)* eos

``R`` is the optional ``ref`` (``sim.records``; ``Grammar.refs``): ``[0]`` .. ``[9]``, once, right after
``<act>``, for models trained to name which usual operation of the prompt they answer. When the home's
trie knows the prompt's usual operations (``home_trie(devices, usual)``), only ``[0]`` and the refs of its
usual operations that are legal in the home are offered, and ``[k]`` (k >= 1) is followed by exactly the
k-th usual operation's actions (a copy the decoder cannot get wrong; ``[0]`` leaves them free); without
them any digit is offered and the actions after it are constrained as always.

The automaton walks characters. Names never contain whitespace, so whitespace is accepted only
where the grammar puts a space: once after ``<act>`` and once between/after actions; TEXT is any
characters except ``[ ] < >``. Tries are shared: one trie of ``[field][value]`` strings per device
type (built once per process), and one small trie of ``[room][device]`` strings per home whose
device leaves link into the type tries. A token is allowed at a state when its decoded text keeps
the generated text a prefix of a legal completion *and* the state it reaches can still be
completed by some token ("live"), so decoding never paints itself into a corner.

Masks are cached per automaton state. States inside a type trie are shared by every home: their
masks are computed against a placeholder home, which forbids a single token from running past the
next action's opening ``[`` into a room name (a BPE merge like ``] [`` is fine, ``] [bedroom``
is not: the model spells it in two tokens instead).

Each character is labelled with the span it falls in (``device`` = ``[room][device]``, ``field``,
``value``, or ``other``) and the action it belongs to; a generated token takes the labels of its
last non-space character.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch

from sim.catalog import DEVICE_TYPES, device_type
from sim.records import ACT, DESC, ORDERS, Action, Order, serialize_action, serialize_actions

FORBIDDEN_TEXT = set("[]<>")  # description characters the grammar forbids
SPANS: tuple[str, ...] = ("device", "field", "value", "other")


class DecodingError(ValueError):
    """A tokenizer or input the constrained decoder cannot work with; the message says why."""


# ---------------------------------------------------------------- tries


class Node:
    """A trie node; ``span`` is the span of the character that leads into it."""

    __slots__ = ("children", "span", "terminal", "home", "ref", "with_ref", "copy", "base", "rest")

    def __init__(self, span: str, home: bool = False) -> None:
        self.children: dict[str, Node] = {}
        self.span = span
        self.terminal = False  # the character into this node closed an action's value
        self.home = home  # part of a home-specific trie (its masks are not shared)
        self.ref = False  # the character into this node closed a ref ``[k]``
        self.with_ref: Node | None = None  # a home root: the same root that also takes a ref first
        self.copy: Node | None = None  # a ref's node: the start of the actions it names (``_copy_chain``)
        self.base: Node | None = None  # a prompt's root (``with_usual``): the home root it shares its nodes with
        self.rest = ""  # a copy chain's node: the text still to copy from here


def _insert(root: Node, text: str, spans: list[str], home: bool) -> Node:
    node = root
    for ch, span in zip(text, spans, strict=True):
        nxt = node.children.get(ch)
        if nxt is None:
            nxt = node.children[ch] = Node(span, home)
        node = nxt
    return node


@cache
def type_trie(type_name: str) -> Node:
    """Trie of ``[field][value]`` for every field and grid value of a device type (shared)."""
    root = Node("device")
    for spec in device_type(type_name).fields.values():
        f = f"[{spec.name}]"
        for value in spec.grid():
            v = f"[{value}]"
            _insert(root, f + v, ["field"] * len(f) + ["value"] * len(v), home=False).terminal = True
    return root


def home_trie(devices: tuple[tuple[str, str, str], ...],
              usual: tuple[tuple[Action, ...], ...] | None = None) -> Node:
    """Trie of ``[room][device]`` per (room, device, type); each device leaf continues into its type trie.

    ``usual``: the prompt's usual operations (most likely first) when the decoder knows them: the refs
    after ``<act>`` are then ``[0]`` and ``[k]`` for each legal k-th operation, ``[k]`` followed by its
    actions only (the module docstring; ``with_usual``)."""
    root = Node("other", home=True)
    for room, device, type_name in devices:
        if type_name not in DEVICE_TYPES:
            raise DecodingError(f"device [{room}][{device}] has unknown type {type_name!r}")
        s = f"[{room}][{device}]"
        leaf = _insert(root, s, ["device"] * len(s), home=True)
        if leaf.children:
            raise DecodingError(f"device [{room}][{device}] listed twice")
        leaf.children = type_trie(type_name).children  # shared dict: never inserted into
    root.with_ref = _ref_root(root, dict.fromkeys("0123456789"))
    return root if usual is None else with_usual(root, usual)


def with_usual(root: Node, usual: tuple[tuple[Action, ...], ...]) -> Node:
    """The home trie ``root`` (``home_trie`` without usual operations) for a prompt with these usual
    operations: a root of its own whose refs name them, sharing every other node with ``root``
    (``base``), so the token masks past the first action stay those of the home."""
    refs = {"0": None, **{str(k): acts for k, acts in enumerate(usual[:9], start=1)
                          if acts and all(_legal(root, a) for a in acts)}}
    out = Node("other", home=True)
    out.children = root.children  # the same rooms: one shared dict
    out.base = root
    out.with_ref = _ref_root(root, refs)
    return out


def _ref_root(root: Node, refs: dict[str, tuple[Action, ...] | None]) -> Node:
    """The root right after ``<act>`` when a ref may come first: "[" leads into a room name or into
    a ref's digit; ``refs`` maps each digit offered to the actions it names (None: free actions)."""
    bracket = Node("device", home=True)
    bracket.children = dict(root.children["["].children) if "[" in root.children else {}
    for k, acts in refs.items():  # a room named with a leading digit keeps its path (a copy of its node)
        had = bracket.children.get(k)
        if had is not None and "]" in had.children:
            continue  # a room named just "k": "[k]" stays that room's
        digit = bracket.children[k] = Node("other" if had is None else had.span, home=True)
        digit.children = {} if had is None else dict(had.children)
        close = digit.children["]"] = Node("other", home=True)
        close.ref = True
        close.copy = None if acts is None else _copy_chain(acts)
    with_ref = Node("other", home=True)
    with_ref.children["["] = bracket
    return with_ref


def _legal(root: Node, a: Action) -> bool:
    """Does the home trie spell ``a`` as a whole action?"""
    node = root
    for ch in serialize_action(a):
        node = node.children.get(ch)
        if node is None:
            return False
    return node.terminal


def _copy_chain(actions: tuple[Action, ...]) -> Node:
    """A one-path trie of `` A1 A2 ...`` (the space after the ref, then the actions): its characters'
    spans are those of the home trie, the last character of each action is ``terminal``."""
    start = node = Node("other", home=True)
    nodes = [start]
    for a in actions:
        room_device, field, value = f"[{a.room}][{a.device}]", f"[{a.field}]", f"[{a.value}]"
        text = " " + room_device + field + value
        spans = ["other"] + ["device"] * len(room_device) + ["field"] * len(field) + ["value"] * len(value)
        for ch, span in zip(text, spans, strict=True):
            node.children[ch] = node = Node(span, home=True)
            nodes.append(node)
        node.terminal = True
    whole = " " + serialize_actions(actions)
    for i, n in enumerate(nodes):
        n.rest = whole[i:]
    return start


# A stand-in home for masks of shared states: its "[" leads nowhere (see the module docstring).
_PLACEHOLDER = Node("other", home=True)
_PLACEHOLDER.children["["] = Node("device", home=True)


# ---------------------------------------------------------------- automaton

# States are hashable tuples:
#   ("m", marker, i, after)     inside a marker, i characters consumed; ``after`` follows it
#   ("a", node, n)              inside action number n (0-based) at a trie node
#   ("s", home_root, n, ws)     between actions, n done; ws: the one allowed space is used
#                               (home_root None: the actions a ref named are done, no more may follow)
#   ("c", node, n)              copying the actions a ref named, n of them done, at a chain node
#   ("d", n)                    free description text (n actions done so far)
#   ("e",)                      only eos may follow
State = tuple


@dataclass(frozen=True)
class Grammar:
    """The completion grammar's knobs (see the module docstring)."""

    order: Order = "action-first"
    max_actions: int = 3  # actions per recommendation
    refs: bool = False  # a ref may open the actions (a model trained with refs, training.scoring.uses_refs)

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise DecodingError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.max_actions < 1:
            raise DecodingError(f"max_actions must be >= 1, got {self.max_actions}")

    def start(self, root: Node) -> State:
        if self.order == "action-first":
            return ("m", ACT, 0, ("s", self._act_root(root), 0, False))
        return ("m", DESC, 0, ("d", 0))

    def _act_root(self, root: Node) -> Node:
        """The home root right after ``<act>``: the one that also takes a ref when ``refs``."""
        return root.with_ref if self.refs and root.with_ref is not None else root

    def after_desc_budget(self, root: Node) -> State:
        """Where a description that used its token budget goes: eos, or the ``<act>`` section."""
        return ("e",) if self.order == "action-first" else ("m", ACT, 0, ("s", self._act_root(root), 0, False))

    def eos_ok(self, state: State) -> bool:
        kind = state[0]
        if kind == "s":
            return state[2] >= 1
        if kind == "d":
            return self.order == "action-first"
        return kind == "e"

    def step(self, state: State, ch: str, root: Node) -> tuple[State, str, int] | None:
        """Consume one character: (next state, span of ch, action index) or None if illegal."""
        kind = state[0]
        if kind == "a":
            _, node, n = state
            nxt = node.children.get(ch)
            if nxt is None:
                return None
            home = root.base or root  # the states past the first action are the home's, whatever the prompt
            if nxt.ref:  # a ref closed: the actions follow (no second ref), its usual operation's when known
                return (("c", nxt.copy, n) if nxt.copy is not None else ("s", home, n, False)), "other", -1
            return (("s", home, n + 1, False) if nxt.terminal else ("a", nxt, n)), nxt.span, n
        if kind == "c":
            _, node, n = state
            nxt = node.children.get(ch)
            if nxt is None:
                return None
            done = n + 1 if nxt.terminal else n
            return (("c", nxt, done) if nxt.children else ("s", None, done, False)), nxt.span, n
        if kind == "s":
            _, home, n, ws = state
            if ch.isspace():
                return (None if ws else (("s", home, n, True), "other", n))
            if ch == "[" and n < self.max_actions and home is not None:
                return ("a", home.children["["], n), "device", n
            if ch == "<" and n >= 1 and self.order == "action-first":
                return ("m", DESC, 1, ("d", n)), "other", n
            return None
        if kind == "m":
            _, marker, i, after = state
            if ch != marker[i]:
                return None
            return (after if i + 1 == len(marker) else ("m", marker, i + 1, after)), "other", -1
        if kind == "d":
            if ch == "<" and self.order == "text-first":
                return ("m", ACT, 1, ("s", self._act_root(root), 0, False)), "other", -1
            return (None if ch in FORBIDDEN_TEXT else (state, "other", -1))
        return None  # "e": nothing but eos

    def walk(self, state: State, text: str, root: Node) -> tuple[State, str, int] | None:
        """Consume a token's text; the span/action returned are those of its last non-space char."""
        span, idx = "other", -1
        for ch in text:
            r = self.step(state, ch, root)
            if r is None:
                return None
            state = r[0]
            if not ch.isspace():
                span, idx = r[1], r[2]
        return state, span, idx


def _home_specific(state: State) -> bool:
    """Does the state's mask depend on the home? (Type-trie, description and end states do not.)"""
    kind = state[0]
    if kind == "s":
        return True
    if kind == "a":
        return state[1].home
    if kind == "c":
        return True
    if kind == "m":
        return _home_specific(state[3])
    return False


class Vocab:
    """Decoded text of every token, indexed by first character, for a given tokenizer."""

    def __init__(self, tokenizer) -> None:
        if tokenizer.eos_token_id is None:
            raise DecodingError("the tokenizer has no eos_token; constrained decoding needs one to stop")
        self.eos_id = int(tokenizer.eos_token_id)
        self.size = len(tokenizer)
        ids = list(range(self.size))
        raw = tokenizer.batch_decode([[i] for i in ids], skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)
        # decode after an anchor too: sentencepiece-style decoders drop a leading space when a token is first
        anchor = tokenizer.convert_tokens_to_ids("]") if "]" in tokenizer.get_vocab() else None
        if anchor is not None and anchor != tokenizer.unk_token_id:
            a = tokenizer.decode([anchor], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            pairs = tokenizer.batch_decode([[anchor, i] for i in ids], skip_special_tokens=False,
                                           clean_up_tokenization_spaces=False)
            raw = [p[len(a):] if p.startswith(a) else r for p, r in zip(pairs, raw, strict=True)]
        special = set(tokenizer.all_special_ids)
        marker_text = {ACT, DESC}
        self.text: list[str] = []
        self.by_first: dict[str, list[int]] = {}
        self.by_text: dict[str, list[int]] = {}  # decoded text -> the tokens
        self.by_prefix: dict[str, list[int]] = {}  # a text -> the tokens that start with it and are longer
        for i, t in enumerate(raw):
            if i == self.eos_id or not t or (i in special and t not in marker_text):
                t = ""  # never produced through the automaton
            self.text.append(t)
            if t:
                self.by_first.setdefault(t[0], []).append(i)
                self.by_text.setdefault(t, []).append(i)
                for k in range(1, len(t)):
                    self.by_prefix.setdefault(t[:k], []).append(i)
        self.max_len = max(map(len, self.text), default=0)
        self.space_first = [i for c, lst in self.by_first.items() if c.isspace() for i in lst]
        self.text_first = sorted(i for c, lst in self.by_first.items() if c not in FORBIDDEN_TEXT or c == "<"
                                 for i in lst)


class Constraint:
    """Token masks of the completion grammar for one tokenizer, cached per automaton state.

    ``mask(state, root)`` -> (allowed token ids, additive bias of shape (vocab,), number allowed).
    """

    def __init__(self, tokenizer, grammar: Grammar, cache_size: int = 50_000) -> None:
        self.vocab = Vocab(tokenizer)
        self.grammar = grammar
        self.cache_size = cache_size
        self._masks: dict[State, tuple[list[int], torch.Tensor]] = {}
        self._live: dict[State, bool] = {}
        self._roots: dict[tuple, Node] = {}
        self._prompt_roots: dict[tuple, Node] = {}  # (devices, usual) -> with_usual root

    def root(self, devices: tuple[tuple[str, str, str], ...],
             usual: tuple[tuple[Action, ...], ...] | None = None) -> Node:
        """The (cached) home trie of sorted (room, device, type) triples; ``usual``: the prompt's usual
        operations, for a grammar with refs (``home_trie``; ignored without refs)."""
        key = tuple(sorted(devices))
        r = self._roots.get(key)
        if r is None:
            if len(self._roots) > 4096:
                self._roots.clear()
                self._prompt_roots.clear()
                self._masks.clear()
                self._live.clear()
            r = self._roots[key] = home_trie(key)
        if usual is None or not self.grammar.refs:
            return r
        pkey = (key, tuple(tuple(u) for u in usual))
        p = self._prompt_roots.get(pkey)
        if p is None:
            if len(self._prompt_roots) > 4096:
                self._prompt_roots.clear()  # their few masks of their own stay cached until the cache is full
            p = self._prompt_roots[pkey] = with_usual(r, pkey[1])
        return p

    def _candidates(self, state: State) -> list[int]:
        v, kind = self.vocab, state[0]
        if kind == "a":
            return [i for c in state[1].children for i in v.by_first.get(c, ())]
        if kind == "c":  # the tokens that spell a prefix of the rest of the copy, or all of it and more
            rest = state[1].rest
            return [*(i for k in range(1, min(len(rest), v.max_len) + 1) for i in v.by_text.get(rest[:k], ())),
                    *v.by_prefix.get(rest, ())]
        if kind == "s":
            return [*v.space_first, *v.by_first.get("[", ()), *v.by_first.get("<", ())]
        if kind == "m":
            return list(v.by_first.get(state[1][state[2]], ()))
        if kind == "d":
            return v.text_first
        return []

    def live(self, state: State, root: Node) -> bool:
        """Can some sequence of tokens complete the grammar from ``state``?"""
        root = root if _home_specific(state) else _PLACEHOLDER
        kind = state[0]
        if kind in ("s", "d", "e") or (kind == "a" and state[1] is _PLACEHOLDER.children["["]):
            return True  # eos, "<desc>" or a new action (every home has a device) can follow
        hit = self._live.get(state)
        if hit is not None:
            return hit
        self._live[state] = False  # guards against cycles (none exist: every step consumes a char)
        ok = any(self._walk_live(state, i, root) for i in self._candidates(state))
        self._live[state] = ok
        return ok

    def _walk_live(self, state: State, tok: int, root: Node) -> bool:
        r = self.grammar.walk(state, self.vocab.text[tok], root)
        return r is not None and self.live(r[0], root)

    def mask(self, state: State, root: Node) -> tuple[list[int], torch.Tensor]:
        hit = self._masks.get(state)
        if hit is not None:
            return hit
        # shared states are computed against the placeholder home, home states against their own
        walk_root = root if _home_specific(state) else _PLACEHOLDER
        allowed = [i for i in dict.fromkeys(self._candidates(state)) if self._walk_live(state, i, walk_root)]
        if self.grammar.eos_ok(state):
            allowed.append(self.vocab.eos_id)
        if not allowed:
            raise DecodingError(f"no token can continue the grammar at state {state[0]!r}; "
                                "the tokenizer cannot spell a legal action")
        bias = torch.full((self.vocab.size,), float("-inf"))
        bias[allowed] = 0.0
        if len(self._masks) > self.cache_size:
            self._masks.clear()
        self._masks[state] = (allowed, bias)
        return allowed, bias

    def advance(self, state: State, tok: int, root: Node) -> tuple[State, str, int]:
        """State after emitting ``tok`` (which ``mask`` allowed); eos leads to the end state."""
        if tok == self.vocab.eos_id:
            return ("e",), "other", -1
        r = self.grammar.walk(state, self.vocab.text[tok], root)
        if r is None:  # cannot happen for tokens from mask(); kept as a hard guard
            raise DecodingError(f"token {tok} ({self.vocab.text[tok]!r}) is illegal here")
        return r

"""Legal-only decoding, the generation side: batched greedy and beam generation under the token
masks of ``agent.automaton.Constraint``, with the per-token probabilities the confidence module needs.

Each generated token is labelled with the span its last non-space character falls in (``device`` =
``[room][device]``, ``field``, ``value``, or ``other``) and the action it belongs to; the
confidence module (Eq. 6) multiplies the probabilities inside each span. Greedy decoding stops a
row early (cascade pruning) once its current action's device probability falls below a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from agent.automaton import Constraint, Node, State
from training.scoring import cache_of, model_kwargs


@dataclass(frozen=True)
class TokenStep:
    """One generated token and the probabilities the confidence module needs."""

    token: int
    span: str  # device | field | value | other (span of the token's last non-space character)
    action: int  # 0-based action index, -1 outside actions
    p_raw: float  # probability under the full softmax over the vocabulary
    p_legal: float  # probability renormalised over the tokens the grammar allowed at this step
    n_allowed: int  # tokens the grammar allowed (1 = forced)
    decisive: bool = False  # a real choice of a name: > 1 allowed and the token has a letter or digit


@dataclass
class Decoded:
    """A constrained completion: its text (grammar-valid unless ``stopped`` says otherwise)."""

    text: str
    steps: list[TokenStep]
    stopped: str  # eos | cascade | budget
    cascade: tuple[int, float] | None = None  # (action, running device probability) when pruned


def encode_left_padded(tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both (batch, max_len), padded on the left."""
    enc = tokenizer(prompts)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(e) for e in enc)
    ids = torch.full((len(enc), width), pad, dtype=torch.long)
    am = torch.zeros((len(enc), width), dtype=torch.long)
    for i, e in enumerate(enc):
        if e:
            ids[i, width - len(e):] = torch.tensor(e)
            am[i, width - len(e):] = 1
    return ids, am


def _device(model) -> torch.device:
    """Where the model's weights live (CPU for a weightless stand-in)."""
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _static_cache(model, max_len: int):
    """A preallocated KV cache for ``max_len`` positions, or None where the model does not take one."""
    try:
        from transformers import StaticCache

        return StaticCache(config=model.config, max_cache_len=max_len)
    except Exception:  # no config / an architecture StaticCache does not know: use the default cache
        return None


def _positions(am: torch.Tensor) -> torch.Tensor:
    return (am.cumsum(-1) - 1).clamp(min=0)


class _Row:
    """Book-keeping of one sequence during generation."""

    __slots__ = ("root", "state", "steps", "desc_n", "done", "stopped", "device_p", "cascade")

    def __init__(self, root: Node, state: State) -> None:
        self.root, self.state = root, state
        self.steps: list[TokenStep] = []
        self.desc_n = 0
        self.done = False
        self.stopped = "budget"
        self.device_p: dict[int, float] = {}
        self.cascade: tuple[int, float] | None = None

    def push(self, c: Constraint, tok: int, p_raw: float, p_legal: float, n_allowed: int, max_desc: int) -> None:
        was_desc = self.state[0] == "d"
        self.state, span, act = c.advance(self.state, tok, self.root)
        decisive = n_allowed > 1 and any(ch.isalnum() for ch in c.vocab.text[tok])
        self.steps.append(TokenStep(tok, span, act, p_raw, p_legal, n_allowed, decisive))
        if tok == c.vocab.eos_id:
            self.done, self.stopped = True, "eos"
        elif self.state[0] == "d" and was_desc:
            self.desc_n += 1
            if self.desc_n >= max_desc:
                self.state = c.grammar.after_desc_budget(self.root)


@torch.inference_mode()
def generate_greedy(model, tokenizer, constraint: Constraint, prompts: list[str], roots: list[Node], *,
                    max_desc_tokens: int = 24, max_new_tokens: int = 160,
                    device_threshold: float | Sequence[float] = 0.0, distribution: str = "raw",
                    static_cache: bool = True) -> list[Decoded]:
    """Batched constrained greedy decoding with a KV cache and per-row cascade pruning.

    ``static_cache``: preallocate the KV cache (``transformers.StaticCache``) instead of growing
    it by concatenation every step (about 1.8x faster decode steps for the tiny preset on CPU,
    identical tokens); models it does not fit fall back to the default cache.

    ``device_threshold`` (one for all rows or one per row; 0 = off): a row stops as soon as the
    running product of its current action's device-span probabilities (under ``distribution``:
    raw | legal) falls below it.
    """
    if not prompts:
        return []
    thresholds = ([float(device_threshold)] * len(prompts) if isinstance(device_threshold, (int, float))
                  else [float(t) for t in device_threshold])
    dev = _device(model)
    ids, am = (t.to(dev) for t in encode_left_padded(tokenizer, prompts))
    rows = [_Row(r, constraint.grammar.start(r)) for r in roots]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else constraint.vocab.eos_id
    done_bias = torch.full((constraint.vocab.size,), float("-inf"))
    done_bias[pad] = 0.0
    pos = _positions(am)
    cache_kw = model_kwargs(model)[0]
    keep = {"logits_to_keep": 1} if model_kwargs(model)[1] else {}
    static = _static_cache(model, ids.shape[1] + max_new_tokens + 1) if static_cache else None
    if static is not None:
        keep[cache_kw] = static
    out = model(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=True, **keep)
    past, logits = cache_of(out), out.logits[:, -1, :].float()  # (batch, vocab)
    next_pos = pos[:, -1:] + 1  # (batch, 1)
    use_legal = distribution == "legal"
    for _ in range(max_new_tokens):
        masks = [None if r.done else constraint.mask(r.state, r.root) for r in rows]
        bias = torch.stack([done_bias if m is None else m[1] for m in masks]).to(dev)  # (batch, vocab)
        masked = logits + bias
        tok = masked.argmax(-1)  # (batch,)
        p_raw = torch.log_softmax(logits, -1).gather(1, tok[:, None]).exp().squeeze(1).tolist()
        p_leg = torch.log_softmax(masked, -1).gather(1, tok[:, None]).exp().squeeze(1).tolist()
        toks = tok.tolist()
        for i, r in enumerate(rows):
            if r.done:
                continue
            r.push(constraint, toks[i], p_raw[i], p_leg[i], len(masks[i][0]), max_desc_tokens)
            s = r.steps[-1]
            if s.span == "device" and thresholds[i] > 0:
                p = r.device_p.get(s.action, 1.0) * (p_leg[i] if use_legal else p_raw[i])
                r.device_p[s.action] = p
                if p < thresholds[i]:  # cascade pruning: the device is already too unlikely
                    r.done, r.stopped, r.cascade = True, "cascade", (s.action, p)
        if all(r.done for r in rows):
            break
        feed = tok[:, None]  # rows already done were masked to emit pad
        am = torch.cat([am, torch.ones((len(rows), 1), dtype=am.dtype, device=dev)], dim=1)
        out = model(input_ids=feed, attention_mask=am, position_ids=next_pos, use_cache=True, **{cache_kw: past})
        past, logits = cache_of(out), out.logits[:, -1, :].float()
        next_pos = next_pos + 1
    return [_finish(constraint, r) for r in rows]


def _finish(c: Constraint, r: _Row) -> Decoded:
    text = "".join(c.vocab.text[s.token] for s in r.steps if s.token != c.vocab.eos_id)
    return Decoded(text=text, steps=r.steps, stopped=r.stopped, cascade=r.cascade)


@torch.inference_mode()
def score_completions(model, tokenizer, constraint: Constraint, prompts: list[str], roots: list[Node],
                      completions: list[list[int]], *, max_desc_tokens: int = 24) -> list[Decoded]:
    """Teacher-forced probabilities of given completions (token ids, eos included if generated),
    replaying the grammar to get each step's legal set. Used after beam search."""
    enc = tokenizer(prompts)["input_ids"]
    full = [e + c for e, c in zip(enc, completions, strict=True)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else constraint.vocab.eos_id
    width = max(len(f) for f in full)
    ids = torch.full((len(full), width), pad, dtype=torch.long)
    am = torch.zeros_like(ids)
    for i, f in enumerate(full):
        ids[i, width - len(f):] = torch.tensor(f)
        am[i, width - len(f):] = 1
    dev = _device(model)
    ids, am = ids.to(dev), am.to(dev)
    logits = model(input_ids=ids, attention_mask=am, position_ids=_positions(am)).logits.float().cpu()  # (b, seq, V)
    out = []
    for i, comp in enumerate(completions):
        row = _Row(roots[i], constraint.grammar.start(roots[i]))
        start = width - len(comp) - 1  # logits at position t predict token t+1
        for j, t in enumerate(comp):
            if row.done:
                break
            allowed, bias = constraint.mask(row.state, row.root)
            lg = logits[i, start + j]
            p_raw = float(torch.log_softmax(lg, -1)[t].exp())
            p_leg = float(torch.log_softmax(lg + bias, -1)[t].exp())
            row.push(constraint, t, p_raw, p_leg, len(allowed), max_desc_tokens)
        out.append(_finish(constraint, row))
    return out


@torch.inference_mode()
def generate_beam(model, tokenizer, constraint: Constraint, prompts: list[str], roots: list[Node], *,
                  num_beams: int = 4, max_desc_tokens: int = 24, max_new_tokens: int = 160) -> list[Decoded]:
    """Constrained beam search through ``generate(prefix_allowed_tokens_fn=...)``, then a scoring pass.

    Cascade pruning cannot stop one hypothesis early inside ``generate``; the caller applies the
    device threshold to the chosen beam's probabilities afterwards.
    """
    if not prompts:
        return []
    ids, am = (t.to(_device(model)) for t in encode_left_padded(tokenizer, prompts))
    width = ids.shape[1]
    memo: dict[tuple[int, tuple[int, ...]], _Row] = {}

    def row_for(b: int, gen: tuple[int, ...]) -> _Row:
        key = (b, gen)
        hit = memo.get(key)
        if hit is not None:
            return hit
        if not gen:
            r = _Row(roots[b], constraint.grammar.start(roots[b]))
        else:
            parent = row_for(b, gen[:-1])
            r = _Row(parent.root, parent.state)
            r.desc_n, r.done = parent.desc_n, parent.done
            if not r.done:
                r.push(constraint, gen[-1], 1.0, 1.0, 1, max_desc_tokens)  # probabilities: scoring pass
        memo[key] = r
        return r

    def allowed(b: int, input_ids: torch.Tensor) -> list[int]:
        r = row_for(b, tuple(input_ids[width:].tolist()))
        if r.done:
            return [constraint.vocab.eos_id]
        return constraint.mask(r.state, r.root)[0]

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else constraint.vocab.eos_id
    seq = model.generate(input_ids=ids, attention_mask=am, num_beams=num_beams, do_sample=False,
                         max_new_tokens=max_new_tokens, prefix_allowed_tokens_fn=allowed, early_stopping=True,
                         pad_token_id=pad, eos_token_id=constraint.vocab.eos_id)
    completions = []
    for row in seq[:, width:].tolist():
        comp = []
        for t in row:
            comp.append(t)
            if t == constraint.vocab.eos_id:
                break
        completions.append(comp)
    return score_completions(model, tokenizer, constraint, prompts, roots, completions,
                             max_desc_tokens=max_desc_tokens)

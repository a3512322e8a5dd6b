"""Candidate scoring: the model ranks the home's plausible action sets by their likelihood.

Beside greedy and beam search, the recommender can answer by *scoring*: every plausible action
set of the decision (``sim.candidates.plausible_sets``: the usual operations, the
history window's operations, their actions and inverses, toggles of the ranked devices' known
settings, no-ops left out) is scored by the model's sequence log-probability of its completion,

    log P(c | prompt) = sum_t log p(token_t | prompt, token_<t)                      (Eq. 1 form)

over the tokens of ``<act> ACTIONS <desc>`` (action-first: the ``<desc>`` marker closes the
action list, so a set and its one-action prefix are told apart) or of the whole text-first
completion ``<desc> TEXT <act> ACTIONS </s>`` with the template description of
``sim.describe``. A model trained with refs (``model.config.completion_refs``, set by the training
pipeline) reads ``<act> [k] ACTIONS``: ``[k]`` names the prompt's k-th usual operation, 0 none of
them (``sim.records.usual_ref``), so choosing a listed operation is one token, not a copy. The best candidate is the answer; its confidence is its posterior over the
candidates, ``softmax(log P / T)`` (``temperature`` T, fitted on held-out rows by the training
pipeline). Every candidate is legal in the home, so the answer is legal by construction.

The prompts run once per batch and their KV cache is shared by all candidates: candidate slot j
of every prompt goes through one forward pass over the cache, which is then cropped back to the
prompts (``DynamicCache.crop``), so scoring costs one prompt pass plus ~10 tokens per candidate.
For action-first models the description is then generated freely after the chosen actions
(``describe_after``: greedy, tokens without brackets or markers, up to ``max_desc_tokens``).

It lives in ``training`` because the listwise preference stage (``training.listwise``) trains on
exactly these scores (its reference model is scored by ``score_sets``); the recommender
(``agent.recommender``, ``agent.decoding``) imports it, as data flows training -> agent.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sim.records import DESC, Action, serialize_target

Candidates = Sequence[tuple[Action, ...]]
Usual = tuple[tuple[Action, ...], ...]


def completion_text(actions: Sequence[Action], order: str, usual: Usual | None = None) -> str:
    """The scored completion of one candidate (see the module docstring); ``usual``: the prompt's
    usual operations, for a model trained with refs (None: no ref)."""
    if order == "action-first":
        return f"{serialize_target(actions, '', usual=usual)} {DESC}"
    from sim.describe import describe

    return serialize_target(actions, describe(tuple(actions)), "text-first", usual=usual)


def uses_refs(model) -> bool:
    """Was ``model`` trained on completions with refs (``model.config.completion_refs``)?"""
    return bool(getattr(getattr(model, "config", None), "completion_refs", False))


@dataclass(frozen=True)
class Scored:
    """One decision's candidates with their log-probabilities (same order)."""

    candidates: tuple[tuple[Action, ...], ...]
    logp: np.ndarray  # (n_candidates,) summed token log-probabilities

    def posterior(self, temperature: float = 1.0) -> np.ndarray:
        """softmax(logp / temperature) over the candidates."""
        if not len(self.logp):
            return self.logp
        z = self.logp / max(temperature, 1e-6)
        z = np.exp(z - z.max())
        return z / z.sum()


def model_kwargs(model) -> tuple[str, bool]:
    """(name of the forward's KV-cache argument: ``cache`` in transformers >= 5.2x, ``past_key_values``
    before; whether it takes ``logits_to_keep``)."""
    params = inspect.signature(model.forward).parameters
    return ("cache" if "cache" in params else "past_key_values"), "logits_to_keep" in params


def cache_of(out):
    """The KV cache a forward returned (``cache`` in newer transformers, else ``past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def left_pad(seqs: Sequence[Sequence[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists as a left-padded batch: (ids, attention mask), both (batch, longest)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    am = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
        am[i, width - len(s):] = 1
    return ids, am


def _encode_left(tokenizer, texts: Sequence[str], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    return left_pad(tokenizer(list(texts))["input_ids"], pad)


@torch.inference_mode()
def score_sets(model, tokenizer, prompts: Sequence[str], candidates: Sequence[Candidates], order: str,
               eos: bool = False, usual: Sequence[Usual] | None = None) -> list[Scored]:
    """Log-probability of every candidate of every prompt (one batch: the caller chunks).

    The prompts run once (left-padded, KV cache kept); candidate slot j of every prompt then runs
    in one pass over that cache (cropped back after each pass). ``eos``: append the eos token to each completion (text-first
    models end there). ``usual``: each prompt's usual operations, for a model trained with refs.
    """
    out: list[Scored] = []
    if not prompts:
        return out
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    dev = next(iter(model.parameters())).device
    cache_kw, keep_last = model_kwargs(model)
    ids, am = (t.to(dev) for t in _encode_left(tokenizer, prompts, pad))
    pos = (am.cumsum(-1) - 1).clamp(min=0)
    first = model(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=True,
                  **({"logits_to_keep": 1} if keep_last else {}))
    cache = cache_of(first)
    last_logp = torch.log_softmax(first.logits[:, -1, :].float(), -1)  # (batch, vocab)

    # candidate slot j of every prompt in one forward pass over the shared cache, which is cropped
    # back to the prompt afterwards (no per-candidate copy of the cache); a prompt with fewer
    # candidates than j feeds padding there and its row is ignored
    usual = [None] * len(prompts) if usual is None else usual
    toks = [[tokenizer(completion_text(a, order, u), add_special_tokens=False)["input_ids"]
             + ([tokenizer.eos_token_id] if eos else []) for a in cands] for cands, u in zip(candidates, usual, strict=True)]
    n_slots = max((len(t) for t in toks), default=0)
    logp = [np.zeros(len(t)) for t in toks]
    for j in range(n_slots):
        rows = [t[j] if j < len(t) else [pad] for t in toks]
        width = max(len(r) for r in rows)
        cids = torch.full((len(rows), width), pad, dtype=torch.long)
        cam = torch.zeros_like(cids)
        for k, r in enumerate(rows):
            cids[k, :len(r)] = torch.tensor(r, dtype=torch.long)
            cam[k, :len(r)] = 1
        cids, cam = cids.to(dev), cam.to(dev)
        head = last_logp.gather(1, cids[:, :1]).squeeze(1)  # (batch,)
        if width > 1:
            cpos = pos[:, -1:] + torch.arange(1, width, device=dev)[None, :]
            nxt = model(input_ids=cids[:, :-1], attention_mask=torch.cat([am, cam[:, :-1]], dim=1),
                        position_ids=cpos, use_cache=True, **{cache_kw: cache})
            cache = cache_of(nxt)
            cache.crop(-(width - 1))  # drop the candidate tokens: back to the prompts
            step_logp = torch.log_softmax(nxt.logits.float(), -1)  # (batch, width-1, vocab)
            rest = (step_logp.gather(2, cids[:, 1:, None]).squeeze(2) * cam[:, 1:]).sum(1)
        else:
            rest = torch.zeros_like(head)
        total = (head + rest).cpu().numpy().astype(np.float64)
        for k, t in enumerate(toks):
            if j < len(t):
                logp[k][j] = total[k]
    for cands, lp in zip(candidates, logp, strict=True):
        out.append(Scored(tuple(tuple(c) for c in cands), lp))
    return out


@torch.inference_mode()
def describe_after(model, tokenizer, prompts: Sequence[str], actions: Sequence[Sequence[Action]],
                   max_desc_tokens: int = 24, usual: Sequence[Usual] | None = None) -> list[str]:
    """Greedy free-text description after ``<act> ACTIONS <desc>`` for each prompt (action-first
    models): tokens whose text has no bracket or angle bracket, until eos or the budget."""
    if not prompts:
        return []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    dev = next(iter(model.parameters())).device
    cache_kw, _ = model_kwargs(model)
    usual = [None] * len(prompts) if usual is None else usual
    texts = [p + completion_text(a, "action-first", u) for p, a, u in zip(prompts, actions, usual, strict=True)]
    ids, am = (t.to(dev) for t in _encode_left(tokenizer, texts, pad))
    bias = _text_bias(tokenizer).to(dev)
    pos = (am.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=am, position_ids=pos, use_cache=True)
    cache, logits = cache_of(out), out.logits[:, -1, :].float()
    if bias.shape[0] < logits.shape[-1]:  # the model's vocabulary may be padded past the tokenizer's
        bias = torch.cat([bias, torch.full((logits.shape[-1] - bias.shape[0],), float("-inf"), device=dev)])
    nxt = pos[:, -1:] + 1
    gen: list[list[int]] = [[] for _ in texts]
    done = [False] * len(texts)
    eos = tokenizer.eos_token_id
    for _ in range(max_desc_tokens):
        tok = (logits + bias).argmax(-1)
        for i, t in enumerate(tok.tolist()):
            if not done[i]:
                if t == eos:
                    done[i] = True
                else:
                    gen[i].append(t)
        if all(done):
            break
        am = torch.cat([am, torch.ones((len(texts), 1), dtype=am.dtype, device=dev)], dim=1)
        out = model(input_ids=tok[:, None], attention_mask=am, position_ids=nxt, use_cache=True, **{cache_kw: cache})
        cache, logits = cache_of(out), out.logits[:, -1, :].float()
        nxt = nxt + 1
    descs = tokenizer.batch_decode(gen, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return [" ".join(d.split()) for d in descs]


def _text_bias(tokenizer) -> torch.Tensor:
    """0 for tokens a description may hold (and eos), -inf for the rest (brackets, markers);
    computed once per tokenizer object and kept on it."""
    bias = getattr(tokenizer, "_homepilot_text_bias", None)
    if bias is None:
        n = len(tokenizer)
        texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        special = set(tokenizer.all_special_ids)
        bias = torch.full((n,), float("-inf"))
        for i, t in enumerate(texts):
            if t and i not in special and not any(c in t for c in "[]<>"):
                bias[i] = 0.0
        bias[tokenizer.eos_token_id] = 0.0
        tokenizer._homepilot_text_bias = bias
    return bias

"""The confidence-gated recommender: context -> prompt -> legal-only decoding -> Eq. 6 confidence
-> exposure gate.

``Recommender.from_run(RUN)`` loads ``RUN/model`` (safetensors model and its tokenizer) and the
completion order from ``RUN/config.json``; ``recommend(context)`` and ``recommend_batch(contexts)``
(real batching, left padding, prompts sorted by length) return ``Recommendation`` records.

Outcomes and their ``reason`` (prefix before the colon is stable, for reports):
- ``exposed: confidence C >= threshold T``;
- ``withheld: confidence C < threshold T`` (decoded, not shown);
- ``withheld: cascade ...`` (decoding stopped early: a device probability fell below its threshold);
- ``abstained: bad input ...`` (a candidate device the home lacks, an unknown device type, an empty
  history, a malformed prompt string) when ``on_bad_input="abstain"`` (default); with ``"raise"``
  a ``BadInput`` error names the problem instead;
- ``abstained: decoding budget ...`` (the token budget ran out before the grammar completed);
- ``abstained: no plausible candidate ...`` (``search="candidates"`` with nothing to score).
``search="candidates"`` (``training.scoring``) answers the best-scored plausible action set with its
posterior as confidence; ``homepilot evaluate``, ``replay`` and the app use it.
Recommendations are legal by construction (``agent.automaton``); every parsed action is checked
against the home once more, and a failed check abstains rather than returning it. An action the
model repeats within one recommendation is kept once (with its first occurrence's probabilities).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from agent.automaton import Constraint, Grammar
from agent.confidence import (
    ConfidenceConfig,
    adaptive_threshold,
    attribute_probs,
    calibrate,
    ece,
    eq6,
    first_token_prob,
    fit_platt,
    fuse,
    gate,
)
from agent.context import Context
from agent.decoding import Decoded, generate_beam, generate_greedy
from agent.policy import Recommendation
from sim.candidates import POOLS
from sim.catalog import device_type, is_legal, type_of_device_name
from sim.prompts import HISTORY_K
from sim.records import ORDERS, GrammarError, parse_prompt, parse_target

SEARCHES: tuple[str, ...] = ("greedy", "beam", "candidates")
BAD_INPUT: tuple[str, ...] = ("abstain", "raise")


class BadInput(ValueError):
    """A context the recommender cannot use (with ``on_bad_input="raise"``)."""


@dataclass(frozen=True)
class RecommenderConfig:
    """How recommendations are made and gated."""

    order: str = "action-first"  # completion order the model was trained in (RUN/config.json "order")
    # greedy (with cascade pruning) | beam (cascade applied to the chosen beam) | candidates (score the
    # plausible action sets, training.scoring; confidence = posterior over them, no cascade)
    search: str = "greedy"
    num_beams: int = 4  # beam width for search="beam"
    max_actions: int = 3  # actions per recommendation
    max_desc_tokens: int = 24  # tokens of the free description
    max_new_tokens: int = 160  # hard cap on generated tokens (a budget abstention past it)
    batch_size: int = 32  # contexts per forward batch in recommend_batch
    history_k: int = HISTORY_K  # history window of the prompt (must match the SFT data)
    min_history: int = 1  # fewer logged operations in the window -> bad input; 0 accepts empty histories
    on_bad_input: str = "abstain"  # abstain | raise
    cascade: bool = True  # stop decoding when a device probability falls below its threshold
    static_cache: bool = True  # greedy: preallocated KV cache (faster steps, same tokens)
    # candidates: leave out sets the devices already have by the prompt's known state. The logged
    # state can be stale (6% of quickstart test labels are such no-ops), but the tiny model does
    # not learn to read state: half its answers were no-ops, and dropping them took EM-Acc from
    # 0.147 to 0.225, the top answer's share from 0.24 to 0.13 and exposure at 0.7 from 4% to 30%
    # (quickstart seed 0, 600 test contexts, PT+FT+DPO). A context with the devices' true state
    # (``Context.current``: the live app) is judged against that instead.
    drop_noops: bool = True
    # candidates: which sets may be the answer (sim.candidates.restrict_pool): "plausible" = any plausible
    # set, "usual" = the prompt's usual operations among them (any when none is); every plausible set is
    # scored and the confidence is the posterior over all of them. None = the run's choice on its
    # held-out prompts (recommender.json "pool", agent.calibrate), else "plausible"
    pool: str | None = None
    # candidates, action-first: generate the description after the chosen actions (False: the
    # catalogue's template text, sim.describe, ~25% faster; what evaluation uses for non-main rows)
    generate_description: bool = True
    # text put before every prompt the model reads (a prompted general LM's instruction header,
    # agent.baselines.prompted); the prompt and what is scored or decoded after it are unchanged
    instruction: str = ""
    # where the model runs: auto (a CUDA GPU when one is visible, else the CPU) | cpu | cuda
    device: str = "auto"
    confidence: ConfidenceConfig = field(default_factory=ConfidenceConfig)

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {self.order!r}")
        if self.search not in SEARCHES:
            raise ValueError(f"search must be one of {', '.join(SEARCHES)}, got {self.search!r}")
        if self.on_bad_input not in BAD_INPUT:
            raise ValueError(f"on_bad_input must be one of {', '.join(BAD_INPUT)}, got {self.on_bad_input!r}")
        for name in ("num_beams", "max_actions", "max_desc_tokens", "max_new_tokens", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be one of auto, cpu, cuda, got {self.device!r}")
        if self.pool is not None and self.pool not in POOLS:
            raise ValueError(f"pool must be one of {', '.join(POOLS)} or None, got {self.pool!r}")
        if self.history_k < 0 or self.min_history < 0:
            raise ValueError(f"history_k and min_history must be >= 0, got {self.history_k}, {self.min_history}")


def torch_device(device: str) -> str:
    """The torch device for ``RecommenderConfig.device``: auto is CUDA when a GPU is visible."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' asked for but no CUDA GPU is visible")
    return "cuda" if device == "cuda" or (device == "auto" and torch.cuda.is_available()) else "cpu"


def _abstain(reason: str) -> Recommendation:
    return Recommendation(actions=(), description="", confidence=0.0, exposed=False, reason=reason)


class Recommender:
    """A causal LM and its tokenizer behind legal-only decoding and the confidence gate."""

    def __init__(self, model, tokenizer, config: RecommenderConfig | None = None) -> None:
        self.config = config or RecommenderConfig()
        self.model = model.eval().to(torch_device(self.config.device))
        self.tokenizer = tokenizer
        from training.scoring import uses_refs

        self.refs = uses_refs(model)  # completions name the usual operation they are (sim.records ref)
        self.constraint = Constraint(tokenizer, Grammar(self.config.order, self.config.max_actions, self.refs))

    @classmethod
    def from_run(cls, run: str | Path, config: RecommenderConfig | None = None, calibrated: bool = True
                 ) -> Recommender:
        """Load ``RUN/model`` (or ``RUN`` itself if it holds the model) and the order and history window
        (``history_k``, when the run set one) in ``RUN/config.json``.

        ``calibrated``: use the confidence temperature fitted on held-out prompts after training
        (``agent.calibrate`` writes ``<model>/recommender.json``) unless ``config`` sets one. The gate
        threshold is ``config.confidence.threshold`` as given; the entry points (evaluate, replay,
        recommend, the live page) pass the run's fitted operating point when the user gives none
        (``agent.calibrate.resolve_threshold``). ``config.pool`` None: the candidate pool the calibration
        chose (``agent.calibrate.fitted_pool``; "plausible" when uncalibrated or ``calibrated=False``)."""
        from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

        run = Path(run)
        model_dir = run / "model" if (run / "model").is_dir() else run
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"no model in {model_dir}: expected config.json and model.safetensors")
        config = config or RecommenderConfig()
        cfg_file = run / "config.json"
        if cfg_file.is_file() and model_dir != run:  # a run directory: the order and window it was trained with
            trained = json.loads(cfg_file.read_text())
            config = replace(config, order=trained.get("order", config.order),
                             history_k=int(trained.get("history_k") or config.history_k))
        try:
            from training.tokenizer import load_tokenizer
        except ImportError:  # the agent without the training extra
            tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
        else:
            tokenizer = load_tokenizer(model_dir)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), use_safetensors=True, trust_remote_code=False)
        fitted = model_dir / "recommender.json"
        fit = json.loads(fitted.read_text()) if calibrated and fitted.is_file() else {}
        if fit and config.confidence.temperature == 1.0 and config.confidence.bias == 0.0:
            config = replace(config, confidence=replace(config.confidence, temperature=float(fit.get("temperature", 1.0)),
                                                        bias=float(fit.get("bias", 0.0))))
        if config.pool is None:
            from agent.calibrate import fitted_pool

            config = replace(config, pool=fitted_pool(model_dir) if calibrated else "plausible")
        return cls(model, tokenizer, config)

    # ------------------------------------------------------------ input checks

    def _check(self, context: Context | str) -> tuple[Context | None, str]:
        """(context, "") when usable, else (None, reason)."""
        if isinstance(context, str):
            try:
                p = parse_prompt(context)
            except GrammarError as e:
                return None, f"malformed prompt: {e}"
            types = {(r, d): type_of_device_name(d) or "" for r, d in p.devices}
            context = Context(devices=tuple((r, d, t) for (r, d), t in types.items()), history=p.history,
                              time=p.time, environment=p.environment, ranked=True, usual=p.usual,
                              state=p.state)
        if not isinstance(context, Context):
            return None, f"expected a Context or a prompt string, got {type(context).__name__}"
        problems = context.problems(self.config.min_history, self.config.history_k)
        return (None, "; ".join(problems)) if problems else (context, "")

    # ------------------------------------------------------------ the composite

    def recommend(self, context: Context | str) -> Recommendation:
        return self.recommend_batch([context])[0]

    def recommend_batch(self, contexts: list[Context | str]) -> list[Recommendation]:
        return self._recommend(contexts, (self.config.pool or "plausible",))[0]

    def recommend_pools(self, contexts: list[Context | str]) -> dict[str, list[Recommendation]]:
        """Candidate scoring's answers under every pool (``sim.candidates.POOLS``) from one scoring
        pass: what ``agent.calibrate`` chooses a run's pool with."""
        if self.config.search != "candidates":
            raise ValueError(f"recommend_pools needs search='candidates', got {self.config.search!r}")
        return dict(zip(POOLS, self._recommend(contexts, POOLS), strict=True))

    def _recommend(self, contexts: list[Context | str], pools: tuple[str, ...]) -> list[list[Recommendation]]:
        """One list of recommendations per pool (the pools matter to candidate scoring only)."""
        cfg = self.config
        out: list[list[Recommendation | None]] = [[None] * len(contexts) for _ in pools]
        chunks, bad = self._chunks(contexts)
        for i, why in bad.items():
            for o in out:
                o[i] = _abstain(f"abstained: bad input: {why}")
        for chunk in chunks:
            if cfg.search == "candidates":
                for o, recs in zip(out, self._score(chunk, pools), strict=True):
                    for (i, _, _), rec in zip(chunk, recs, strict=True):
                        o[i] = rec
                continue
            for (i, ctx, _), dec in zip(chunk, self._decode(chunk), strict=True):
                rec = self._judge(ctx, dec)
                for o in out:
                    o[i] = rec
        return [[r for r in o if r is not None] for o in out]

    def _chunks(self, contexts: list[Context | str]) -> tuple[list[list[tuple[int, Context, str]]], dict[int, str]]:
        """The contexts that pass the input checks as batches of (index, context, prompt text), sorted by
        prompt length (similar lengths share a batch: less padding), and why each other one failed
        (``on_bad_input="raise"``: ``BadInput`` instead)."""
        ok: list[tuple[int, Context, str]] = []
        bad: dict[int, str] = {}
        for i, c in enumerate(contexts):
            ctx, why = self._check(c)
            if ctx is None:
                if self.config.on_bad_input == "raise":
                    raise BadInput(f"context {i}: {why}")
                bad[i] = why
            else:
                ok.append((i, ctx, ctx.prompt_text(self.config.history_k)))
        ok.sort(key=lambda x: len(x[2]))
        n = self.config.batch_size
        return [ok[b:b + n] for b in range(0, len(ok), n)], bad

    def _score(self, chunk: list[tuple[int, Context, str]], pools: tuple[str, ...]) -> list[list[Recommendation]]:
        """Candidate scoring (``training.scoring``), per pool: every plausible set is scored once; each
        pool's answer is its best-scored set (``sim.candidates.restrict_pool``), its confidence that
        set's posterior over *every* plausible set, then the gate; the description generated after it
        (action-first) or the template.

        Why the posterior over every set when the pool is narrower: it says how much the model prefers
        the answer to everything it could have said, and it ranks acceptance; renormalised over the
        few usual operations it did not. On the quickstart's held-out prompts with the usual pool, the
        top 40% by the narrow posterior were accepted 1.19x / 1.13x the average (seeds 0 / 1), by the
        wide one 1.43x / 1.21x; on the 600 test contexts of ``homepilot quickstart`` the fitted gate then
        shows 49% / 41% at 1.12x / 1.17x simulated acceptance, where the narrow posterior found no
        operating point."""
        from sim.candidates import restrict_pool

        prompts, scored = self._scored(chunk)
        posts = {k: sc.posterior() for k, sc in scored.items()}
        out = []
        for pool in pools:
            best: dict[int, tuple] = {}
            for k, sc in scored.items():
                keep = {frozenset(c) for c in restrict_pool(sc.candidates, prompts[k], pool)}
                idx = [j for j in np.argsort(-posts[k], kind="stable") if frozenset(sc.candidates[j]) in keep]
                best[k] = (sc.candidates[idx[0]], float(posts[k][idx[0]]),
                           tuple((sc.candidates[j], float(posts[k][j])) for j in idx[:5]))
            out.append(self._answers(chunk, best, self.config.instruction, prompts))
        return out

    def _scored(self, chunk: list[tuple[int, Context, str]]) -> tuple[list, dict]:
        """The chunk's parsed prompts and, for each context with a plausible set, its ``Scored`` sets
        (every plausible set's sequence log-probability; ``training.scoring.score_sets``)."""
        from sim.candidates import plausible_sets
        from training.scoring import score_sets

        cfg = self.config
        sets, prompts = [], []
        for _, ctx, text in chunk:
            types = {(r, d): t for r, d, t in ctx.legal_devices()}
            prompts.append(parse_prompt(text))
            sets.append(plausible_sets(prompts[-1], types, drop_noops=cfg.drop_noops, current=ctx.current))
        live = [k for k, s in enumerate(sets) if s]
        scored = score_sets(self.model, self.tokenizer, [cfg.instruction + chunk[k][2] for k in live],
                            [sets[k] for k in live], cfg.order, eos=cfg.order == "text-first",
                            usual=[prompts[k].usual for k in live] if self.refs else None)
        return prompts, dict(zip(live, scored, strict=True))

    def score_candidates(self, contexts: list[Context | str]) -> list[tuple | None]:
        """Per context, ``(prompt, scored)``: the prompt the model read (``sim.records.Prompt``, its
        history window cut to ``history_k``) and every plausible set with its sequence log-probability
        (``training.scoring.Scored``; None when nothing is plausible). What candidate scoring ranks
        before a pool or the gate is applied: for studies of the ranking (``benchmarks/lm_vs_prior.py``).
        A context the recommender would abstain on as bad input is None (``on_bad_input="raise"``:
        ``BadInput``)."""
        out: list[tuple | None] = [None] * len(contexts)
        for chunk in self._chunks(contexts)[0]:
            prompts, scored = self._scored(chunk)
            for k, (i, _, _) in enumerate(chunk):
                out[i] = (prompts[k], scored.get(k))
        return out

    def _answers(self, chunk: list[tuple[int, Context, str]], best: dict[int, tuple], head: str,
                 prompts: list) -> list[Recommendation]:
        """Recommendations of candidate scoring from each context's (answer, confidence, alternatives)
        (absent: nothing to score): descriptions, calibration and the gate."""
        from sim.describe import describe
        from training.scoring import completion_text, describe_after

        cfg, cc = self.config, self.config.confidence
        keys = sorted(best)
        usual = {k: prompts[k].usual if self.refs else None for k in keys}  # the parsed prompts of _scored
        if cfg.order == "action-first" and cfg.generate_description:
            descs = describe_after(self.model, self.tokenizer, [head + chunk[k][2] for k in keys],
                                   [best[k][0] for k in keys], cfg.max_desc_tokens, [usual[k] for k in keys])
        else:
            descs = [describe(best[k][0]) for k in keys]
        desc_of = dict(zip(keys, descs, strict=True))
        out = []
        for k, (_, ctx, _) in enumerate(chunk):
            if k not in best:
                out.append(_abstain("abstained: no plausible candidate (every listed setting is already in place)"))
                continue
            actions, conf, alts = best[k]
            if cc.temperature != 1.0 or cc.bias:
                conf = float(calibrate(conf, cc.temperature, cc.bias))
            types = ctx.types
            numeric = any(device_type(types[a.target]).field(a.field).is_numeric for a in actions)
            thr = adaptive_threshold(cc.threshold, len(ctx.targets), numeric, cc.large_pool, cc.gate_relax)
            relax = thr / cc.threshold if cc.threshold else 1.0
            shown = gate(conf, cc.threshold, relax)
            reason = (f"exposed: confidence {conf:.3f} >= threshold {thr:.3f}" if shown
                      else f"withheld: confidence {conf:.3f} < threshold {thr:.3f}")
            out.append(Recommendation(actions, desc_of[k], conf, shown, reason, threshold=thr, relax=relax,
                                      text=completion_text(actions, cfg.order, usual[k]), alternatives=alts))
        return out

    def _decode(self, chunk: list[tuple[int, Context, str]]) -> list[Decoded]:
        cfg, cc = self.config, self.config.confidence
        prompts = [cfg.instruction + p for _, _, p in chunk]
        # a refs model's ref [k] is followed by the k-th usual operation of the prompt it reads
        roots = [self.constraint.root(ctx.legal_devices(), parse_prompt(p).usual if self.refs else None)
                 for _, ctx, p in chunk]
        if cfg.search == "beam":
            return generate_beam(self.model, self.tokenizer, self.constraint, prompts, roots, num_beams=cfg.num_beams,
                                 max_desc_tokens=cfg.max_desc_tokens, max_new_tokens=cfg.max_new_tokens)
        dev = [adaptive_threshold(cc.device_threshold, len(ctx.targets), False, cc.large_pool, cc.relax)
               if cfg.cascade else 0.0 for _, ctx, _ in chunk]
        return generate_greedy(self.model, self.tokenizer, self.constraint, prompts, roots,
                               max_desc_tokens=cfg.max_desc_tokens, max_new_tokens=cfg.max_new_tokens,
                               device_threshold=dev, distribution=cc.distribution, static_cache=cfg.static_cache)

    def _judge(self, ctx: Context, dec: Decoded) -> Recommendation:
        """Parse, re-check legality, compute Eq. 6 + fusion, cascade and gate."""
        cc = self.config.confidence
        n_cand = len(ctx.targets)
        probs = attribute_probs(dec.steps, cc.distribution)
        p_first = first_token_prob(dec.steps, cc.distribution)
        dev_thr = adaptive_threshold(cc.device_threshold, n_cand, False, cc.large_pool, cc.relax)
        base = dict(attribute_probs=tuple(probs), first_token_prob=p_first, eq6=eq6(probs, cc), text=dec.text,
                    steps=tuple(dec.steps))
        if dec.stopped == "cascade":
            a, p = dec.cascade
            return Recommendation((), "", 0.0, False, f"withheld: cascade: P(device) of action {a + 1} fell to "
                                  f"{p:.3f} < device threshold {dev_thr:.3f}; decoding stopped", **base)
        if dec.stopped == "budget":
            return replace(_abstain(f"abstained: decoding budget of {self.config.max_new_tokens} tokens ran out"),
                           **base)
        try:
            actions, desc = parse_target(dec.text, self.config.order)
        except GrammarError as e:  # cannot happen for grammar-valid decoding; never returned as a recommendation
            return replace(_abstain(f"abstained: unparseable completion: {e}"), **base)
        # a repeated action is legal but says nothing new: keep its first occurrence (and its probabilities)
        keep = [i for i, a in enumerate(actions) if a not in actions[:i]]
        if len(keep) < len(actions) and len(probs) == len(actions):
            actions, probs = tuple(actions[i] for i in keep), [probs[i] for i in keep]
            base.update(attribute_probs=tuple(probs), eq6=eq6(probs, cc))
        types = {(r, d): t for r, d, t in ctx.legal_devices()}
        for act in actions:
            t = types.get(act.target)
            if t is None or not is_legal(t, act.field, act.value):
                return replace(_abstain(f"abstained: illegal action {act} suppressed"), **base)
        if self.config.search == "beam" and self.config.cascade:  # cascade on the chosen beam
            for j, p in enumerate(probs):
                if dev_thr > 0 and p.device < dev_thr:
                    return Recommendation((), "", 0.0, False, f"withheld: cascade: P(device) of action {j + 1} is "
                                          f"{p.device:.3f} < device threshold {dev_thr:.3f}", **base)
        conf = fuse(base["eq6"], p_first, cc.first_token_weight)
        if cc.temperature != 1.0 or cc.bias:
            conf = float(calibrate(conf, cc.temperature, cc.bias))
        numeric = any(device_type(types[a.target]).field(a.field).is_numeric for a in actions)
        thr = adaptive_threshold(cc.threshold, n_cand, numeric, cc.large_pool, cc.gate_relax)
        relax = thr / cc.threshold if cc.threshold else 1.0
        shown = gate(conf, cc.threshold, relax)
        reason = (f"exposed: confidence {conf:.3f} >= threshold {thr:.3f}" if shown
                  else f"withheld: confidence {conf:.3f} < threshold {thr:.3f}")
        return Recommendation(actions, desc, conf, shown, reason, threshold=thr, relax=relax, **base)

    # ------------------------------------------------------------ calibration

    def fit_calibration(self, contexts: list[Context], accepted, n_bins: int = 10) -> dict[str, float]:
        """Fit the confidence calibration on a validation split (``accepted`` per context: would the
        user accept the decoded recommendation) and report ECE before/after with ``n_bins`` bins.
        Decisions without a decoded recommendation are left out. Sets ``config.confidence.temperature``
        and ``bias`` (``agent.confidence.fit_platt``)."""
        cc = self.config.confidence
        self.config = replace(self.config, confidence=replace(cc, temperature=1.0, bias=0.0))
        try:
            recs = self.recommend_batch(contexts)
        finally:
            self.config = replace(self.config, confidence=cc)
        a = np.asarray(accepted, dtype=bool)
        if a.shape != (len(contexts),):
            raise ValueError(f"accepted must have one entry per context ({len(contexts)}), got shape {a.shape}")
        keep = np.array([bool(r.actions) for r in recs])
        if keep.sum() < 2:
            raise ValueError(f"calibration needs at least 2 decoded recommendations, got {int(keep.sum())}")
        c = np.array([r.confidence for r in recs])[keep]
        t, b = fit_platt(c, a[keep])
        self.config = replace(self.config, confidence=replace(cc, temperature=t, bias=b))
        return {"temperature": t, "bias": b, "ece_before": ece(c, a[keep], n_bins),
                "ece_after": ece(calibrate(c, t, b), a[keep], n_bins),
                "n_bins": n_bins, "n": int(keep.sum())}

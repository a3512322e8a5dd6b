"""What does the trained LM's ranking add to *where* a candidate sits in the prompt?

    python benchmarks/lm_vs_prior.py --out benchmarks/results --quickstart quickstart_out [--quickstart Q2 ...]

Candidate scoring (``Recommender.score_candidates``) ranks each decision's plausible action sets by
the LM's sequence log-probability. A ranking that knows nothing of the context but a candidate's
*origin* in the prompt (which of the six usual operations it is, most likely first; not a usual
operation; in the history window; more than one action) is a prior any reader of the prompt gets
for free, and the Usual rule ("the first usual operation not already in place") is its hand-made
form. For each quickstart output directory (``Q/data``, the run ``Q/runs/main``, the test contexts
of ``Q/report/report.json``: same seed and count), on the run's held-out validation prompts
(``agent.calibrate.held_out``) and on the test contexts:

- ``LM, usual pool`` and ``LM, every plausible set``: the LM's best-scored set (the first is how the
  recommender answers when its calibration chose the usual pool);
- ``origin prior``: a conditional logit over the sets on the origin features alone, fitted on the
  held-out prompts (``fit_choice``: softmax over a decision's sets, L2 ``--l2``);
- ``LM + origin prior``: the same logit with the LM's log-probability as one more feature: its
  weight says how much the LM's scores are worth beside the origin;
- ``Usual rule`` (``agent.baselines.usual``).

Per variant: EM-Acc (``agent.metrics``), distinct answers per 100 and the top answer's share
(``agent.evaluate.diversity``); per directory also the fitted weights, how often the label is among
the sets, and the usual-list positions of the labels, of the LM's answers and of the rule's. The
fitted variants are studies, not recommenders: on held-out prompts their figures are in-sample.
Writes ``lm_vs_prior.json`` and ``lm_vs_prior.md``. Deterministic for a run (no timing figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from sim.dataset.shards import write_text_atomic

ORIGINS = ("usual 1", "usual 2", "usual 3", "usual 4", "usual 5", "usual 6+", "not usual", "in window",
           "several actions")
VARIANTS = ("LM, usual pool", "LM, every plausible set", "origin prior", "LM + origin prior", "Usual rule")


def origin_features(prompt, candidates: Sequence[tuple]) -> np.ndarray:
    """(n candidates, len(ORIGINS)) 0/1 features of each candidate's origin in ``prompt``."""
    usual = [frozenset(u) for u in prompt.usual]
    window = {frozenset(op.actions) for op in prompt.history}
    out = np.zeros((len(candidates), len(ORIGINS)))
    for j, c in enumerate(candidates):
        c = frozenset(c)
        out[j, min(usual.index(c), 5) if c in usual else 6] = 1.0
        out[j, 7] = float(c in window)
        out[j, 8] = float(len(c) > 1)
    return out


def fit_choice(decisions: Sequence[tuple[np.ndarray, np.ndarray, int]], use_lm: bool, l2: float = 1e-2
               ) -> tuple[float, np.ndarray]:
    """A conditional logit ``a * logp + X @ w`` (``a`` = 0 unless ``use_lm``) fitted by L-BFGS to the
    decisions ``(logp, X, label index)`` whose label is one of the sets (index >= 0): the negative log
    softmax probability of the label, averaged, plus ``l2 * |w|^2``. Returns ``(a, w)``."""
    rows = [(torch.tensor(lp, dtype=torch.float64), torch.tensor(x, dtype=torch.float64), y)
            for lp, x, y in decisions if y >= 0]
    if not rows:
        raise ValueError("no decision whose label is among its candidate sets: nothing to fit")
    w = torch.zeros(len(ORIGINS), dtype=torch.float64, requires_grad=True)
    a = torch.tensor([1.0 if use_lm else 0.0], dtype=torch.float64, requires_grad=use_lm)
    opt = torch.optim.LBFGS([w, a] if use_lm else [w], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        nll = sum(-torch.log_softmax(a * lp + x @ w, 0)[y] for lp, x, y in rows) / len(rows)
        loss = nll + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return float(a.detach()[0]), w.detach().numpy()


def _pick(scores: np.ndarray, keep: np.ndarray | None = None) -> int:
    s = np.where(keep, scores, -np.inf) if keep is not None and keep.any() else scores
    return int(np.argmax(s))


def answers(decisions: Sequence[tuple], weights: dict[str, tuple[float, np.ndarray]]) -> dict[str, list[tuple]]:
    """Each variant's answer per decision ``(prompt, candidates, logp, X)`` (``()`` with no set)."""
    from agent.baselines.usual import usual_rule

    out: dict[str, list[tuple]] = {v: [] for v in VARIANTS}
    for prompt, cands, logp, x in decisions:
        out["Usual rule"].append(tuple(usual_rule(prompt)))
        if not len(cands):
            for v in VARIANTS[:-1]:
                out[v].append(())
            continue
        usual = x[:, 6] == 0
        out["LM, usual pool"].append(cands[_pick(logp, usual)])
        out["LM, every plausible set"].append(cands[_pick(logp)])
        for v in ("origin prior", "LM + origin prior"):
            a, w = weights[v]
            out[v].append(cands[_pick(a * logp + x @ w)])
    return out


def _decisions(rec, prompts: Sequence[str], types: Sequence[dict], labels: Sequence[tuple]):
    from agent.context import Context
    from sim.records import parse_prompt

    scored = rec.score_candidates([Context.from_prompt(p, t) for p, t in zip(prompts, types, strict=True)])
    out, fit = [], []
    for text, got, label in zip(prompts, scored, labels, strict=True):
        prompt, sc = got if got is not None else (parse_prompt(text), None)  # bad input: nothing scored
        cands = [tuple(c) for c in sc.candidates] if sc is not None else []
        logp = np.asarray(sc.logp, dtype=float) if sc is not None else np.zeros(0)
        x = origin_features(prompt, cands)
        sets = [frozenset(c) for c in cands]
        y = sets.index(frozenset(label)) if frozenset(label) in sets else -1
        out.append((prompt, cands, logp, x))
        fit.append((logp, x, y))
    return out, fit


def _positions(prompts, acts: Sequence[tuple]) -> dict[str, int]:
    c = Counter()
    for p, a in zip(prompts, acts, strict=True):
        usual = [frozenset(u) for u in p.usual]
        c[str(usual.index(frozenset(a)) + 1) if frozenset(a) in usual else "other"] += 1
    return dict(sorted(c.items()))


def study(q: Path, l2: float, run_name: str = "main") -> dict:
    """The figures of one quickstart output directory (see the module docstring)."""
    from agent.calibrate import held_out
    from agent.evaluate import diversity, load_samples, run_history_k
    from agent.metrics import score
    from agent.policy import Recommendation
    from agent.recommender import Recommender

    report_file, run = q / "report" / "report.json", q / "runs" / run_name
    for need in (q / "data", run, report_file):
        if not need.exists():
            raise FileNotFoundError(f"{need} is missing: --quickstart needs a finished `homepilot quickstart` output")
    report = json.loads(report_file.read_text())
    seed, n = int(report["seeds"]["evaluation"]), int(report["n_samples"])
    rec = Recommender.from_run(run)
    ho = held_out(q / "data", history_k=run_history_k(run))
    samples = load_samples(q / "data", max_samples=n, seed=seed)
    parts = {"held-out": _decisions(rec, ho.prompts, ho.types, ho.labels),
             "test": _decisions(rec, [s.prompt_text for s in samples], [s.types for s in samples],
                                [s.label for s in samples])}
    labels = {"held-out": ho.labels, "test": [s.label for s in samples]}
    weights = {"origin prior": fit_choice(parts["held-out"][1], use_lm=False, l2=l2),
               "LM + origin prior": fit_choice(parts["held-out"][1], use_lm=True, l2=l2)}
    out = {"quickstart": str(q), "run": str(run), "seed": seed, "pool": rec.config.pool,
           "weights": {v: {"lm": a, **dict(zip(ORIGINS, np.round(w, 4).tolist(), strict=True))}
                       for v, (a, w) in weights.items()}, "splits": {}}
    for split, (decisions, fit) in parts.items():
        got = answers(decisions, weights)
        prompts = [d[0] for d in decisions]
        row = {"n": len(decisions), "label_among_sets": sum(y >= 0 for _, _, y in fit) / len(fit),
               "positions": {"labels": _positions(prompts, labels[split]),
                             "LM, usual pool": _positions(prompts, got["LM, usual pool"]),
                             "Usual rule": _positions(prompts, got["Usual rule"])}, "variants": {}}
        for v, acts in got.items():
            row["variants"][v] = {"em_acc": score(labels[split], acts)["em_acc"],
                                  **diversity([Recommendation(tuple(a)) for a in acts])}
        out["splits"][split] = row
    return out


def markdown(res: dict) -> str:
    lines = ["# What the LM's ranking adds to a candidate's origin in the prompt", "",
             "Produced by `benchmarks/lm_vs_prior.py` (see its docstring). EM-Acc on the run's held-out "
             "validation prompts (the fitted variants in-sample there) and on the report's test contexts; "
             "top = the most frequent answer's share.", ""]
    for s in res["studies"]:
        lines += [f"## {s['quickstart']} (seed {s['seed']}, run pool {s['pool']})", "",
                  "| variant | held-out EM-Acc | test EM-Acc | test distinct / 100 | test top share |",
                  "|---|---|---|---|---|"]
        ho, te = s["splits"]["held-out"]["variants"], s["splits"]["test"]["variants"]
        for v in VARIANTS:
            lines.append(f"| {v} | {ho[v]['em_acc']:.3f} | {te[v]['em_acc']:.3f} | "
                         f"{te[v]['distinct_per_100']:.1f} | {te[v]['top_answer_share']:.3f} |")
        lines += ["", "Fitted on the held-out prompts (weight of the LM's log-probability, then of each origin):", ""]
        for v, w in s["weights"].items():
            lines.append(f"- {v}: " + ", ".join(f"{k} {x:+.2f}" for k, x in w.items()))
        t = s["splits"]["test"]
        lines += ["", f"Test contexts whose label is one of the scored sets: {t['label_among_sets']:.0%}. "
                  "Usual-list position (1 = most likely) of:", ""]
        for who, c in t["positions"].items():
            lines.append(f"- {who}: " + ", ".join(f"{k}: {x}" for k, x in c.items()))
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--quickstart", type=Path, action="append", help="a `homepilot quickstart` output (repeatable)")
    ap.add_argument("--run", default="main", help="the run under Q/runs/ (default main: PT+FT+DPO)")
    ap.add_argument("--l2", type=float, default=1e-2)
    args = ap.parse_args(argv)
    res = {"studies": []}
    for q in args.quickstart or [Path("quickstart_out")]:
        print(f"lm_vs_prior: scoring {q} ...", file=sys.stderr, flush=True)
        res["studies"].append(study(q, args.l2, args.run))
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(res, indent=1), args.out / "lm_vs_prior.json")
    write_text_atomic(markdown(res), args.out / "lm_vs_prior.md")
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()

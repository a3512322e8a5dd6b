"""What a person sees in the live home (README, "Live home"): each recommender on the same homes.

    python benchmarks/live_home.py --out benchmarks/results [--model quickstart_out/runs/main] [--seed 0] [--homes 6]

For every advisor of the demo (``app.advisors``: frequency, usual, gbdt, and the trained model when
``--model`` names a run that exists), homes ``0 .. homes-1`` of ``seed`` run live for ``days`` days
(``app.live_state.LiveSession``: the page's own session, ``warmup_days`` of history first, 6 app
openings per resident per day) with the gate at 0, so every answer is shown and judged; the simulated
user answers each one (``auto_answer``: accept with its P(accept); an accepted one is carried out in
the home). Per advisor:

- ``mean_p_accept``: the simulated user's P(accept) summed over answered decisions / all decision points;
- ``shown_at_0_7``: share of decision points whose confidence clears the default gate (0.7, with the
  recommender's adapted threshold);
- ``p_accept_shown``: mean P(accept) of those;
- ``default_gate``: the threshold the page starts at for this advisor (a trained model's operating
  point fitted on validation, ``agent.calibrate.gate_threshold``; else 0.7), ``shown_at_default`` and
  ``p_accept_shown_default``: the same two figures at it;
- ``distinct_per_100``: distinct answers per 100 answers.

Writes ``live_home.json`` and ``live_home.md``. Deterministic for a seed (no timing figures).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from agent.confidence import gate
from app.live_state import DEFAULT_THRESHOLD, LiveSession, SessionConfig


def measure(advisor: str, seed: int, homes: int, days: int, model: str | None) -> dict:
    p_accept, shown, shown_default, answers, decisions, default = [], [], [], [], 0, DEFAULT_THRESHOLD
    for i in range(homes):
        s = LiveSession(SessionConfig(seed=seed, index=i, days=days, model=model if advisor == "model" else None,
                                      advisor=advisor, threshold=0.0))
        default = float(getattr(s.advisor, "gate_threshold", None) or DEFAULT_THRESHOLD)
        while s.step() is not None:
            d = s.decisions[-1]
            decisions += 1
            if d.suggestion.abstained:
                continue
            p_accept.append(d.p_accept)
            answers.append(frozenset(d.suggestion.actions))
            if gate(d.suggestion.confidence, DEFAULT_THRESHOLD, d.suggestion.relax):
                shown.append(d.p_accept)
            if gate(d.suggestion.confidence, default, d.suggestion.relax):
                shown_default.append(d.p_accept)
            s.auto_answer()
    return {"advisor": advisor, "decisions": decisions, "answered": len(answers),
            "mean_p_accept": float(np.sum(p_accept) / max(1, decisions)),
            "shown_at_0_7": len(shown) / max(1, decisions),
            "p_accept_shown": float(np.mean(shown)) if shown else None, "default_gate": default,
            "shown_at_default": len(shown_default) / max(1, decisions),
            "p_accept_shown_default": float(np.mean(shown_default)) if shown_default else None,
            "distinct_per_100": 100.0 * len(Counter(answers)) / max(1, len(answers))}


def write_md(res: dict, path: Path) -> None:
    lines = ["# What a person sees in the live home", "",
             f"Seed {res['seed']}, homes 0-{res['homes'] - 1}, {res['days']} days each ({res['warmup_days']} of "
             f"history first), gate at 0 so every answer is judged; model: {res['model'] or '(none)'}.", "",
             "| recommender | decision points | mean P(accept), every decision | shown at 0.7 | "
             "P(accept) of those shown | default gate | shown at it | P(accept) of those | distinct answers / 100 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        p = "–" if r["p_accept_shown"] is None else f"{r['p_accept_shown']:.3f}"
        pd = "–" if r.get("p_accept_shown_default") is None else f"{r['p_accept_shown_default']:.3f}"
        lines.append(f"| {r['advisor']} | {r['decisions']} | {r['mean_p_accept']:.3f} | {100 * r['shown_at_0_7']:.1f}% | "
                     f"{p} | {r.get('default_gate', DEFAULT_THRESHOLD):.3f} | {100 * r.get('shown_at_default', 0):.1f}% | "
                     f"{pd} | {r['distinct_per_100']:.1f} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--model", default="quickstart_out/runs/main", help="trained run (skipped when missing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--homes", type=int, default=6)
    ap.add_argument("--days", type=int, default=9)
    a = ap.parse_args()
    model = a.model if a.model and (Path(a.model) / "model" / "config.json").is_file() else None
    advisors = ["frequency", "usual", "gbdt", *(["model"] if model else [])]
    rows = []
    for adv in advisors:
        rows.append(measure(adv, a.seed, a.homes, a.days, model))
        print(json.dumps(rows[-1]), flush=True)
    res = {"seed": a.seed, "homes": a.homes, "days": a.days, "warmup_days": SessionConfig().warmup_days,
           "model": model, "rows": rows}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "live_home.json").write_text(json.dumps(res, indent=2))
    write_md(res, out / "live_home.md")


if __name__ == "__main__":
    main()

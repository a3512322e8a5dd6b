"""What of the prompt does the GBDT reranker read? EM-Acc by feature group.

    python benchmarks/gbdt_features.py --out benchmarks/results --quickstart quickstart_out [--quickstart Q2 ...]

The GBDT reranker (``agent.baselines.gbdt``) is the strongest honest baseline, and every one of its
features is computed from the prompt the LM reads. Its features fall into groups by what of the
prompt they read (``FEATURE_GROUPS``): a candidate's *origin* (rank among the usual operations, in
the history window, an inverse, a toggle), the devices' *state* (no-op share, known values, the
value a candidate sets), *transitions* (what followed the latest operation in the window, same room
or device, minutes since), the *time* (hour, weekday) and the *environment* readings of the
candidate's room and outdoors. For each quickstart output directory (``Q/data``; the test contexts of
``Q/report/report.json``: same seed and count) the reranker is fitted as the evaluation fits it
(``GBDTConfig``, only the ``features`` differ) on the ``sft`` train rows and scored on the test
contexts:

- cumulative: origin, then + state, + transitions, + time, + environment (= every feature: the
  report's GBDT row, to the digit);
- leave one out: every feature but one group.

Writes ``gbdt_features.json`` and ``gbdt_features.md`` with the report's Usual, GBDT and PT+FT+DPO
rows beside them. Deterministic (LightGBM with one thread, fixed seed; no timing figures).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from sim.dataset.shards import write_text_atomic

REFERENCE_ROWS = ("Usual", "GBDT", "PT+FT+DPO")


def variants() -> dict[str, tuple[str, ...]]:
    """Variant name -> the features it uses (cumulative groups, then every group but one)."""
    from agent.baselines.gbdt import FEATURE_GROUPS

    out, cols = {}, ()
    for i, (g, fs) in enumerate(FEATURE_GROUPS.items()):
        cols = cols + fs
        out[g if i == 0 else f"+ {g}"] = cols
    for g in list(FEATURE_GROUPS)[1:]:
        out[f"all but {g}"] = tuple(f for f in cols if f not in FEATURE_GROUPS[g])
    return out


def study(q: Path) -> dict:
    """The figures of one quickstart output directory (see the module docstring)."""
    from agent.baselines.gbdt import GBDTConfig, contexts_from_rows, fit_matrix, training_matrix
    from agent.evaluate import load_samples
    from agent.metrics import score
    from sim.candidates import read_sft_rows

    report_file = q / "report" / "report.json"
    for need in (q / "data", report_file):
        if not need.exists():
            raise FileNotFoundError(f"{need} is missing: --quickstart needs a finished `homepilot quickstart` output")
    report = json.loads(report_file.read_text())
    seed, n = int(report["seeds"]["evaluation"]), int(report["n_samples"])
    matrix = training_matrix(contexts_from_rows(read_sft_rows(q / "data", "train", ["prompt", "devices", "actions"])))
    samples = load_samples(q / "data", max_samples=n, seed=seed)
    contexts = [(s.prompt, s.types) for s in samples]
    labels = [s.label for s in samples]
    out = {"quickstart": str(q), "seed": seed, "n": len(samples),
           "report": {m: report["whole"][m]["em_acc"] for m in REFERENCE_ROWS if m in report["whole"]},
           "variants": {}}
    for name, cols in variants().items():
        print(f"gbdt_features: {q} {name} ({len(cols)} features)", file=sys.stderr, flush=True)
        rr = fit_matrix(matrix, GBDTConfig(seed=seed, features=cols))
        preds = [r.actions for r in rr.predict_batch(contexts)]
        out["variants"][name] = {"em_acc": score(labels, preds)["em_acc"], "n_features": len(cols),
                                 "rounds": rr.booster.current_iteration()}
    return out


def markdown(res: dict) -> str:
    studies = res["studies"]
    lines = ["# What of the prompt the GBDT reranker reads", "",
             "Produced by `benchmarks/gbdt_features.py` (see its docstring). EM-Acc on each quickstart's "
             "test contexts of the GBDT reranker fitted on feature groups (`agent.baselines.gbdt.FEATURE_GROUPS`); "
             "the last rows are the report's.", "",
             "| features | " + " | ".join(f"seed {s['seed']}" for s in studies) + " | mean |",
             "|---|" + "---|" * (len(studies) + 1)]

    def row(name: str, vals: list[float]) -> str:
        return f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {sum(vals) / len(vals):.3f} |"

    for name in studies[0]["variants"]:
        lines.append(row(name, [s["variants"][name]["em_acc"] for s in studies]))
    for m in REFERENCE_ROWS:
        if all(m in s["report"] for s in studies):
            lines.append(row(f"report: {m}", [s["report"][m] for s in studies]))
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--quickstart", type=Path, action="append", help="a `homepilot quickstart` output (repeatable)")
    args = ap.parse_args(argv)
    res = {"studies": [study(q) for q in args.quickstart or [Path("quickstart_out")]]}
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps(res, indent=1), args.out / "gbdt_features.json")
    write_text_atomic(markdown(res), args.out / "gbdt_features.md")
    print(markdown(res))
    return res


if __name__ == "__main__":
    main()

"""Rendering an evaluation report shaped like the paper's tables: ``report.md``, ``report.json``
and PNG plots. Pure formatting over the dict that ``agent.evaluate`` builds; no model code.

Report dict keys (``report.json``):
- ``whole``: method -> {em_acc, lm_f1, rule, n, ci95: {metric: [lo, hi]}}
- ``by_subset``: method -> subset -> {em_acc, lm_f1, rule, n}         (Table 2)
- ``gain``: subset -> metric -> relative gain of the main method over the best baseline
- ``ablation``: variant -> {ungated: metrics, gated: metrics + exposure_rate + threshold}   (Table 3)
- ``order``: action-first / text-first -> metrics                               (Table 4)
- ``exposure_curve``: [{threshold, exposure_rate, acceptance_rate}]             (Fig. 7a)
- ``by_split``: split -> method -> {em_acc, lm_f1, rule, n}
- ``diversity``: method -> {distinct_per_100, top_answer_share, top_answer}
- ``gate_at_0_7``: {method, threshold, exposure_rate, acceptance_rate, ungated_acceptance_rate};
  ``gate``: the same at the main model's threshold (``--threshold``, else its fitted operating point,
  ``agent.calibrate.gate_threshold``); ``thresholds``: LM -> the gate threshold it was judged with
- ``pools``: LM -> the candidate pool it answered from (``agent.calibrate.fitted_pool``: usual | plausible)
- ``paired_diff_vs_best_baseline``: {method, baseline, metric: {diff, lo, hi}}: the main method
  minus the baseline with the best EM-Acc, paired percentile bootstrap on the same contexts
- ``legal_rate``, ``latency_ms``, ``counts``, ``seeds``, ``failures``, ``wall_seconds``, ``splits``
- ``software``: Python, library versions, torch's CPU kernels and threads (``training.runtime.software``): the
  LMs' and CGC's figures are reproducible for a seed with the same ones, not across machines
- ``simulator``: {oracle, simulated_acceptance, note}: whether the hidden truth of a simulated dataset
  was there; an imported log has none, and ``note`` (also a line of report.md) says what is left out
- ``predictions_file``: ``predictions.jsonl`` when evaluated with ``format="ha"`` (one JSON line per
  context: the main method's answer, its gate decision and its Home Assistant service calls)
- ``per_sample`` (written apart, to ``per_sample.json``): method -> per-sample scores
  (``agent.metrics.scores_to_json``): what a pooled bootstrap over seeds draws from
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from sim.catalog import DEVICE_BUCKETS, REPORT_CATEGORIES

METRICS = ("em_acc", "lm_f1", "rule")
METRIC_NAMES = {"em_acc": "EM-Acc", "lm_f1": "LM-F1", "rule": "Rule"}
TABLE2_COLUMNS = (*DEVICE_BUCKETS, *REPORT_CATEGORIES, "Whole")


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt(x: Any, digits: int = 3) -> str:
    """A number with ``digits`` decimals, "–" for None/NaN; a summary over seeds
    (``agent.metrics.across_seeds``) as "mean ± std" (the mean alone from one seed)."""
    if isinstance(x, dict) and "mean" in x:
        return "–" if _missing(x["mean"]) else fmt(x["mean"], digits) + (
            "" if _missing(x.get("std")) else f" ± {x['std']:.{digits}f}")
    if _missing(x):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: Any) -> str:
    if isinstance(x, dict) and "mean" in x:
        return "–" if _missing(x["mean"]) else _pct(x["mean"]) + (
            "" if _missing(x.get("std")) else f" ± {100 * x['std']:.1f}")
    if _missing(x):
        return "–"
    return f"{100 * x:+.1f}%"


def table2(report: dict) -> str:
    """Methods x sub-datasets x metrics, with the main method's gain over the best baseline."""
    cols = [c for c in TABLE2_COLUMNS if any(c in v for v in report["by_subset"].values())]
    lines = []
    for metric in METRICS:
        lines.append(f"\n**{METRIC_NAMES[metric]}**\n")
        lines.append("| method | " + " | ".join(f"DC {c}" if c[0].isdigit() else c for c in cols) + " |")
        lines.append("|---|" + "---|" * len(cols))
        for method, subsets in report["by_subset"].items():
            lines.append(f"| {method} | " + " | ".join(fmt(subsets.get(c, {}).get(metric)) for c in cols) + " |")
        if report.get("gain"):
            lines.append("| Gain | " + " | ".join(_pct(report["gain"].get(c, {}).get(metric)) for c in cols) + " |")
    counts = report.get("counts", {})
    lines.append("\nSamples per sub-dataset: " + ", ".join(f"{c}: {counts.get(c, 0)}" for c in cols))
    return "\n".join(lines)


def whole_table(report: dict) -> str:
    lines = ["| method | EM-Acc | LM-F1 | Rule | 95% CI (EM-Acc) | distinct answers / 100 | top answer share | n |",
             "|---|---|---|---|---|---|---|---|"]
    div = report.get("diversity", {})
    for method, m in report["whole"].items():
        ci = m.get("ci95", {}).get("em_acc")
        ci_s = f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–"
        d = div.get(method, {})
        lines.append(f"| {method} | {fmt(m['em_acc'])} | {fmt(m['lm_f1'])} | {fmt(m['rule'])} | {ci_s} | "
                     f"{fmt(d.get('distinct_per_100'), 1)} | {fmt(d.get('top_answer_share'))} | {m['n']} |")
    pd = report.get("paired_diff_vs_best_baseline")
    if pd:
        lines += ["", f"{pd['method']} minus the best baseline ({pd['baseline']}), paired bootstrap 95% intervals: "
                  + "; ".join(f"{METRIC_NAMES[k]} {pd[k]['diff']:+.3f} [{pd[k]['lo']:+.3f}, {pd[k]['hi']:+.3f}]"
                              for k in METRICS)]
    return "\n".join(lines)


def split_table(report: dict) -> str:
    """EM-Acc / LM-F1 / Rule per test split (seen homes later in time vs unseen homes)."""
    splits = list(report.get("by_split", {}))
    if not splits:
        return ""
    head = " | ".join(f"{sp} {METRIC_NAMES[k]}" for sp in splits for k in METRICS)
    lines = [f"| method | {head} |", "|---|" + "---|" * (len(splits) * len(METRICS))]
    for method in report["whole"]:
        cells = [fmt(report["by_split"][sp].get(method, {}).get(k)) for sp in splits for k in METRICS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def search_table(report: dict) -> str:
    rows = report.get("search", {})
    if not rows:
        return "(not run)"
    lines = ["| search | EM-Acc | LM-F1 | Rule | distinct / 100 | top share | ms per context | n |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt(m[k]) for k in METRICS)
                     + f" | {fmt(m.get('distinct_per_100'), 1)} | {fmt(m.get('top_answer_share'))} | "
                     f"{fmt(m.get('ms_per_context'), 1)} | {m.get('n')} |")
    return "\n".join(lines)


def table3(report: dict) -> str:
    lines = ["| variant | EM-Acc | LM-F1 | Rule | gated EM-Acc | gated LM-F1 | gated Rule | exposure | threshold |",
             "|---|---|---|---|---|---|---|---|---|"]
    for variant, v in report.get("ablation", {}).items():
        u, g = v["ungated"], v["gated"]
        lines.append(f"| {variant} | " + " | ".join(fmt(u[m]) for m in METRICS) + " | "
                     + " | ".join(fmt(g[m]) for m in METRICS) + f" | {fmt(g.get('exposure_rate'))} | "
                     + f"{fmt(g.get('threshold', 0.7))} |")
    if report.get("ablation") and "FT" not in report["ablation"]:
        lines += ["", "FT (no pre-training): not run (`homepilot quickstart --ablations` trains it, as `homepilot "
                  "reproduce` does for every seed)."]
    return "\n".join(lines)


def table4(report: dict) -> str:
    if not report.get("order"):
        return ("Not run: no text-first run was evaluated (`homepilot quickstart --ablations` trains one, as "
                "`homepilot reproduce` does for every seed).")
    lines = ["| order | EM-Acc | LM-F1 | Rule |", "|---|---|---|---|"]
    for order, m in report.get("order", {}).items():
        lines.append(f"| {order} | " + " | ".join(fmt(m[k]) for k in METRICS) + " |")
    return "\n".join(lines)


def fig7a(report: dict) -> list[str]:
    """The Fig. 7a section's lines: the curve and the gate, or why there are none."""
    sim = report.get("simulator", {})
    if not sim.get("simulated_acceptance", True):
        return ["Not available: no simulated users judge the exposures of a dataset without a simulator (see above)."]
    g = report.get("gate_at_0_7", {})
    lines = ["Acceptance = mean of the simulated users' acceptance probability over exposed recommendations.", "",
             "![exposure curve](exposure_curve.png)", "",
             f"Gate at 0.7 ({g.get('method', '')}): exposure {fmt(g.get('exposure_rate'))}, acceptance "
             f"{fmt(g.get('acceptance_rate'))} (ungated {fmt(g.get('ungated_acceptance_rate'))})."]
    c = report.get("gate") or {}
    if c and c.get("threshold") != g.get("threshold"):
        lines += ["", f"Gate at the model's threshold {fmt(c.get('threshold'))} (its operating point fitted on the "
                  f"validation split unless `--threshold` was given): exposure {fmt(c.get('exposure_rate'))}, acceptance "
                  f"{fmt(c.get('acceptance_rate'))} (ungated {fmt(c.get('ungated_acceptance_rate'))})."]
    return lines


def pools_line(pools: dict[str, str]) -> str:
    """Which candidates each LM answers from (``report["pools"]``, chosen on the held-out prompts; every
    plausible set is scored either way)."""
    return ("Candidate pool of each LM (chosen on the held-out prompts; usual = only the prompt's usual "
            "operations, plausible = every plausible set): " + ", ".join(f"{k} {v}" for k, v in pools.items()))


def software_line(sw: dict[str, str]) -> str:
    """One line naming what computed the figures (``report["software"]``)."""
    return "Computed with: " + ", ".join(f"{k} {v}" for k, v in sw.items())


def render_markdown(report: dict) -> str:
    note = report.get("simulator", {}).get("note")
    parts = [
        "# HomePilot evaluation report",
        "",
        f"Dataset: `{report.get('data', '')}` · splits: {', '.join(report.get('splits', [])) or '–'} · seeds: "
        f"{report.get('seeds', {})} · wall time: {fmt(report.get('wall_seconds'), 1)} s",
        "",
        *([software_line(report["software"]), ""] if report.get("software") else []),
        *([f"**{note}**", ""] if note else []),
        "## Whole test set",
        whole_table(report),
        "",
        "## Per split (test: seen homes, later days; test_unseen: homes never trained on)",
        split_table(report),
        "",
        "## Table 2 shape: methods x sub-datasets",
        table2(report),
        "",
        "## How the LM answers: candidate scoring, greedy and beam search (main model)",
        search_table(report),
        "",
        *([pools_line(report["pools"]), ""] if report.get("pools") else []),
        "## Table 3 shape: ablation (gated = exposed samples only, at each model's gate threshold)",
        table3(report),
        "",
        "## Table 4 shape: action-first vs text-first",
        table4(report),
        "",
        "## Fig. 7a shape: exposure and acceptance against the confidence threshold",
        *fig7a(report),
        "",
        "## Legality and latency",
        "| method | legal-action rate | p50 ms | p95 ms |",
        "|---|---|---|---|",
        *(f"| {m} | {fmt(report.get('legal_rate', {}).get(m))} | {fmt(lat.get('p50'), 1)} | {fmt(lat.get('p95'), 1)} |"
          for m, lat in report.get("latency_ms", {}).items()),
        "",
        "## Failure breakdown (paper Fig. 8 shape)",
        *(f"- {k}: {v}" for k, v in report.get("failures", {}).items()),
        "",
        *(report.get("notes", [])),
    ]
    return "\n".join(parts) + "\n"


def plot_report(report: dict, out_dir: Path) -> list[Path]:
    """PNG plots: the exposure curve (Fig. 7a) and Whole metrics per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    curve = report.get("exposure_curve", [])
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        th = [p["threshold"] for p in curve]
        ax.plot(th, [p["exposure_rate"] for p in curve], label="exposure rate")
        ax.plot(th, [p["acceptance_rate"] for p in curve], label="acceptance rate")
        g = report.get("gate") or {}
        t = g.get("threshold")
        if isinstance(t, (int, float)) and t != 0.7:  # the model's own gate and what it does there
            ax.axvline(t, ls="--", color="grey", lw=1, label=f"model's gate {t:.2f}")
            for key, color in (("exposure_rate", "C0"), ("acceptance_rate", "C1")):
                if isinstance(g.get(key), (int, float)) and g[key] == g[key]:
                    ax.plot([t], [g[key]], "o", color=color, ms=5)
        ax.set_xlabel("confidence threshold")
        ax.set_ylim(0, 1.02)
        ax.legend()
        ax.set_title("Exposure vs acceptance (Fig. 7a)")
        fig.tight_layout()
        written.append(out_dir / "exposure_curve.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    if report.get("whole"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        methods = list(report["whole"])
        width = 0.27
        for i, metric in enumerate(METRICS):
            ax.bar([j + i * width for j in range(len(methods))], [report["whole"][m][metric] for m in methods],
                   width, label=METRIC_NAMES[metric])
        ax.set_xticks([j + width for j in range(len(methods))], methods, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=8)
        ax.set_title("Whole test set")
        fig.tight_layout()
        written.append(out_dir / "whole.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder, then rename: a reader never sees half a file. The
    file gets the permissions a plain ``open(path, "w")`` would (``mkstemp`` makes it owner-only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def _strict_json(x: Any) -> Any:
    """NaN/inf (e.g. the acceptance of a gate that exposes nothing) as null: strict JSON readers reject NaN."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _strict_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict_json(v) for v in x]
    return x


#: What an evaluation writes in its report directory (``sim.outdir``): the report, its plots and the
#: trained feature baselines (``agent.evaluate``).
REPORT_PATHS = ("report.json", "report.md", "per_sample.json", "exposure_curve.png", "whole.png", "cgc", "gbdt",
                "predictions.jsonl")


def write_report(report: dict, out_dir: str | Path) -> Path:
    """Write report.json (NaN as null), per_sample.json (when the report has per-sample scores),
    report.md and plots into ``out_dir`` (claimed first,
    ``sim.outdir``: a new or empty folder, or an earlier report); returns the markdown path."""
    from sim import outdir

    out = outdir.claim(out_dir, "report", REPORT_PATHS)
    report = dict(report)
    rows = report.get("predictions")
    if rows is not None:  # one JSON line per context, not in report.json
        atomic_write_text(out / "predictions.jsonl", "".join(json.dumps(_strict_json(r), allow_nan=False) + "\n"
                                                             for r in rows))
        report = {**{k: v for k, v in report.items() if k != "predictions"}, "predictions_file": "predictions.jsonl"}
    scores = report.pop("per_sample", None)
    if scores is not None:
        atomic_write_text(out / "per_sample.json", json.dumps(scores, allow_nan=False))
    atomic_write_text(out / "report.json", json.dumps(_strict_json(report), indent=2, default=str, allow_nan=False))
    plot_report(report, out)
    atomic_write_text(out / "report.md", render_markdown(report))
    return out / "report.md"


# ---------------------------------------------------------------- across seeds (homepilot reproduce)
#
# ``homepilot reproduce`` evaluates every seed as above, then combines the per-seed report dicts:
# each number becomes ``agent.metrics.across_seeds`` over the seeds ({mean, std, lo, hi, n}), so the
# per-run table builders above render the combined dict as "mean ± std" unchanged.

#: Sections of a per-seed report combined across seeds (Tables 2-4, Fig. 7a and what they rest on).
SEED_SECTIONS = ("by_subset", "gain", "ablation", "order", "exposure_curve", "gate_at_0_7", "gate", "diversity",
                 "legal_rate")
#: What ``write_reproduce_report`` writes in its folder (``sim.outdir``).
REPRODUCE_PATHS = ("report.json", "report.md", "whole.png", "exposure_curve.png", "model_size.png",
                   "context_length.png", "history_length.png")
#: Sensitivity studies (paper Fig. 7b-d): report key -> (what varies, row key, title).
STUDIES = {
    "model_size": ("model preset", "preset", "Fig. 7b shape: EM-Acc against model size"),
    "context_length": ("history window at training (operations)", "history_k",
                       "Fig. 7c shape: EM-Acc against the training context (history window at training)"),
    "history_length": ("history window at test (operations)", "history_k",
                       "Fig. 7d shape: EM-Acc against the history length at test time (one model)"),
}


def combine(values: list[Any]) -> Any:
    """One report section over seeds: numbers -> ``across_seeds`` (None/NaN left out), dicts key by key,
    lists of one length item by item, strings kept where every seed agrees (else None)."""
    from agent.metrics import across_seeds

    present = [v for v in values if v is not None]
    if not present:
        return None
    first = present[0]
    if isinstance(first, bool) or isinstance(first, str):
        return first if all(v == first for v in present) else None
    if isinstance(first, (int, float)):
        return across_seeds([v if isinstance(v, (int, float)) else None for v in values])
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for v in present if isinstance(v, dict) for k in v))
        return {k: combine([v.get(k) if isinstance(v, dict) else None for v in values]) for k in keys}
    if isinstance(first, list) and all(isinstance(v, list) and len(v) == len(first) for v in present):
        return [combine([v[i] if isinstance(v, list) else None for v in values]) for i in range(len(first))]
    return None


def _mean(x: Any) -> float:
    """The mean of a summary over seeds (NaN when missing)."""
    v = x.get("mean") if isinstance(x, dict) else x
    return float("nan") if _missing(v) else float(v)


def paired_over_seeds(scores: dict[str, dict[str, dict]], method: str, baseline: str, seed: int = 0,
                      n_boot: int = 1000) -> dict:
    """``method`` minus ``baseline`` on the same contexts (``agent.metrics.paired_bootstrap``), per seed
    and pooled (every seed's contexts as one set): ``{method, baseline, per_seed: {seed: {metric:
    {diff, lo, hi}}}, pooled: {metric: {diff, lo, hi}}}``. ``scores``: seed -> method -> per-sample
    scores (``per_sample.json``); seeds lacking either method are left out."""
    import numpy as np

    from agent.metrics import concat_scores, paired_bootstrap, scores_from_json

    rng = np.random.default_rng(seed)
    pairs = {s: (scores_from_json(m[method]), scores_from_json(m[baseline]))
             for s, m in scores.items() if method in m and baseline in m}
    out: dict[str, Any] = {"method": method, "baseline": baseline, "per_seed": {}, "pooled": None}
    for s, (a, b) in pairs.items():
        out["per_seed"][str(s)] = paired_bootstrap(a, b, rng, n_boot)
    if pairs:
        out["pooled"] = paired_bootstrap(concat_scores([a for a, _ in pairs.values()]),
                                         concat_scores([b for _, b in pairs.values()]), rng, n_boot)
    return out


def goal(whole: dict, main: str = "PT+FT+DPO", feature: str = "GBDT",
         ablation: tuple[str, ...] = ("FT", "PT+FT", "PT+FT+DPO")) -> dict:
    """The reproduction's goals, from the means over seeds: ``beats_gbdt`` (``main`` above ``feature`` on
    EM-Acc, LM-F1 and Rule) and ``ablation_order`` (FT < PT+FT < PT+FT+DPO on each metric). ``met``
    is True/False, or None when a method was not evaluated."""
    def means(name: str) -> dict[str, float] | None:
        return {k: _mean(whole[name][k]) for k in METRICS} if name in whole else None

    m, f = means(main), means(feature)
    beats: dict[str, Any] = {"method": main, "baseline": feature, "met": None, "metrics": {}}
    if m and f:
        beats["metrics"] = {k: {main: m[k], feature: f[k], "holds": m[k] > f[k]} for k in METRICS}
        beats["met"] = all(v["holds"] for v in beats["metrics"].values())
    rows = [means(n) for n in ablation]
    order: dict[str, Any] = {"methods": list(ablation), "met": None, "metrics": {}}
    if all(rows):
        order["metrics"] = {k: {**{n: r[k] for n, r in zip(ablation, rows, strict=True)},
                                "holds": all(a[k] < b[k] for a, b in zip(rows, rows[1:], strict=False))}
                            for k in METRICS}
        order["met"] = all(v["holds"] for v in order["metrics"].values())
    return {"beats_gbdt": beats, "ablation_order": order}


def combine_reports(reports: dict[int, dict], scores: dict[int, dict[str, dict]], baselines: tuple[str, ...],
                    n_boot: int = 1000, seed: int = 0) -> dict:
    """The reproduce report dict from the per-seed reports (``report.json``, NaN as None) and their
    per-sample scores (``per_sample.json``): ``seeds``, ``whole`` (method -> metric -> {mean, std,
    lo, hi, n}), the ``SEED_SECTIONS`` combined the same way, ``counts`` (contexts per sub-dataset,
    summed over seeds), ``paired_diff_vs_best_baseline`` (the main method against the baseline of
    best mean EM-Acc, per seed and pooled), ``paired_diff_vs_gbdt`` and ``goal``."""
    seeds = sorted(reports)
    ordered = [reports[s] for s in seeds]
    whole = combine([{m: {k: v.get(k) for k in METRICS} for m, v in r.get("whole", {}).items()} for r in ordered])
    out: dict[str, Any] = {"seeds": seeds, "whole": whole or {},
                           "n_samples": {str(s): reports[s].get("n_samples") for s in seeds}}
    for key in SEED_SECTIONS:
        out[key] = combine([r.get(key) for r in ordered]) or ({} if key != "exposure_curve" else [])
    counts: dict[str, int] = {}
    for r in ordered:
        for k, n in (r.get("counts") or {}).items():
            counts[k] = counts.get(k, 0) + int(n)
    out["counts"] = counts
    main = next((r.get("main_method") for r in ordered if r.get("main_method")), None)
    out["main_method"] = main
    present = [b for b in baselines if b in out["whole"]]
    best = max(present, key=lambda b: _mean(out["whole"][b]["em_acc"]), default=None)
    if main and best:
        out["paired_diff_vs_best_baseline"] = paired_over_seeds(scores, main, best, seed, n_boot)
    if main and "GBDT" in out["whole"]:
        out["paired_diff_vs_gbdt"] = (out["paired_diff_vs_best_baseline"] if best == "GBDT"
                                      else paired_over_seeds(scores, main, "GBDT", seed, n_boot))
    out["goal"] = goal(out["whole"])
    return out


def whole_seeds_table(r: dict) -> str:
    """Whole test set over seeds: mean ± std and the 95% t-interval of the mean, per metric."""
    lines = ["| method | " + " | ".join(f"{METRIC_NAMES[k]} | 95% interval" for k in METRICS) + " | seeds |",
             "|---|" + "---|" * (2 * len(METRICS) + 1)]
    for method, m in r.get("whole", {}).items():
        cells = []
        for k in METRICS:
            s = m.get(k) or {}
            cells += [fmt(s), "–" if _missing(s.get("lo")) else f"[{s['lo']:.3f}, {s['hi']:.3f}]"]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {(m.get('em_acc') or {}).get('n', 0)} |")
    return "\n".join(lines)


def _diff_line(label: str, d: dict | None) -> str:
    if not d:
        return f"- {label}: –"
    return f"- {label}: " + "; ".join(f"{METRIC_NAMES[k]} {d[k]['diff']:+.3f} [{d[k]['lo']:+.3f}, {d[k]['hi']:+.3f}]"
                                      for k in METRICS)


def paired_seeds_text(pd: dict | None) -> str:
    if not pd:
        return "(not computed: no main method or no baseline)"
    lines = [f"{pd['method']} minus {pd['baseline']}, paired bootstrap 95% intervals on the same contexts:"]
    lines += [_diff_line(f"seed {s}", d) for s, d in pd["per_seed"].items()]
    lines.append(_diff_line("pooled over seeds", pd["pooled"]))
    return "\n".join(lines)


def _met(v: bool | None) -> str:
    return "**met**" if v else ("**not met**" if v is not None else "**not evaluated**")


def goal_text(r: dict) -> str:
    g = r.get("goal") or goal(r.get("whole", {}))
    b, o = g["beats_gbdt"], g["ablation_order"]
    lines = [f"- {b['method']} beats {b['baseline']} on EM-Acc, LM-F1 and Rule (mean over seeds): {_met(b['met'])}"]
    for k, v in b["metrics"].items():
        lines.append(f"  - {METRIC_NAMES[k]}: {v[b['method']]:.3f} vs {v[b['baseline']]:.3f} "
                     f"({'higher' if v['holds'] else 'not higher'})")
    pooled = (r.get("paired_diff_vs_gbdt") or {}).get("pooled")
    if pooled:
        excl = [METRIC_NAMES[k] for k in METRICS if pooled[k]["lo"] > 0]
        lines.append("  - pooled paired 95% interval above 0 (a difference the test contexts show) for: "
                     + (", ".join(excl) if excl else "none"))
    lines.append(f"- {' < '.join(o['methods'])} in the mean over seeds, on every metric: {_met(o['met'])}")
    for k, v in o["metrics"].items():
        lines.append(f"  - {METRIC_NAMES[k]}: " + " < ".join(f"{n} {v[n]:.3f}" for n in o["methods"])
                     + f" ({'holds' if v['holds'] else 'does not hold'})")
    return "\n".join(lines)


def study_table(study: dict, key: str, label: str) -> str:
    """One sensitivity study: a row per model or window (parameters where the study varies them)."""
    rows = study.get("rows", [])
    params = any(row.get("n_parameters") for row in rows)
    lines = [f"| {label} |" + (" parameters |" if params else "") + " EM-Acc | 95% CI (EM-Acc) | LM-F1 | Rule | n |",
             "|---|" + ("---|" if params else "") + "---|---|---|---|---|"]
    for row in rows:
        ci = (row.get("ci95") or {}).get("em_acc")
        n_par = row.get("n_parameters")
        lines.append(f"| {row[key]} |" + (f" {n_par:,} |" if params and n_par else " – |" if params else "")
                     + f" {fmt(row.get('em_acc'))} | " + (f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "–")
                     + f" | {fmt(row.get('lm_f1'))} | {fmt(row.get('rule'))} | {fmt(row.get('n'))} |")
    for name, why in (study.get("skipped") or {}).items():
        lines.append(f"\n{name}: skipped ({why})")
    return "\n".join(lines)


def render_reproduce_markdown(r: dict) -> str:
    g = r.get("gate_at_0_7") or {}
    sens = r.get("sensitivity") or {}
    parts = ["# HomePilot reproduction report", "",
             f"Seeds: {', '.join(map(str, r.get('seeds', [])))} · {r.get('config_line', '')} · "
             f"wall time: {fmt(r.get('wall_seconds'), 1)} s (steps resumed from an earlier run count their recorded time)",
             "", *([software_line(r["software"]), ""] if r.get("software") else []), "Every number is the mean ± standard deviation over the seeds (one dataset, training and evaluation "
             "per seed); intervals are 95% Student-t intervals of the mean over seeds.", "",
             "## Goal (computed from the numbers below)", goal_text(r), "",
             "## Whole test set", whole_seeds_table(r), "", paired_seeds_text(r.get("paired_diff_vs_best_baseline")), "",
             "## Table 2 shape: methods x sub-datasets", table2(r), "",
             "## Table 3 shape: ablation (gated = exposed samples only, at each model's gate threshold)", table3(r), "",
             "## Table 4 shape: action-first vs text-first", table4(r), "",
             "## Fig. 7a shape: exposure and acceptance against the confidence threshold",
             "Mean over seeds (band: ± one standard deviation).", "", "![exposure curve](exposure_curve.png)", "",
             f"Gate at 0.7 ({g.get('method') or ''}): exposure {fmt(g.get('exposure_rate'))}, acceptance "
             f"{fmt(g.get('acceptance_rate'))} (ungated {fmt(g.get('ungated_acceptance_rate'))}).", ""]
    c = r.get("gate") or {}
    if c:
        parts += [f"Gate at each seed's model threshold {fmt(c.get('threshold'))} (its operating point fitted on the "
                  f"validation split unless `--threshold` was given): exposure {fmt(c.get('exposure_rate'))}, acceptance "
                  f"{fmt(c.get('acceptance_rate'))} (ungated {fmt(c.get('ungated_acceptance_rate'))}).", ""]
    if sens:
        parts += [f"## Sensitivity (seed {sens.get('seed')}; Fig. 7b-d shapes)", sens.get("note", ""), ""]
        for key, (label, row_key, title) in STUDIES.items():
            study = sens.get(key)
            if study is None:
                continue
            parts += [f"### {title}", study.get("note", ""), "", study_table(study, row_key, label), "",
                      f"![{key}]({key}.png)", ""]
    else:
        parts += ["## Sensitivity", "(not run: --no-sensitivity)", ""]
    parts += ["## Per seed", *(f"- seed {s}: `{p}`" for s, p in (r.get("per_seed_reports") or {}).items()), ""]
    return "\n".join(parts) + "\n"


def plot_reproduce(r: dict, out_dir: Path) -> list[Path]:
    """PNG plots of the reproduce report: Whole metrics (mean, error bar = std), the exposure curve
    (mean, band = ± std) and one plot per sensitivity study (EM-Acc with its bootstrap interval)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def sd(x: Any) -> float:
        v = x.get("std") if isinstance(x, dict) else None
        return 0.0 if _missing(v) else float(v)

    written = []
    if r.get("whole"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        methods = list(r["whole"])
        width = 0.27
        for i, metric in enumerate(METRICS):
            vals = [r["whole"][m][metric] for m in methods]
            ax.bar([j + i * width for j in range(len(methods))], [_mean(v) for v in vals], width,
                   yerr=[sd(v) for v in vals], capsize=2, label=METRIC_NAMES[metric])
        ax.set_xticks([j + width for j in range(len(methods))], methods, rotation=30, ha="right", fontsize=8)
        ax.legend(fontsize=8)
        ax.set_title(f"Whole test set, mean over {len(r.get('seeds', []))} seeds")
        fig.tight_layout()
        written.append(out_dir / "whole.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    curve = r.get("exposure_curve") or []
    if curve:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        th = [_mean(p["threshold"]) for p in curve]
        for key, label in (("exposure_rate", "exposure rate"), ("acceptance_rate", "acceptance rate")):
            m = np.array([_mean(p[key]) for p in curve])
            s = np.array([sd(p[key]) for p in curve])
            ax.plot(th, m, label=label)
            ax.fill_between(th, m - s, m + s, alpha=0.2)
        ax.set_xlabel("confidence threshold")
        ax.set_ylim(0, 1.02)
        ax.legend()
        ax.set_title("Exposure vs acceptance (Fig. 7a), mean over seeds")
        fig.tight_layout()
        written.append(out_dir / "exposure_curve.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    for key, (label, row_key, title) in STUDIES.items():
        rows = ((r.get("sensitivity") or {}).get(key) or {}).get("rows") or []
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        x = list(range(len(rows)))
        em = [_mean(row.get("em_acc")) for row in rows]
        ci = [(row.get("ci95") or {}).get("em_acc") or [e, e] for row, e in zip(rows, em, strict=True)]
        ax.errorbar(x, em, yerr=[[e - c[0] for e, c in zip(em, ci, strict=True)],
                                 [c[1] - e for e, c in zip(em, ci, strict=True)]], marker="o", capsize=3, label="EM-Acc")
        for metric in ("lm_f1", "rule"):
            ax.plot(x, [_mean(row.get(metric)) for row in rows], marker=".", linestyle="--", label=METRIC_NAMES[metric])
        ax.set_xticks(x, [str(row[row_key]) for row in rows])
        ax.set_xlabel(label)
        ax.legend(fontsize=8)
        ax.set_title(title.split(": ", 1)[-1], fontsize=9)
        fig.tight_layout()
        written.append(out_dir / f"{key}.png")
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def write_reproduce_report(r: dict, out_dir: str | Path) -> Path:
    """Write the reproduce report.json (NaN as null), report.md and plots into ``out_dir``; returns
    the markdown path."""
    from sim import outdir

    out = outdir.claim(out_dir, "report", REPRODUCE_PATHS)
    atomic_write_text(out / "report.json", json.dumps(_strict_json(r), indent=2, default=str, allow_nan=False))
    plot_reproduce(r, out)
    atomic_write_text(out / "report.md", render_reproduce_markdown(r))
    return out / "report.md"

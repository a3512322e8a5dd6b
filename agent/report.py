"""Rendering an evaluation report shaped like the paper's tables: ``report.md``, ``report.json``
and PNG plots. Pure formatting over the dict that ``agent.evaluate`` builds; no model code.

Report dict keys (``report.json``):
- ``whole``: method -> {em_acc, lm_f1, rule, n, ci95: {metric: [lo, hi]}}
- ``by_subset``: method -> subset -> {em_acc, lm_f1, rule, n}         (Table 2)
- ``gain``: subset -> metric -> relative gain of the main method over the best baseline
- ``ablation``: variant -> {ungated: metrics, gated: metrics + exposure_rate}   (Table 3)
- ``order``: action-first / text-first -> metrics                               (Table 4)
- ``exposure_curve``: [{threshold, exposure_rate, acceptance_rate}]             (Fig. 7a)
- ``by_split``: split -> method -> {em_acc, lm_f1, rule, n}
- ``diversity``: method -> {distinct_per_100, top_answer_share, top_answer}
- ``gate_at_0_7``: {method, threshold, exposure_rate, acceptance_rate, ungated_acceptance_rate};
  ``gate``: the same at the ``--threshold`` chosen
- ``paired_diff_vs_best_baseline``: {method, baseline, metric: {diff, lo, hi}}: the main method
  minus the baseline with the best EM-Acc, paired percentile bootstrap on the same contexts
- ``legal_rate``, ``latency_ms``, ``counts``, ``seeds``, ``failures``, ``wall_seconds``
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


def fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
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
    lines = ["| variant | EM-Acc | LM-F1 | Rule | gated EM-Acc | gated LM-F1 | gated Rule | exposure |",
             "|---|---|---|---|---|---|---|---|"]
    for variant, v in report.get("ablation", {}).items():
        u, g = v["ungated"], v["gated"]
        lines.append(f"| {variant} | " + " | ".join(fmt(u[m]) for m in METRICS) + " | "
                     + " | ".join(fmt(g[m]) for m in METRICS) + f" | {fmt(g.get('exposure_rate'))} |")
    return "\n".join(lines)


def table4(report: dict) -> str:
    lines = ["| order | EM-Acc | LM-F1 | Rule |", "|---|---|---|---|"]
    for order, m in report.get("order", {}).items():
        lines.append(f"| {order} | " + " | ".join(fmt(m[k]) for k in METRICS) + " |")
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    g = report.get("gate_at_0_7", {})
    parts = [
        "# HomePilot evaluation report",
        "",
        f"Dataset: `{report.get('data', '')}` · seeds: {report.get('seeds', {})} · "
        f"wall time: {fmt(report.get('wall_seconds'), 1)} s",
        "",
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
        "## Table 3 shape: ablation (gated = exposed samples only, threshold 0.7)",
        table3(report),
        "",
        "## Table 4 shape: action-first vs text-first",
        table4(report),
        "",
        "## Fig. 7a shape: exposure and acceptance against the confidence threshold",
        "Acceptance = mean of the simulated users' acceptance probability over exposed recommendations.",
        "",
        "![exposure curve](exposure_curve.png)",
        "",
        f"Gate at 0.7 ({g.get('method', '')}): exposure {fmt(g.get('exposure_rate'))}, acceptance "
        f"{fmt(g.get('acceptance_rate'))} (ungated {fmt(g.get('ungated_acceptance_rate'))}).",
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
    """Write via a temp file in the same folder, then rename: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
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
REPORT_PATHS = ("report.json", "report.md", "exposure_curve.png", "whole.png", "cgc", "gbdt")


def write_report(report: dict, out_dir: str | Path) -> Path:
    """Write report.json (NaN as null), report.md and plots into ``out_dir`` (claimed first,
    ``sim.outdir``: a new or empty folder, or an earlier report); returns the markdown path."""
    from sim import outdir

    out = outdir.claim(out_dir, "report", REPORT_PATHS)
    atomic_write_text(out / "report.json", json.dumps(_strict_json(report), indent=2, default=str, allow_nan=False))
    plot_report(report, out)
    atomic_write_text(out / "report.md", render_markdown(report))
    return out / "report.md"

"""Report viewer: an evaluation report's tables (paper Tables 2-4) and plots (Fig. 7a).

A thin shell over ``app.browse.load_report``; the report keys are those of ``agent.report``.
Numbers are rounded to 3 decimals, the columns follow the paper (EM-Acc, LM-F1, Rule; Table 2's
sub-datasets: device-count buckets, then categories), and 95% CIs are shown where the report
has them. Widget keys: report_dir, report_metric.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from agent.report import METRIC_NAMES, METRICS
from app.browse import (
    SENSITIVITY_STUDIES,
    BrowseError,
    curve_rows,
    goal_lines,
    load_report,
    over_seeds,
    sensitivity_rows,
    subset_rows,
    whole_rows,
)
from app.charts import exposure_chart

ss = st.session_state
FIG7A_PNG = "exposure_curve.png"  # drawn interactively from report.json instead
NUM = st.column_config.NumberColumn(format="%.3f")
ONE_DECIMAL = st.column_config.NumberColumn(format="%.1f")  # counts per 100: "6.5", not "6.500"

st.title("Evaluation report")
st.text_input("Report directory", value=os.environ.get("HOMEPILOT_REPORT", ""), key="report_dir",
              help="Written by `homepilot evaluate`, `homepilot quickstart` (OUT/report) or `homepilot reproduce` "
                   "(OUT/report: means over seeds) (report.json, report.md, PNGs).")
root = (ss.report_dir or "").strip()
if not root:
    st.info("Give a report directory, e.g. `quickstart_out/report` after `make quickstart`.")
    st.stop()
try:
    view = load_report(root)
except BrowseError as e:
    st.error(str(e))
    st.stop()


def numbers(rows: list[dict]) -> None:
    """A table whose float columns show 3 decimals (counts per 100: one)."""
    df = pd.DataFrame(rows)
    cfg = {c: ONE_DECIMAL if "per 100" in c else NUM for c in df.columns if pd.api.types.is_float_dtype(df[c])}
    st.dataframe(df, hide_index=True, column_config=cfg)


rep = view.report
seeds = over_seeds(rep)
try:
    if seeds:
        st.info(f"A reproduction over seeds {', '.join(map(str, rep.get('seeds') or []))}"
                f"{' (' + rep['config_line'] + ')' if rep.get('config_line') else ''}: every figure is the mean "
                "over seeds.")
        for line, met in goal_lines(rep):
            (st.success if met else st.warning)(line)
    whole = whole_rows(rep)
    if whole:
        st.subheader("Whole test set")
        numbers(whole)
        if seeds:
            st.caption("sd: standard deviation over seeds; 95% CI: t-interval of the mean over seeds; n: seeds.")
        elif any("EM-Acc 95% CI" in r for r in whole):
            st.caption("95% CI: bootstrap interval over test contexts (report.json `ci95`).")
    if rep.get("by_subset"):
        st.subheader("By sub-dataset (Table 2)")
        metric = st.selectbox("Metric", list(METRICS), format_func=METRIC_NAMES.get, key="report_metric")
        numbers(subset_rows(rep, metric))
        counts = rep.get("counts") or {}
        if counts:
            st.caption("Test contexts per sub-dataset: " + ", ".join(f"{k} {v}" for k, v in counts.items())
                       + ". DC = device count of the home.")
    gate = rep.get("gate_at_0_7")
    fitted = rep.get("gate")

    def gate_metrics(g: dict) -> None:
        shown = {k: v for k, v in g.items() if k not in ("threshold", "method")}
        cols = st.columns(max(1, len(shown)))
        for col, (k, v) in zip(cols, shown.items(), strict=False):
            v = v.get("mean") if isinstance(v, dict) else v  # over seeds: the mean
            col.metric(k.replace("_", " "), f"{v:.3f}" if isinstance(v, (int, float)) else "–",
                       help="nothing was shown at this threshold" if v is None and k == "acceptance_rate" else None)

    if isinstance(gate, dict) and gate:
        st.subheader("Exposure gate at 0.7" + (f": {gate['method']}" if gate.get("method") else ""))
        gate_metrics(gate)
    if isinstance(fitted, dict) and fitted and isinstance(gate, dict) and fitted.get("threshold") != gate.get("threshold"):
        th = fitted.get("threshold")
        th = th.get("mean") if isinstance(th, dict) else th
        st.subheader(f"Exposure gate at the model's threshold ({th:.3f})" if isinstance(th, (int, float))
                     else "Exposure gate at the model's threshold")
        st.caption("The threshold the evaluation judged the model with: `--threshold`, else its operating point "
                   "fitted on the validation split (the widest top share of its answers accepted at least 1.2x as "
                   "often as the average). Its confidence is calibrated on that split to how often what the user did next "
                   "accepts the answer (the replay's acceptance), which runs below the simulated users' P(accept) "
                   "measured here.")
        gate_metrics(fitted)
    curve = curve_rows(rep)
    if curve:
        st.subheader("Exposure vs acceptance (Fig. 7a)")
        names = {"exposure_rate": "exposure rate", "acceptance_rate": "simulated acceptance (mean P(accept))"}
        mark = (fitted or {}).get("threshold") if isinstance(fitted, dict) else None
        mark = mark.get("mean") if isinstance(mark, dict) else mark  # over seeds: the mean
        st.altair_chart(exposure_chart(curve, mark if isinstance(mark, (int, float)) else 0.7, names), width="stretch")
        st.caption(f"Main method{' ' + str(gate.get('method')) if isinstance(gate, dict) else ''}: per gate "
                   "threshold, the share of test contexts whose recommendation would be shown, and the simulated "
                   "users' mean P(accept) over those.")
    for study, title in SENSITIVITY_STUDIES.items():
        rows = sensitivity_rows(rep, study)
        if rows:
            st.subheader(f"Sensitivity: {title}")
            numbers(rows)
            info = (rep.get("sensitivity") or {}).get(study) or {}
            skipped = "; ".join(f"{k}: {v}" for k, v in (info.get("skipped") or {}).items())
            if info.get("note") or skipped:
                st.caption(" ".join(x for x in (info.get("note"), f"Skipped: {skipped}." if skipped else "") if x))
except Exception as e:  # a report with the right file but the wrong shape
    st.error(f"{view.root / 'report.json'} does not have the expected report structure: {type(e).__name__}: {e}")

images = [p for p in view.images if not (curve_rows(rep) and p.name == FIG7A_PNG)]
if images:
    st.subheader("Plots")
    cols = st.columns(2)
    for i, img in enumerate(images):
        cols[i % 2].image(str(img), caption=img.name)
if view.markdown:
    with st.expander("report.md"):
        st.markdown(view.markdown)

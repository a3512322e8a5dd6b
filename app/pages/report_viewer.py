"""Report viewer: an evaluation report's tables (paper Tables 2-4) and plots (Fig. 7a).

A thin shell over ``app.browse.load_report``; the report keys are those of ``agent.report``.
Widget keys: report_dir, report_metric.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from agent.report import METRIC_NAMES, METRICS
from app.browse import BrowseError, curve_rows, load_report, subset_rows, whole_rows

ss = st.session_state
st.title("Evaluation report")
st.text_input("Report directory", value=os.environ.get("HOMEPILOT_REPORT", ""), key="report_dir",
              help="Written by `homepilot evaluate` or `homepilot quickstart` (report.json, report.md, PNGs).")
root = (ss.report_dir or "").strip()
if not root:
    st.info("Give a report directory, e.g. `quickstart_out/report` after `make quickstart`.")
    st.stop()
try:
    view = load_report(root)
except BrowseError as e:
    st.error(str(e))
    st.stop()

rep = view.report
try:
    whole = whole_rows(rep)
    if whole:
        st.subheader("Whole test set")
        st.dataframe(pd.DataFrame(whole), hide_index=True)
    if rep.get("by_subset"):
        st.subheader("By sub-dataset (Table 2)")
        metric = st.selectbox("Metric", list(METRICS), format_func=METRIC_NAMES.get, key="report_metric")
        st.dataframe(pd.DataFrame(subset_rows(rep, metric)), hide_index=True)
    gate = rep.get("gate_at_0_7")
    if isinstance(gate, dict) and gate:
        st.subheader("Exposure gate at 0.7")
        cols = st.columns(len(gate))
        for col, (k, v) in zip(cols, gate.items(), strict=True):
            col.metric(k.replace("_", " "), f"{v:.3f}" if isinstance(v, (int, float)) else str(v))
    curve = curve_rows(rep)
    if curve:
        st.subheader("Exposure vs acceptance (Fig. 7a)")
        st.line_chart(pd.DataFrame(curve).set_index("threshold"))
except Exception as e:  # a report with the right file but the wrong shape
    st.error(f"{view.root / 'report.json'} does not have the expected report structure: {type(e).__name__}: {e}")

if view.images:
    st.subheader("Plots")
    cols = st.columns(2)
    for i, img in enumerate(view.images):
        cols[i % 2].image(str(img), caption=img.name)
if view.markdown:
    with st.expander("report.md"):
        st.markdown(view.markdown)

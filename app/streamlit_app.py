"""HomePilot's Streamlit app: the live home, a dataset browser and a report viewer.

Run it with ``homepilot demo [--model RUN] [--data DIR] [--report DIR]`` (or ``make demo``), which
runs ``streamlit run app/streamlit_app.py`` with the options passed as environment variables:

- ``HOMEPILOT_MODEL``: trained run directory for the live home (empty: frequency baseline);
- ``HOMEPILOT_DATA``: dataset directory for the browser (empty: a tiny one made in a cache folder);
- ``HOMEPILOT_REPORT``: evaluation report directory for the report page.

The pages are thin shells over ``app.live_state`` and ``app.browse``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/streamlit_app.py` puts app/ first, not the repo root
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="HomePilot", page_icon=":material/home:", layout="wide")
pages = [
    st.Page("pages/live_home.py", title="Live home", icon=":material/home:", default=True),
    st.Page("pages/dataset_browser.py", title="Dataset browser", icon=":material/table_view:"),
    st.Page("pages/report_viewer.py", title="Report viewer", icon=":material/monitoring:"),
]
st.navigation(pages).run()

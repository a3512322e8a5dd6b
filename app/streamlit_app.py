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



@st.cache_resource
def page_icon():
    """A house drawn here: a ``:material/...:`` or emoji page icon makes the browser fetch the
    favicon from a CDN, and the app must work offline."""
    from PIL import Image, ImageDraw

    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.polygon([(32, 6), (60, 30), (4, 30)], fill=(255, 122, 0))
    d.rectangle([12, 30, 52, 58], fill=(255, 122, 0))
    d.rectangle([27, 40, 37, 58], fill=(255, 255, 255))
    return img


st.set_page_config(page_title="HomePilot", page_icon=page_icon(), layout="wide")
pages = [
    st.Page("pages/live_home.py", title="Live home", icon=":material/home:", default=True),
    st.Page("pages/dataset_browser.py", title="Dataset browser", icon=":material/table_view:"),
    st.Page("pages/report_viewer.py", title="Report viewer", icon=":material/monitoring:"),
]
st.navigation(pages).run()

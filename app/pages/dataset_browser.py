"""Dataset browser: a generated dataset's homes, operations, sub-datasets and card.

A thin shell over ``app.browse``. With no dataset given (``HOMEPILOT_DATA`` empty), a tiny one is
generated into ``app.browse.DEMO_CACHE`` with a progress bar. Widget keys: data_dir, data_home,
data_split, data_sub_config, data_sub_split.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from app.browse import (
    DEMO_CACHE,
    BrowseError,
    CardImage,
    card_blocks,
    ensure_demo_data,
    homes,
    operations,
    split_card,
    subsets,
    summarize_dataset,
)
from sim.dataset.schema import SPLITS

ss = st.session_state
st.title("Dataset browser")
st.text_input("Dataset directory", value=os.environ.get("HOMEPILOT_DATA", ""), key="data_dir",
              help=f"Written by `homepilot generate`; empty = a tiny dataset generated in {DEMO_CACHE}.")
root = (ss.data_dir or "").strip()
if not root:
    cache = os.environ.get("HOMEPILOT_DEMO_CACHE", str(DEMO_CACHE))
    if not (os.path.isdir(os.path.join(cache, "data")) and os.path.isfile(os.path.join(cache, "README.md"))):
        st.info(f"No dataset given: generating a tiny one in {cache} (once).")
        bar = st.progress(0.0, text="generating a tiny dataset...")
        try:
            ensure_demo_data(cache, lambda f, msg: bar.progress(f, text=msg))
        except Exception as e:
            st.error(f"Could not generate the demo dataset in {cache}: {type(e).__name__}: {e}")
            st.stop()
        bar.empty()
    root = cache

try:
    summary = summarize_dataset(root)
    home_rows = homes(root) if "homes" in summary.rows else []
except BrowseError as e:
    st.error(str(e))
    st.stop()
except Exception as e:  # anything else a corrupt directory can throw
    st.error(f"Could not read the dataset at {root}: {type(e).__name__}: {e}")
    st.stop()

st.caption(f"{root}")
split_names = [sp for sp in SPLITS if any(sp in by for by in summary.rows.values())]
# a split a config does not have is "—", not 0 (the dpo config has no test split)
counts = pd.DataFrame([{"config": cfg, **{sp: f"{by[sp]:,}" if sp in by else "—" for sp in split_names}}
                       for cfg, by in summary.rows.items()])
st.markdown("**Rows per config and split** (— : the config has no such split)")
st.dataframe(counts, hide_index=True,
             column_config={sp: st.column_config.TextColumn(sp, alignment="right") for sp in split_names})

tab_homes, tab_ops, tab_sub, tab_card = st.tabs(["Homes", "Operations", "Sub-datasets", "Card"])
with tab_homes:
    if home_rows:
        st.dataframe(pd.DataFrame(home_rows), hide_index=True)
    else:
        st.caption("No homes config.")
with tab_ops:
    ids = [h["home_id"] for h in home_rows]
    splits = list(summary.rows.get("operations", {}))
    if not ids or not splits:
        st.caption("No operations config.")
    else:
        c = st.columns(2)
        hid = c[0].selectbox("Home", ids, key="data_home")
        split = c[1].selectbox("Split", splits, key="data_split")
        try:
            ops = operations(root, hid, split)
        except BrowseError as e:
            st.error(str(e))
            ops = []
        st.caption(f"{len(ops)} operations of {hid} in {split} (first 500).")
        if ops:
            st.dataframe(pd.DataFrame(ops), hide_index=True)
with tab_sub:
    configs = [c for c in ("sft", "feedback") if c in summary.rows]
    if not configs:
        st.caption("No sft or feedback config.")
    else:
        c = st.columns(2)
        cfg = c[0].selectbox("Config", configs, key="data_sub_config")
        split = c[1].selectbox("Split", list(summary.rows[cfg]), key="data_sub_split")
        try:
            sub = subsets(root, cfg, split)
        except BrowseError as e:
            st.error(str(e))
        else:
            st.caption(f"{sub.n} rows; a row counts in every category it operates (paper Table 2 columns).")
            c = st.columns(2)
            c[0].markdown("**By device-count bucket**")
            c[0].bar_chart(pd.Series(sub.by_bucket, name="rows"))
            c[1].markdown("**By device category**")
            c[1].bar_chart(pd.Series(sub.by_category, name="rows"))
with tab_card:
    front, body = split_card(summary.card)
    if not summary.card:
        st.caption("No README.md card.")
    if front:
        with st.expander("Card metadata (the YAML header the Hugging Face Hub reads)"):
            st.code(front, language="yaml")
    for block in card_blocks(body, root):
        if isinstance(block, CardImage):  # stats/*.png: relative to the dataset, so read from disk
            if block.exists:
                st.image(str(block.path), caption=block.alt or block.ref)
            else:
                st.caption(f"(image {block.ref} is missing from {root})")
        else:
            st.markdown(block)

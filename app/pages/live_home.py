"""Live home: the SimPy home runs on a timer; the recommender speaks at each decision point.

A thin shell over ``app.live_state.LiveSession`` (kept in ``st.session_state["live_session"]``).
Widget keys: live_seed, live_index, live_days, live_model, live_start, live_play, live_pause,
live_step, live_speed, live_auto, live_threshold, live_accept, live_reject.
"""

from __future__ import annotations

import math
import os

import pandas as pd
import streamlit as st

from app.live_state import (
    DEFAULT_THRESHOLD,
    LiveSession,
    ModelAdvisor,
    SessionConfig,
    decision_rows,
    fmt_rate,
    hour_table,
    room_views,
    timeline_rows,
)
from sim.records import serialize_actions

SPEEDS = {"slow (3 s)": 3.0, "normal (1.5 s)": 1.5, "fast (0.5 s)": 0.5}  # seconds per tick (one decision)
ss = st.session_state


@st.cache_resource(show_spinner="Loading the model run...")
def load_model(run: str) -> ModelAdvisor:
    """One loaded recommender per run directory, shared by every session (it keeps no per-home state)."""
    return ModelAdvisor(run)


def start_session() -> None:
    """Build a new live home from the setup widgets (errors go to an error box)."""
    ss.live_playing = False
    ss.live_setup_error = ""
    try:
        cfg = SessionConfig(seed=int(ss.live_seed), index=int(ss.live_index), days=int(ss.live_days),
                            model=(ss.live_model or "").strip() or None, threshold=float(ss.live_threshold))
        ss.live_session = LiveSession(cfg, load_model=load_model)
    except Exception as e:  # a bad seed/index or a broken simulator: say so, keep the page alive
        ss.live_session = None
        ss.live_setup_error = f"Could not start the home: {type(e).__name__}: {e}"


def on_play() -> None:
    ss.live_playing = True


def on_pause() -> None:
    ss.live_playing = False


def on_step() -> None:
    s: LiveSession | None = ss.get("live_session")
    if s is not None:
        s.step()
        if ss.live_auto and s.pending is not None:
            s.auto_answer()


def on_answer(accepted: bool) -> None:
    s: LiveSession | None = ss.get("live_session")
    if s is None or s.pending is None:
        return
    try:
        s.answer(accepted)
    except Exception as e:  # an illegal recommendation cannot be applied: show it, do not crash
        s.last_error = f"Could not apply the recommendation: {type(e).__name__}: {e}"
        s.pending.answer, s.pending.by = "rejected", "home (illegal action)"


def on_threshold() -> None:
    s: LiveSession | None = ss.get("live_session")
    if s is not None:
        s.threshold = float(ss.live_threshold)


# ---------------------------------------------------------------- setup

st.title("HomePilot: live home")
with st.sidebar:
    st.subheader("Home")
    st.number_input("Seed", min_value=0, value=0, step=1, key="live_seed",
                    help="Global simulator seed: rooms, devices and the residents' personas come from (seed, index).")
    st.number_input("Home index", min_value=0, value=0, step=1, key="live_index",
                    help="Which home of the seed's stream (a different persona mix and device set).")
    st.number_input("Days", min_value=3, max_value=60, value=14, step=1, key="live_days")
    st.text_input("Model run", value=os.environ.get("HOMEPILOT_MODEL", ""), key="live_model",
                  help="A trained run directory; empty = the frequency baseline.")
    st.button("Start home", key="live_start", on_click=start_session, type="primary")

ss.setdefault("live_playing", False)
ss.setdefault("live_setup_error", "")
if "live_threshold" not in ss:
    ss.live_threshold = DEFAULT_THRESHOLD
if "live_session" not in ss:
    with st.spinner("Simulating the warm-up days of the home..."):
        start_session()

if ss.live_setup_error:
    st.error(ss.live_setup_error)
session: LiveSession | None = ss.get("live_session")
if session is None:
    st.stop()

if session.choice.error:
    st.error(session.choice.error)
if session.choice.notice:
    st.info(session.choice.notice)
home = session.home.home
st.caption(f"Home {home.home_id}: {home.n_devices} devices in {len(home.rooms)} rooms, residents: "
           f"{', '.join(home.residents)}.")

# ---------------------------------------------------------------- controls

c = st.columns([1.2, 1.3, 1.2, 2, 1.8, 3])
c[0].button("Play", icon=":material/play_arrow:", key="live_play", on_click=on_play,
            disabled=ss.live_playing or session.finished)
c[1].button("Pause", icon=":material/pause:", key="live_pause", on_click=on_pause,
            disabled=not ss.live_playing)
c[2].button("Step", icon=":material/skip_next:", key="live_step", on_click=on_step, disabled=session.finished,
            help="Run the home to the next decision point.")
c[3].selectbox("Speed", list(SPEEDS), index=1, key="live_speed", label_visibility="collapsed")
c[4].toggle("Auto-answer", key="live_auto", help="The simulated user answers instead of you.")
c[5].slider("Gate threshold", 0.0, 1.0, step=0.05, key="live_threshold", on_change=on_threshold,
            help="Show a recommendation when its confidence reaches this (the paper's gate, 0.7).")
session.threshold = float(ss.live_threshold)


def show_recommendation(s: LiveSession) -> None:
    d = s.decisions[-1] if s.decisions else None
    st.subheader("Recommendation")
    if d is None:
        st.write("Press **Step** or **Play**: the home runs until someone opens the app.")
        return
    sug = d.suggestion
    st.caption(f"Decision point {d.index + 1} at {d.time:%a %Y-%m-%d %H:%M}, app opened by {d.user or '?'}")
    if sug.abstained:
        st.info(f"No recommendation: {sug.reason}")
        return
    st.markdown(f"**{sug.description}**")
    if sug.reason:
        st.caption(f"Recommender: {sug.reason}")
    st.code(serialize_actions(sug.actions), language=None)
    st.progress(sug.confidence, text=f"confidence {sug.confidence:.2f} (gate {s.threshold:.2f})")
    if sug.attributes:
        rows = [{"action": str(a), **p} for a, p in zip(sug.actions, sug.attributes, strict=False)]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    else:
        st.caption("Attribute probabilities: none (the frequency baseline has no model probabilities).")
    if d.exposed:
        st.success("Shown to the user: the gate exposed it.")
    else:
        st.warning("Withheld: confidence is below the gate, the user never sees it.")
    b = st.columns(2)
    b[0].button("Accept", icon=":material/check:", key="live_accept", type="primary", on_click=on_answer,
                args=(True,), disabled=not d.awaiting)
    b[1].button("Reject", icon=":material/close:", key="live_reject", on_click=on_answer, args=(False,),
                disabled=not d.awaiting)
    if d.answer:
        st.write(f"Answer: **{d.answer}** by {d.by}.")
    with st.expander("What the simulated user thinks"):
        st.write(f"P(accept) = {d.p_accept:.2f}")
        if d.factors:
            st.json({k: (round(v, 3) if isinstance(v, float) else v) for k, v in d.factors.items()})


def show_metrics(s: LiveSession) -> None:
    m = s.metrics()
    k = st.columns(4)
    k[0].metric("Acceptance rate", fmt_rate(m["acceptance_rate"]), help="accepted / answered shown recommendations")
    k[1].metric("Exposure rate", fmt_rate(m["exposure_rate"]), help="shown / decision points")
    k[2].metric("Decision points", m["decisions"])
    k[3].metric("Accepted", f"{m['accepted']} of {m['answered']}")


def device_line(d: dict) -> str:
    kind = "" if d["device"] == d["type"] else f" ({d['type']})"
    return f"- **{d['device']}**{kind}: {d['state'].replace('=', ' ')}"


def show_home(s: LiveSession) -> None:
    snap = s.home.snapshot()
    out = snap.get("outdoor", {})
    st.subheader(f"{s.now:%A %Y-%m-%d %H:%M}")
    st.caption(f"Outdoor: {out.get('temperature', '?')} °C, {out.get('humidity', '?')} %, {out.get('weather', '')}")
    views = room_views(snap)
    cols = st.columns(3)
    for i, r in enumerate(views):
        with cols[i % 3].container(border=True):
            st.markdown(f"**{r['label']}**")
            st.caption(" · ".join(r["sensors"].values()))
            st.markdown("\n".join(device_line(d) for d in r["devices"]) or "_no devices_")
    people = snap.get("people", {})
    if people:
        st.caption("People: " + "; ".join(f"{u} ({p['persona']}) {p['where']} in {p['room']}"
                                          for u, p in people.items()))


def show_charts(s: LiveSession) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Exposure vs acceptance by threshold** (Fig. 7a)")
        if not s.decisions:
            st.caption("No decision points yet.")
            return
        curve = pd.DataFrame(s.exposure_curve()).set_index("threshold")
        st.line_chart(curve)
        at = min(s.exposure_curve(), key=lambda p: abs(p["threshold"] - s.threshold))
        st.caption(f"At threshold {s.threshold:.2f}: exposure {fmt_rate(at['exposure_rate'])}, acceptance "
                   f"{fmt_rate(at['acceptance_rate'])} (withheld or unanswered: the simulated user's P(accept)).")
    with right:
        st.markdown("**Acceptance by hour of day per category** (Fig. 5)")
        by_hour = s.acceptance_by_hour()
        table = hour_table(by_hour)
        if table:
            points = pd.DataFrame([{"hour": h, "category": c, "acceptance": a / n, "answered": n}
                                   for c, row in by_hour.items() for h, (a, n) in enumerate(row) if n])
            st.scatter_chart(points, x="hour", y="acceptance", color="category", size="answered")
            df = pd.DataFrame(table, index=range(24))
            df.index.name = "hour"
            st.dataframe(df.dropna(how="all").map(lambda x: "" if math.isnan(x) else f"{x:.2f}"))
        else:
            st.caption("No answered recommendations yet.")


interval = SPEEDS.get(ss.get("live_speed"), 1.5) if ss.live_playing else None


@st.fragment(run_every=interval)
def live_panel() -> None:
    s: LiveSession = ss.live_session
    if ss.live_playing:
        s.tick(auto=bool(ss.live_auto))
        if s.finished:
            ss.live_playing = False
            st.rerun(scope="app")  # stop the timer and re-enable the controls
    if s.last_error:
        st.error(s.last_error)
    if s.finished:
        st.info("The simulated days are over: start a new home to go on.")
    elif ss.live_playing and s.pending is not None and not ss.live_auto:
        st.info("Paused at a shown recommendation: accept or reject it (or turn on auto-answer).")
    show_metrics(s)
    left, right = st.columns([2, 3])
    with left:
        show_recommendation(s)
    with right:
        show_home(s)
    st.subheader("Timeline")
    t1, t2 = st.tabs(["People's operations", "Decision points"])
    with t1:
        rows = timeline_rows(s.home.log.operations)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True)
        else:
            st.caption("No operations yet.")
    with t2:
        rows = decision_rows(s.decisions)
        if rows:
            st.dataframe(pd.DataFrame(rows), hide_index=True)
        else:
            st.caption("No decision points yet.")
    show_charts(s)


live_panel()

"""Live home: the SimPy home runs on a timer; the recommender speaks at each decision point.

A thin shell over ``app.live_state.LiveSession`` (kept in ``st.session_state["live_session"]``) and
``app.floorplan`` (the plan, an inline SVG). Widget keys: live_seed, live_index, live_days,
live_advisor, live_model, live_start, live_play, live_pause, live_step, live_speed, live_auto, live_threshold,
live_accept, live_reject.
"""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from app.advisors import describe_actions
from app.charts import exposure_chart, hour_chart
from app.demo import ADVISOR_CHOICES
from app.floorplan import Highlight, floor_plan_svg
from app.live_state import (
    DEFAULT_THRESHOLD,
    Decision,
    GBDTAdvisor,
    LiveSession,
    ModelAdvisor,
    SessionConfig,
    change_rows,
    decision_rows,
    factor_rows,
    fmt_rate,
    gate_text,
    simulated_gbdt,
    timeline_rows,
)

SPEEDS = {"slow (3 s)": 3.0, "normal (1.5 s)": 1.5, "fast (0.5 s)": 0.5}  # seconds per tick (one decision)
ss = st.session_state


ADVISOR_LABELS = dict(zip(ADVISOR_CHOICES, ("Trained model (the run below; frequency baseline without one)",
                                            "GBDT reranker (the strongest baseline)", "Usual-operation rule",
                                            "Frequency baseline"), strict=True))


@st.cache_resource(show_spinner="Loading the model run...")
def load_model(run: str) -> ModelAdvisor:
    """One loaded recommender per run directory, shared by every session (it keeps no per-home state)."""
    return ModelAdvisor(run)


@st.cache_resource(show_spinner="Training the GBDT reranker on 30 simulated homes of this seed (about 20 s)...")
def load_gbdt(seed: int) -> GBDTAdvisor:
    """One reranker per simulator seed, shared by every session (trained on homes the page never shows)."""
    return simulated_gbdt(seed)


def start_session() -> None:
    """Build a new live home from the setup widgets (errors go to an error box)."""
    ss.live_playing = False
    ss.live_setup_error = ""
    try:
        cfg = SessionConfig(seed=int(ss.live_seed), index=int(ss.live_index), days=int(ss.live_days),
                            model=(ss.live_model or "").strip() or None,
                            # the slider once moved, else the advisor's own (a model's fitted operating point)
                            threshold=float(ss.live_threshold) if ss.get("live_threshold_moved") else None,
                            advisor=ss.get("live_advisor", "auto"))
        ss.live_session = LiveSession(cfg, load_model=load_model, load_gbdt=load_gbdt)
        ss.live_threshold = round(ss.live_session.threshold, 2)
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
    ss.live_threshold_moved = True
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
    if "live_advisor" not in ss:  # homepilot demo --advisor; an unknown value keeps the default
        ss.live_advisor = os.environ.get("HOMEPILOT_ADVISOR", "auto") if os.environ.get(
            "HOMEPILOT_ADVISOR") in ADVISOR_LABELS else "auto"
    st.selectbox("Recommender", list(ADVISOR_LABELS), format_func=ADVISOR_LABELS.get, key="live_advisor",
                 help="Who recommends. The GBDT reranker and the usual-operation rule read the same prompt as "
                      "the model; the reranker is trained on 30 other simulated homes of this seed.")
    st.text_input("Model run", value=os.environ.get("HOMEPILOT_MODEL", ""), key="live_model",
                  help="A trained run directory (used by the first choice above); empty = the frequency baseline.")
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
    how = getattr(session.advisor, "search", "")
    st.info(session.choice.notice + (f" It answers by {how}: the gate threshold below alone decides what is shown."
                                     if how else ""))
home = session.home.home
residents = ", ".join(f"{u} ({p.replace('_', ' ')})" for u, p in zip(session.home.world.users, home.residents,
                                                                     strict=False))
st.caption(f"Home {home.home_id}: {home.n_devices} devices in {len(home.rooms)} rooms; residents {residents}. "
           "Someone opens the app at each decision point; the recommender may then show one recommendation.")

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
c[5].slider("Gate threshold", 0.0, 1.0, step=0.01, key="live_threshold", on_change=on_threshold,
            help="Show a recommendation when its confidence reaches this. A trained model starts at its operating "
                 "point fitted on validation (the widest top share of its answers accepted at least 1.2x as often "
                 "as the average; its confidence is a calibrated acceptance probability, so the paper's 0.7 "
                 "shows few or none), other recommenders at 0.7. An uncalibrated model lowers it by 10% for homes "
                 "with more than 10 devices and again for numeric values.")
session.threshold = float(ss.live_threshold)


# ---------------------------------------------------------------- panels


def show_metrics(s: LiveSession) -> None:
    m = s.metrics()
    k = st.columns(8)
    k[0].metric("Decision points", m["decisions"], help="Times someone opened the app.")
    k[1].metric("Shown", m["shown"], help="Recommendations the gate let through.")
    k[2].metric("Withheld", m["withheld"], help="Recommendations below the gate threshold: never shown.")
    k[3].metric("Accepted", m["accepted"])
    k[4].metric("Rejected", m["rejected"])
    k[5].metric("Unanswered", m["unanswered"], help="Shown, then stepped past without an answer (not counted "
                                                   "in the acceptance rate).")
    k[6].metric("Acceptance rate", fmt_rate(m["acceptance_rate"]),
                help="accepted / (accepted + rejected): answered recommendations only.")
    k[7].metric("Exposure rate", fmt_rate(m["exposure_rate"]), help="shown / decision points")


def _changes(s: LiveSession, d: Decision) -> str:
    """The recommended settings, from the devices' state at the decision to the proposed one."""
    rows = change_rows(d.suggestion.actions, d.before, s.types)
    return "\n".join(f"- **{r['room'].capitalize()} {r['device']}**: {r['setting']} "
                     + (f"stays **{r['proposed']}**" if r["note"] == "unchanged" else f"{r['now']} → **{r['proposed']}**")
                     + (" (already so)" if r["note"] == "already so" else "") for r in rows)


def show_recommendation(s: LiveSession) -> None:
    d = s.decisions[-1] if s.decisions else None
    st.subheader("Recommendation")
    if d is None:
        st.write("Press **Step** or **Play**: the home runs until someone opens the app.")
        return
    sug = d.suggestion
    persona = dict(zip(s.home.world.users, s.home.home.residents, strict=False)).get(d.user, "")
    st.caption(f"Decision point {d.index + 1} at {d.time:%a %Y-%m-%d %H:%M}: app opened by {d.user or '?'}"
               + (f" ({persona.replace('_', ' ')})" if persona else ""))
    if sug.abstained:
        st.info(f"No recommendation: {sug.reason}")
        return
    gate = gate_text(sug.confidence, d.threshold, sug.relax)
    words = describe_actions(sug.actions)  # the catalogue's words: always readable
    with st.container(border=True):
        if d.exposed:
            st.markdown(f"**:orange[Shown]** · {gate}")
            st.markdown(f"#### {words}")
            st.markdown(_changes(s, d))
        else:
            st.markdown(f"**:gray[Withheld by the gate]** · :gray[{gate}]")
            st.markdown(f"#### :gray[{words}]")
            st.markdown(":gray[The best candidate, not shown to the user: its confidence is below the gate.]")
            st.markdown("\n".join(f"- :gray[{line[2:]}]" for line in _changes(s, d).splitlines()))
        st.progress(sug.confidence, text=f"confidence {sug.confidence:.2f}")
        b = st.columns(2)
        b[0].button("Accept", icon=":material/check:", key="live_accept", type="primary", on_click=on_answer,
                    args=(True,), disabled=not d.awaiting)
        b[1].button("Reject", icon=":material/close:", key="live_reject", on_click=on_answer, args=(False,),
                    disabled=not d.awaiting)
        if d.answer in ("accepted", "rejected"):
            st.write(f"Answer: **{d.answer}** by {d.by}.")
        elif d.answer == "unanswered":
            st.write("Answer: none (stepped past).")
    if sug.description and sug.description != words:
        st.caption(f"The model's own wording: “{sug.description}”")
    st.markdown(f"**Why:** {sug.reason}" if sug.reason else "")
    if sug.alternatives:
        st.caption("Runner-ups: " + "; ".join(f"{describe_actions(a)} ({p:.0%})" for a, p in sug.alternatives[:4]))
    if sug.attributes:
        with st.expander("Model probabilities per action (Eq. 6 parts)"):
            rows = [{"action": str(a), **p} for a, p in zip(sug.actions, sug.attributes, strict=False)]
            st.dataframe(pd.DataFrame(rows), hide_index=True)
    with st.expander(f"Simulated user's P(accept) = {d.p_accept:.2f} (the simulator's answer model, not you)"):
        st.write("The simulated residents accept with a probability from a logistic model: each factor "
                 "below adds to the log-odds (+1 multiplies the odds by 2.7). Auto-answer draws from it; "
                 "Fig. 7a averages it.")
        rows = factor_rows(d.factors)
        st.markdown("\n".join(f"- **{r['effect (log-odds)']:+.2f}** ({r['factor']}, towards {r['pushes towards']}): "
                               f"{r['meaning']}" for r in rows))
        z = sum(r["effect (log-odds)"] for r in rows)
        st.caption(f"Sum {z:+.2f} → P(accept) = 1 / (1 + e^{-z:+.2f}) = {d.p_accept:.2f}.")


def show_home(s: LiveSession) -> None:
    snap = s.home.snapshot()
    out = snap.get("outdoor", {})
    st.subheader(f"{s.now:%A %Y-%m-%d %H:%M}")
    st.caption(f"Outdoor: {out.get('temperature', '?')} °C, {out.get('humidity', '?')}% RH, "
               f"{out.get('weather', '')}. Hover a device for its full state.")
    d = s.decisions[-1] if s.decisions else None
    hl = Highlight(changed=s.changed)
    if d is not None and not d.suggestion.abstained and d.answer is None:
        hl = Highlight(proposed=d.suggestion.actions) if d.awaiting else Highlight(withheld=d.suggestion.actions)
    # st.markdown, not st.html: st.html sanitises with DOMPurify's HTML-only profile, which drops SVG
    st.markdown(floor_plan_svg(snap, hl), unsafe_allow_html=True)


def show_charts(s: LiveSession) -> None:
    left, right = st.columns(2)
    with left:
        st.markdown("**Exposure vs simulated acceptance by threshold** (Fig. 7a)")
        if not s.decisions:
            st.caption("No decision points yet.")
        else:
            curve = s.exposure_curve()
            names = {"exposure_rate": "exposure rate", "acceptance_rate": "simulated acceptance (mean P(accept))"}
            st.altair_chart(exposure_chart(curve, s.threshold, names), width="stretch")
            at = min(curve, key=lambda p: abs(p["threshold"] - s.threshold))
            st.caption(f"At threshold {at['threshold']:.2f}: {fmt_rate(at['exposure_rate'])} of decision points "
                       f"would be shown, with the simulated user's mean P(accept) {fmt_rate(at['acceptance_rate'])}. "
                       "This counts every recommendation, shown or not; the acceptance rate above counts your "
                       "answers.")
    with right:
        st.markdown("**Acceptance by hour of day per category** (Fig. 5)")
        by_hour = s.acceptance_by_hour()
        if by_hour:
            st.altair_chart(hour_chart(by_hour), width="stretch")
            st.caption("Answered recommendations only (accepted / (accepted + rejected)); disc size = answered.")
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
    left, right = st.columns([1, 2])
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

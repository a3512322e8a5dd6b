"""The app's two figures as Altair (Vega-Lite) charts, drawn in the browser from bundled scripts
(nothing fetched at run time). Pure: plain rows in, a chart out; the pages call
``st.altair_chart``.

- ``exposure_chart``: Fig. 7a, exposure and acceptance rates against the gate threshold. Both axes
  are fixed to [0, 1] and rows without a value are left out, so a run whose confidences are all
  0 draws a flat exposure line instead of an empty scale ("Infinite extent").
- ``hour_chart``: Fig. 5, acceptance by hour of day per device category, hours 0-23 always on the
  axis, disc size = answered recommendations (a whole-number legend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import pandas as pd

RATE_NAMES = {"exposure_rate": "exposure rate (shown / decision points)", "acceptance_rate": "acceptance rate"}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def curve_frame(rows: Sequence[Mapping[str, Any]], names: Mapping[str, str] = RATE_NAMES) -> pd.DataFrame:
    """Long form of a Fig. 7a curve: threshold, series, rate; rows with no finite rate left out."""
    out = [{"threshold": float(r["threshold"]), "series": names[k], "rate": float(r[k])}
           for r in rows for k in names if _finite(r.get(k)) and _finite(r.get("threshold"))]
    return pd.DataFrame(out, columns=["threshold", "series", "rate"])


def exposure_chart(rows: Sequence[Mapping[str, Any]], threshold: float | None = None,
                   names: Mapping[str, str] = RATE_NAMES, height: int = 260) -> alt.Chart:
    """Fig. 7a: one line per rate against the threshold, both axes [0, 1]; a rule at ``threshold``."""
    df = curve_frame(rows, names)
    unit = alt.Scale(domain=[0, 1], nice=False)
    x = alt.X("threshold:Q", title="gate threshold", scale=unit)
    y = alt.Y("rate:Q", title="rate", scale=unit, axis=alt.Axis(format="%"))
    colour = alt.Color("series:N", title=None, sort=list(names.values()),
                       scale=alt.Scale(domain=list(names.values()), range=["#4c78a8", "#f58518"]),
                       legend=alt.Legend(orient="bottom", labelLimit=400))
    lines = alt.Chart(df).mark_line(point=True).encode(
        x=x, y=y, color=colour,
        tooltip=[alt.Tooltip("series:N"), alt.Tooltip("threshold:Q", format=".2f"), alt.Tooltip("rate:Q", format=".1%")])
    layers: list[alt.Chart] = [lines]
    if threshold is not None:
        rule = alt.Chart(pd.DataFrame({"threshold": [float(threshold)], "label": [f"gate {threshold:.2f}"]}))
        layers.append(rule.mark_rule(strokeDash=[4, 3], color="#555").encode(x=alt.X("threshold:Q", scale=unit)))
        layers.append(rule.mark_text(align="left", dx=4, dy=-6, color="#555").encode(
            x=alt.X("threshold:Q", scale=unit), y=alt.value(10), text="label:N"))
    return alt.layer(*layers).properties(height=height)


def hour_frame(by_hour: Mapping[str, Sequence[tuple[int, int]]]) -> pd.DataFrame:
    """Fig. 5 rows: hour, category, acceptance, answered (hours with answers only)."""
    out = [{"hour": h, "category": c, "acceptance": a / n, "answered": n, "accepted": a}
           for c, row in by_hour.items() for h, (a, n) in enumerate(row) if n]
    return pd.DataFrame(out, columns=["hour", "category", "acceptance", "answered", "accepted"])


def hour_chart(by_hour: Mapping[str, Sequence[tuple[int, int]]], height: int = 260) -> alt.Chart:
    """Fig. 5: acceptance of answered recommendations by hour of day, a colour per category."""
    df = hour_frame(by_hour)
    most = int(df["answered"].max()) if len(df) else 1
    return alt.Chart(df).mark_circle(opacity=0.8).encode(
        x=alt.X("hour:Q", title="hour of day", scale=alt.Scale(domain=[-0.5, 23.5], nice=False),
                axis=alt.Axis(values=list(range(0, 24, 2)), format="d")),
        y=alt.Y("acceptance:Q", title="acceptance rate", scale=alt.Scale(domain=[0, 1], nice=False),
                axis=alt.Axis(format="%")),
        color=alt.Color("category:N", title="category"),
        size=alt.Size("answered:Q", title="answered", scale=alt.Scale(domain=[1, max(most, 2)], range=[60, 400]),
                      legend=alt.Legend(values=sorted({1, max(1, most // 2), most}), format="d")),
        tooltip=["category:N", "hour:Q", alt.Tooltip("acceptance:Q", format=".0%"), "accepted:Q", "answered:Q"],
    ).properties(height=height)

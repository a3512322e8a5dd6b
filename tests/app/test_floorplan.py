"""The live page's pictures, pure: the floor plan SVG (app.floorplan), the figures (app.charts) and
the words around a recommendation (app.live_state view helpers)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from app.floorplan import WIDTH, Highlight, change_text, floor_plan_svg, layout, mark, state_text
from app.live_state import LiveSession, SessionConfig, change_rows, factor_rows, gate_text
from sim.records import Action

SVG = "{http://www.w3.org/2000/svg}"


def _snapshot() -> dict:
    return {"home_id": "h1", "rooms": {
        "living_room": {"temperature": 21.5, "humidity": 40.0, "illuminance": 300.0, "occupancy": 1, "devices": {
            "light": {"type": "light", "power": "on", "brightness": "60", "color_temp": "4000"},
            "tv": {"type": "tv", "power": "off", "volume": "20"}}},
        "hallway": {"temperature": 19.0, "humidity": 41.0, "illuminance": 0.0, "occupancy": 0, "devices": {
            "lock": {"type": "lock", "lock": "unlocked"}}},
        "bedroom": {"temperature": 18.0, "humidity": 45.0, "illuminance": 0.0, "occupancy": 1, "devices": {
            "curtain": {"type": "curtain", "action": "close", "position": "0"}}},
        "study": {"temperature": 18.0, "humidity": 45.0, "illuminance": 0.0, "occupancy": 0, "devices": {}}},
        "people": {"u0": {"persona": "early_bird", "where": "home", "room": "living_room"},
                   "u1": {"persona": "night_owl", "where": "asleep", "room": "bedroom"},
                   "u2": {"persona": "student", "where": "away", "room": ""}}}


def _chips(svg: str) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(svg)
    return {(g.get("data-room"), g.get("data-device")): g for g in root.iter(f"{SVG}g") if g.get("class") == "device"}


def test_state_text_and_marks_hand_worked():
    assert state_text("light", {"power": "on", "brightness": "60", "color_temp": "4000"}) == "on · 60%"
    assert state_text("light", {"power": "off", "brightness": "60"}) == "off"
    assert state_text("ac", {"power": "on", "mode": "cool", "target_temperature": "26"}) == "on · cool · 26°C"
    assert state_text("curtain", {"action": "open", "position": "100"}) == "open"
    assert state_text("curtain", {"action": "stop", "position": "40"}) == "40% open"
    assert state_text("curtain", {"action": "close", "position": "0"}) == "closed"
    assert state_text("lock", {"lock": "locked"}) == "locked"
    assert state_text("robot_vacuum", {"command": "return_to_base", "suction": "max"}) == "docked"
    assert mark("lock", {"lock": "locked"}) != mark("lock", {"lock": "unlocked"})
    assert mark("light", {"power": "on"}) != mark("light", {"power": "off"})
    # a change in words: the whole state when it turns on, else only what changes
    assert change_text("light", {"power": "off", "brightness": "60"}, {"power": "on", "brightness": "60"}) == "off → on · 60%"
    assert change_text("light", {"power": "on", "brightness": "60"}, {"power": "on", "brightness": "80"}) == "60% → 80%"


def test_layout_keeps_rooms_inside_the_plan_without_overlap():
    for counts in ({"living_room": 4, "hallway": 3, "bedroom": 3, "bathroom": 1, "master_bedroom": 2, "study": 3},
                   {"living_room": 1, "kids_room": 1},
                   {r: n for r, n in zip(("living_room", "dining_room", "laundry", "hallway", "bedroom", "bathroom",
                                          "master_bedroom", "study", "kids_room"), (6, 3, 2, 2, 9, 6, 2, 1, 1), strict=True)}):
        boxes = layout(counts)
        assert {b.room for b in boxes} == set(counts)
        for b in boxes:
            assert b.x >= 0 and b.x + b.w <= WIDTH + 1e-6 and b.w > 0 and b.h > 0
            assert b.cols >= 1 and math.ceil(counts[b.room] / b.cols) * 38 < b.h  # the chips fit
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                apart = a.x + a.w <= b.x + 1e-6 or b.x + b.w <= a.x + 1e-6 or a.y + a.h <= b.y + 1e-6 or b.y + b.h <= a.y + 1e-6
                assert apart, (a, b)
    boxes = {b.room: b for b in layout({"living_room": 4, "hallway": 3, "bedroom": 3, "study": 2, "bathroom": 1,
                                        "master_bedroom": 2, "kitchen": 2})}
    assert boxes["living_room"].y < boxes["hallway"].y < boxes["bedroom"].y  # day rooms, corridor, night rooms
    assert boxes["hallway"].w == pytest.approx(WIDTH)


def test_floor_plan_shows_devices_people_sensors_and_highlights():
    snap = _snapshot()
    plain = floor_plan_svg(snap)
    chips = _chips(plain)
    assert set(chips) == {("living_room", "light"), ("living_room", "tv"), ("hallway", "lock"), ("bedroom", "curtain")}
    assert chips[("living_room", "light")].get("data-state") == "on · 60%"
    assert all(g.get("data-mark") == "none" for g in chips.values())
    assert "21.5 °C" in plain and "40% RH" in plain and "300 lx" in plain
    assert 'data-user="u0" data-where="home"' in plain and 'data-user="u1" data-where="asleep"' in plain
    assert "Away: u2 (student)" in plain and "no devices" in plain  # the study has none
    lock = Action("hallway", "lock", "lock", "locked")
    tv = (Action("living_room", "tv", "power", "on"), Action("living_room", "tv", "volume", "35"))
    chips = _chips(floor_plan_svg(snap, Highlight(proposed=(lock,))))
    assert chips[("hallway", "lock")].get("data-mark") == "proposed"
    assert "unlocked → locked" in ET.tostring(chips[("hallway", "lock")], encoding="unicode")
    chips = _chips(floor_plan_svg(snap, Highlight(withheld=tv)))
    assert chips[("living_room", "tv")].get("data-mark") == "withheld"
    assert "off → on · vol 35%?" in ET.tostring(chips[("living_room", "tv")], encoding="unicode")
    snap["rooms"]["hallway"]["devices"]["lock"]["lock"] = "locked"  # after the accept
    chips = _chips(floor_plan_svg(snap, Highlight(changed={("hallway", "lock"): {"lock": ("unlocked", "locked")}})))
    assert chips[("hallway", "lock")].get("data-mark") == "changed"
    assert chips[("hallway", "lock")].get("data-state") == "locked"
    assert "✓ unlocked → locked" in ET.tostring(chips[("hallway", "lock")], encoding="unicode")


def test_floor_plan_escapes_names_and_fetches_nothing():
    snap = _snapshot()
    snap["rooms"]["living_room"]["devices"]['<b>"x"'] = {"type": "light", "power": "on", "brightness": "5"}
    svg = floor_plan_svg(snap)
    ET.fromstring(svg)  # still well-formed
    assert "<b>" not in svg and not re.search(r"(href|src)=", svg) and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


def test_floor_plan_of_a_simulated_home_is_well_formed():
    s = LiveSession(SessionConfig(seed=0, index=3, days=4, threshold=0.0))
    d = s.step()
    svg = floor_plan_svg(s.home.snapshot(), Highlight(proposed=d.suggestion.actions))
    chips = _chips(svg)
    assert len(chips) == s.home.home.n_devices
    assert {k for k, g in chips.items() if g.get("data-mark") == "proposed"} == {a.target for a in d.suggestion.actions}


def test_words_around_a_recommendation():
    rows = factor_rows({"base": -2.2, "intent_match": 4.8, "conflict": 0.0, "habit_window": 1.0})
    assert [r["factor"] for r in rows] == ["intent match", "base", "habit window"]  # strongest first, zeros out
    assert rows[0]["pushes towards"] == "accept" and rows[1]["pushes towards"] == "reject"
    assert all(r["meaning"] for r in rows)
    types = {("hallway", "lock"): "lock"}
    r = change_rows((Action("hallway", "lock", "lock", "locked"),), {("hallway", "lock"): {"lock": "unlocked"}}, types)
    assert r == [{"room": "hallway", "device": "lock", "setting": "lock", "now": "unlocked", "proposed": "locked",
                  "note": ""}]
    warmer = {("bathroom", "bath_warmer"): "bath_warmer"}
    off = {("bathroom", "bath_warmer"): {"power": "off", "mode": "heat"}}
    r = change_rows((Action("bathroom", "bath_warmer", "power", "on"), Action("bathroom", "bath_warmer", "mode", "heat")),
                    off, warmer)  # the mode is already heat, but setting it also turns the warmer on
    assert [(x["now"], x["proposed"], x["note"]) for x in r] == [("off", "on", ""), ("heat", "heat", "unchanged")]
    on = {("bathroom", "bath_warmer"): {"power": "on", "mode": "heat"}}
    assert change_rows((Action("bathroom", "bath_warmer", "mode", "heat"),), on, warmer)[0]["note"] == "already so"
    assert gate_text(0.66, 0.7, 0.9) .startswith("confidence 0.66 >= 0.63")
    assert gate_text(0.4, 0.7) == "confidence 0.40 < 0.70"


def test_fig7a_chart_has_fixed_axes_and_drops_missing_rates():
    from app.charts import curve_frame, exposure_chart, hour_chart

    flat = [{"threshold": t / 20, "exposure_rate": 1.0 if t == 0 else 0.0, "acceptance_rate": float("nan") if t else 0.3}
            for t in range(21)]  # every confidence 0: exposure drops at once, no acceptance past 0
    df = curve_frame(flat)
    assert len(df) == 22 and df["rate"].notna().all()
    spec = exposure_chart(flat, 0.7).to_dict()
    enc = spec["layer"][0]["encoding"]
    assert enc["x"]["scale"]["domain"] == [0, 1] and enc["y"]["scale"]["domain"] == [0, 1]
    empty = exposure_chart([{"threshold": 0.0, "exposure_rate": float("nan"), "acceptance_rate": None}]).to_dict()
    assert empty["layer"][0]["encoding"]["y"]["scale"]["domain"] == [0, 1]
    by_hour = {"Light": [(0, 0)] * 21 + [(1, 2), (0, 0), (3, 3)]}
    h = hour_chart(by_hour).to_dict()
    assert h["encoding"]["x"]["scale"]["domain"] == [-0.5, 23.5]  # hours past 20 stay on the axis
    assert h["encoding"]["size"]["legend"]["format"] == "d"
    assert all(float(v).is_integer() for v in h["encoding"]["size"]["legend"]["values"])

"""The live home as a floor plan: one inline SVG string drawn from ``LiveHome.snapshot()`` (pure,
no Streamlit; the page puts it on screen with ``st.html``, so nothing is fetched at run time).

The plan: day rooms (living room, dining room, kitchen, ...) on top, the hallway as a corridor
across the middle, night rooms (bedrooms, study, bathroom) below; a room's width grows with its
device count. Each room shows its name, its sensor readings (temperature, humidity, light) and
its residents (a disc per person: green awake, dark blue asleep; people away are listed under
the plan). Each device is a chip: an icon disc coloured by state (``mark``), its name, and its
state in words.

Highlights (``Highlight``): the recommended device(s) in orange with the proposed change
(``now -> proposed``); a recommendation the gate withheld in grey, dashed; the device(s) an
accepted recommendation just changed in green (``before -> after``), for one step.

Every chip carries ``data-room``, ``data-device``, ``data-state`` (its state text) and
``data-mark`` (proposed | withheld | changed | none), so tests can read the plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from sim.catalog import DEVICE_TYPES, CatalogError, effects, room_label
from sim.records import Action

WIDTH = 700  # SVG user units: about the plan column's width in pixels, so text stays at its size
PAD = 10  # room padding
GAP = 8  # between device chips
CHIP_W, CHIP_H = 138, 38  # minimum chip width, chip height
CHIP_MAX_W = 240  # a room with few devices gets wider chips, not more columns
HEADER = 50  # room name + sensor line
ROOM_MIN_W = 180
DAY_ROOMS = ("living_room", "dining_room", "kitchen", "balcony", "laundry", "garage")
CORRIDOR = "hallway"

# state colours of the icon disc
ON, OFF = "#f0a400", "#b9c0ca"  # on / active, off / idle
LOCKED, UNLOCKED = "#2e9e5b", "#d64545"
OPEN = "#3b8fd9"  # curtain open (any position above 0)
ALWAYS = "#6bb8e8"  # always-on appliances (fridge)
# highlights
PROPOSED, WITHHELD, CHANGED = "#ff7a00", "#8a8f98", "#1f9d55"
ROOM_FILL = {"living_room": "#fbf6ec", "dining_room": "#fbf6ec", "kitchen": "#f2f8ec", "bathroom": "#ecf6f8",
             "hallway": "#f3f3f3", "balcony": "#eef5ee", "laundry": "#f3f3f3", "garage": "#efefef"}
NIGHT_FILL = "#eef1fa"

# fields shown after "on" for each type (first two that the device has); the rest stay in the tooltip
DETAIL = {"light": ("brightness",), "ac": ("mode", "target_temperature"), "bath_warmer": ("mode", "target_temperature"),
          "humidifier": ("target_humidity",), "dehumidifier": ("target_humidity",), "air_purifier": ("mode",),
          "fan": ("speed",), "heater": ("target_temperature",), "water_heater": ("target_temperature",),
          "tv": ("volume",), "speaker": ("playback", "volume"), "washer": ("program",), "dishwasher": ("program",),
          "kettle": ("target_temperature",), "rice_cooker": ("mode",), "camera": ("motion_detection",),
          "fridge": ("target_temperature", "mode")}
UNITS = {"C": "°C", "%": "%", "K": "K"}


# ---------------------------------------------------------------- one device's state in words


def _value(type_name: str, f: str, v: str) -> str:
    spec = DEVICE_TYPES[type_name].fields.get(f)
    if spec is not None and spec.is_numeric:
        unit = UNITS.get(spec.unit or "", spec.unit or "")
        text = f"{v}{unit}"
        return f"vol {text}" if f == "volume" else f"motion {v}" if f == "motion_detection" else text
    if f == "motion_detection":
        return f"motion {v}"
    if f == "mode" and type_name in ("air_purifier", "rice_cooker", "fridge"):
        return f"{v.replace('_', ' ')} mode"
    return v.replace("_", " ")


def state_text(type_name: str, state: Mapping[str, str]) -> str:
    """A device's state in a few words: ``on · 60%``, ``off``, ``on · cool mode · 26°C``, ``closed``, ``locked``."""
    if type_name == "curtain":
        pos = state.get("position", "0")
        return "closed" if pos in ("0", "0.0") else "open" if pos in ("100", "100.0") else f"{pos}% open"
    if type_name == "lock":
        return state.get("lock", "?")
    if type_name == "robot_vacuum":
        cmd = state.get("command", "")
        return {"start": "cleaning", "pause": "paused", "return_to_base": "docked"}.get(cmd, cmd)
    if type_name not in DEVICE_TYPES:
        return ", ".join(f"{k} {v}" for k, v in state.items())
    power = state.get("power")
    if power == "off":
        return "off"
    parts = [] if power is None else ["on"]
    for f in DETAIL.get(type_name, ()):
        if f in state:
            parts.append(_value(type_name, f, state[f]))
    return " · ".join(parts) or ", ".join(f"{k} {v}" for k, v in state.items())


def mark(type_name: str, state: Mapping[str, str]) -> str:
    """The icon disc's colour for this state (see the module docstring's legend)."""
    if type_name == "lock":
        return LOCKED if state.get("lock") == "locked" else UNLOCKED
    if type_name == "curtain":
        return OFF if state.get("position", "0") in ("0", "0.0") else OPEN
    if type_name == "robot_vacuum":
        return ON if state.get("command") == "start" else OFF
    if type_name == "fridge":
        return ALWAYS
    return ON if state.get("power") == "on" else OFF


def change_text(type_name: str, before: Mapping[str, str], after: Mapping[str, str]) -> str:
    """``before -> after`` in a few words: the whole state when it turns on or off (or opens,
    locks, ...), else only the settings that change (``100% → 80%``)."""
    b, a = state_text(type_name, before), state_text(type_name, after)
    if b.split(" · ")[0] != a.split(" · ")[0] or type_name not in DEVICE_TYPES:
        return f"{b} → {a}"
    fields = [f for f in DEVICE_TYPES[type_name].fields if before.get(f) != after.get(f) and f in after]
    if not fields:
        return f"{b} → {a}"
    old = " · ".join(_value(type_name, f, before.get(f, "?")) for f in fields)
    new = " · ".join(_value(type_name, f, after[f]) for f in fields)
    return f"{old} → {new}"


def applied(type_name: str, state: Mapping[str, str], actions: Sequence[Action]) -> dict[str, str]:
    """``state`` after ``actions`` (with what each implies: brightness 60 turns a light on)."""
    out = dict(state)
    for a in actions:
        try:
            out.update(effects(type_name, a.field, a.value))
        except CatalogError:
            out[a.field] = a.value
    return out


# ---------------------------------------------------------------- what to highlight


@dataclass(frozen=True)
class Highlight:
    """What the plan marks: a recommendation (shown or withheld) and what an accept just changed."""

    proposed: tuple[Action, ...] = ()  # the recommendation on screen, waiting for an answer
    withheld: tuple[Action, ...] = ()  # the best candidate the gate did not show
    changed: Mapping[tuple[str, str], Mapping[str, tuple[str, str]]] = field(default_factory=dict)  # device -> field -> (before, after)


# ---------------------------------------------------------------- layout


@dataclass
class Box:
    room: str
    x: float
    y: float
    w: float
    h: float
    cols: int


def _cols(w: float) -> int:
    return max(1, int((w - 2 * PAD + GAP) // (CHIP_W + GAP)))


def _min_width(n_devices: int) -> float:
    """Narrowest room for ``n_devices``: one chip column up to 4 devices, two up to 10, then three."""
    cols = 1 if n_devices <= 4 else 2 if n_devices <= 10 else 3
    return max(ROOM_MIN_W, cols * CHIP_W + (cols - 1) * GAP + 2 * PAD)


def _height(n_devices: int, cols: int) -> float:
    return HEADER + math.ceil(max(n_devices, 1) / cols) * (CHIP_H + GAP) + PAD - GAP


def _pack(rooms: Sequence[str], need: Mapping[str, float], width: float) -> list[list[str]]:
    """``rooms`` in order, cut into the fewest rows that fit ``width``, as evenly as possible
    (the widest row as narrow as it can be)."""
    if not rooms:
        return []
    best: list[list[str]] | None = None
    for k in range(1, len(rooms) + 1):
        def split(i: int, k: int) -> tuple[float, list[list[str]]] | None:
            if k == 1:
                w = sum(need[r] for r in rooms[i:])
                return (w, [list(rooms[i:])]) if w <= width or len(rooms) - i == 1 else None
            out = None
            for j in range(i + 1, len(rooms) - k + 2):
                w = sum(need[r] for r in rooms[i:j])
                if w > width and j - i > 1:
                    break
                rest = split(j, k - 1)
                if rest is not None and (out is None or max(w, rest[0]) < out[0]):
                    out = (max(w, rest[0]), [list(rooms[i:j]), *rest[1]])
            return out

        found = split(0, k)
        if found is not None:
            best = found[1]
            break
    return best or [[r] for r in rooms]


def layout(devices_per_room: Mapping[str, int], x0: float = 0.0, y0: float = 0.0, width: float = WIDTH) -> list[Box]:
    """Room boxes: day rooms on top, the hallway across the middle, night rooms below (day and
    night rooms share one row when they fit); rooms in a row share its width in proportion to
    their device counts, each at least as wide as its chips need."""
    rooms = list(devices_per_room)
    need = {r: _min_width(devices_per_room[r]) for r in rooms}
    day = [r for r in rooms if r in DAY_ROOMS]
    night = [r for r in rooms if r not in DAY_ROOMS and r != CORRIDOR]
    corridor = [[CORRIDOR]] if CORRIDOR in rooms else []
    if sum(need[r] for r in day + night) <= width:
        bands = [*([day + night] if day + night else []), *corridor]
    else:
        bands = [*_pack(day, need, width), *corridor, *_pack(night, need, width)]
    out: list[Box] = []
    y = y0
    for band in bands:
        spare = width - sum(need[r] for r in band)
        weights = [max(1.5, float(devices_per_room[r])) for r in band]
        widths = [need[r] + max(spare, 0.0) * w / sum(weights) for r, w in zip(band, weights, strict=True)]
        if spare < 0:  # one room wider than the plan: squeeze
            widths = [width * w / sum(widths) for w in widths]
        h = max(_height(devices_per_room[r], _cols(w)) for r, w in zip(band, widths, strict=True))
        x = x0
        for r, w in zip(band, widths, strict=True):
            out.append(Box(r, x, y, w, h, _cols(w)))
            x += w
        y += h
    return out


# ---------------------------------------------------------------- drawing

_ICON = {  # 20x20 glyphs centred on (0, 0), white on the state disc
    "Light": '<circle cx="0" cy="-2" r="4.5"/><path d="M-2.5 3.5h5M-2 5.5h4"/>',
    "Switch": '<rect x="-3.5" y="-6" width="7" height="12" rx="2"/><path d="M0 -3v3"/>',
    "AC": '<rect x="-6.5" y="-5" width="13" height="6" rx="1.5"/><path d="M-4 3.5v2.5M0 3.5v3M4 3.5v2.5"/>',
    "Warmer": '<path d="M-4 5c-2-3 2-5 0-9M0 5c-2-3 2-5 0-9M4 5c-2-3 2-5 0-9"/>',
    "Heater": '<path d="M-4 5c-2-3 2-5 0-9M0 5c-2-3 2-5 0-9M4 5c-2-3 2-5 0-9"/>',
    "Curtain": '<path d="M-6.5 -6h13M-5 -6c1 4 1 8 -1 12M5 -6c-1 4 -1 8 1 12M-2 -6v12M2 -6v12"/>',
    "Camera": '<rect x="-6" y="-3.5" width="8" height="7" rx="1"/><path d="M2 -1.5l4 -2v7l-4 -2z"/>',
    "Humidity": '<path d="M0 -6.5c3 4 4.5 6 4.5 8a4.5 4.5 0 0 1 -9 0c0 -2 1.5 -4 4.5 -8z"/>',
    "Air": '<circle cx="0" cy="0" r="1.5"/><path d="M0 -1.5c-1 -3 1 -5 3 -4M1.5 0.8c3 0 4 3 2 4.5M-1.5 0.8c-2 2.5 -5 1.5 -5 -1"/>',
    "Media": '<rect x="-6.5" y="-5" width="13" height="8.5" rx="1"/><path d="M-3 6h6"/>',
    "Cleaning": '<circle cx="0" cy="0" r="5.5"/><circle cx="2" cy="-2" r="1"/>',
    "Appliance": '<rect x="-5.5" y="-6" width="11" height="12" rx="1.5"/><circle cx="0" cy="1" r="3"/>',
    "Security": '<rect x="-5" y="-1" width="10" height="7" rx="1"/><path d="M-3 -1v-2.5a3 3 0 0 1 6 0v2.5"/>',
    "Kitchen": '<path d="M-5 5h10l-1 -8h-8z M-3 -3v-2h6v2"/>',
}


def _icon(category: str, x: float, y: float, colour: str) -> str:
    glyph = _ICON.get(category, '<circle cx="0" cy="0" r="3"/>')
    return (f'<g transform="translate({x:.1f},{y:.1f})"><circle r="11" fill="{colour}"/>'
            f'<g fill="none" stroke="#fff" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round">'
            f"{glyph}</g></g>")


def _text(x: float, y: float, s: str, size: int = 12, fill: str = "#222", weight: str = "normal",
          anchor: str = "start", style: str = "") -> str:
    st = f' font-style="{style}"' if style else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" font-weight="{weight}" '
            f'text-anchor="{anchor}"{st}>{escape(s)}</text>')


def _fit(s: str, width: float, size: int) -> str:
    """Cut ``s`` to about ``width`` units at font ``size`` (0.58 em per character, sans-serif)."""
    n = max(3, int(width / (0.58 * size)))
    return s if len(s) <= n else s[: n - 1] + "…"


def _sensors(r: Mapping[str, Any]) -> str:
    parts = []
    if isinstance(r.get("temperature"), (int, float)):
        parts.append(f"{r['temperature']:.1f} °C")
    if isinstance(r.get("humidity"), (int, float)):
        parts.append(f"{r['humidity']:.0f}% RH")
    if isinstance(r.get("illuminance"), (int, float)):
        parts.append(f"{r['illuminance']:.0f} lx")
    return " · ".join(parts)


def _chip(room: str, name: str, dev: Mapping[str, Any], x: float, y: float, w: float, hl: Highlight) -> str:
    t = str(dev.get("type", ""))
    state = {k: str(v) for k, v in dev.items() if k != "type"}
    now = state_text(t, state)
    cat = DEVICE_TYPES[t].category if t in DEVICE_TYPES else ""
    target = (room, name)
    prop = [a for a in hl.proposed if a.target == target]
    held = [a for a in hl.withheld if a.target == target]
    changed = hl.changed.get(target)
    kind, line2, colour2, stroke, fill, dash = "none", now, "#555", "#d5d9df", "#ffffff", ""
    if changed:
        before = {**state, **{f: b for f, (b, _) in changed.items() if b}}
        kind, line2 = "changed", f"✓ {change_text(t, before, state)}"
        colour2, stroke, fill = CHANGED, CHANGED, "#e8f7ee"
    elif prop:
        kind, line2 = "proposed", change_text(t, state, applied(t, state, prop))
        colour2, stroke, fill = PROPOSED, PROPOSED, "#fff3e6"
    elif held:
        kind, line2 = "withheld", change_text(t, state, applied(t, state, held)) + "?"
        colour2, stroke, fill, dash = WITHHELD, WITHHELD, "#f6f6f7", ' stroke-dasharray="5 4"'
    sw = 1 if kind == "none" else 2.5
    tip = f"{room_label(room)} {name} ({t}): " + ", ".join(f"{k} {v}" for k, v in state.items())
    return (f'<g class="device" data-room="{escape(room)}" data-device="{escape(name)}" data-state="{escape(now)}" '
            f'data-mark="{kind}"><title>{escape(tip)}</title>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{CHIP_H}" rx="7" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{sw}"{dash}/>'
            + _icon(cat, x + 17, y + CHIP_H / 2, mark(t, state))
            + _text(x + 34, y + 15, _fit(name.replace("_", " "), w - 40, 12), 12, "#222", "bold")
            + _text(x + 34, y + 30, _fit(line2, w - 40, 11), 11, colour2, "bold" if kind != "none" else "normal",
                    style="italic" if kind == "withheld" else "")
            + "</g>")


_PERSON = {"home": ("#2e9e5b", "awake"), "asleep": ("#2c3e73", "asleep")}


def _people(people: Mapping[str, Mapping[str, Any]], room: str, x_right: float, y: float) -> str:
    out = []
    here = [(u, p) for u, p in people.items() if p.get("room") == room and p.get("where") in _PERSON]
    for i, (u, p) in enumerate(reversed(here)):
        colour, word = _PERSON[str(p["where"])]
        cx = x_right - 14 - 26 * i
        persona = str(p.get("persona", "")).replace("_", " ")
        out.append(f'<g class="person" data-user="{escape(u)}" data-where="{escape(str(p["where"]))}">'
                   f"<title>{escape(f'{u}: {persona}, {word}')}</title>"
                   f'<circle cx="{cx:.1f}" cy="{y:.1f}" r="11" fill="{colour}"/>'
                   + _text(cx, y + 4, u[:3], 10, "#fff", "bold", "middle")
                   + (_text(cx + 9, y - 7, "z", 10, "#2c3e73", "bold") if p["where"] == "asleep" else "")
                   + "</g>")
    return "".join(out)


def legend_items() -> list[tuple[str, str]]:
    return [(ON, "on / running"), (OFF, "off / closed / docked"), (OPEN, "curtain open"), (LOCKED, "locked"),
            (UNLOCKED, "unlocked"), (ALWAYS, "always on")]


def floor_plan_svg(snapshot: Mapping[str, Any], highlight: Highlight | None = None, width: float = WIDTH) -> str:
    """The plan of ``snapshot`` (``LiveHome.snapshot()``) as one ``<svg>`` element (see the module doc)."""
    hl = highlight or Highlight()
    rooms = snapshot.get("rooms") or {}
    people = snapshot.get("people") or {}
    boxes = layout({r: len(v.get("devices") or {}) for r, v in rooms.items()}, 4, 4, width - 8)
    hot = {a.room for a in (*hl.proposed, *hl.withheld)} | {r for r, _ in hl.changed}
    body: list[str] = []
    for b in boxes:
        r = rooms[b.room]
        fill = ROOM_FILL.get(b.room, NIGHT_FILL)
        body.append(f'<g class="room" data-room="{escape(b.room)}">'
                    f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" fill="{fill}" '
                    f'stroke="#4a4f57" stroke-width="3"/>')
        if b.room in hot:
            c = CHANGED if hl.changed and b.room in {rr for rr, _ in hl.changed} else (
                PROPOSED if any(a.room == b.room for a in hl.proposed) else WITHHELD)
            body.append(f'<rect x="{b.x + 4:.1f}" y="{b.y + 4:.1f}" width="{b.w - 8:.1f}" height="{b.h - 8:.1f}" '
                        f'fill="none" stroke="{c}" stroke-width="2" stroke-dasharray="2 3" rx="4"/>')
        body.append(_text(b.x + PAD, b.y + 20, room_label(b.room).capitalize(), 14, "#1d2330", "bold"))
        n_here = sum(1 for p in people.values() if p.get("room") == b.room and p.get("where") in _PERSON)
        body.append(_text(b.x + PAD, b.y + 37, _fit(_sensors(r), b.w - 2 * PAD - 26 * n_here, 11), 11, "#5a6170"))
        body.append(_people(people, b.room, b.x + b.w - 4, b.y + 20))
        devs = list((r.get("devices") or {}).items())
        cols = max(1, min(b.cols, len(devs)))
        cw = min(CHIP_MAX_W, (b.w - 2 * PAD - (cols - 1) * GAP) / cols)
        for i, (name, dev) in enumerate(devs):
            cx = b.x + PAD + (i % cols) * (cw + GAP)
            cy = b.y + HEADER + (i // cols) * (CHIP_H + GAP)
            body.append(_chip(b.room, name, dev, cx, cy, cw, hl))
        if not devs:
            body.append(_text(b.x + PAD, b.y + HEADER + 14, "no devices", 11, "#8a8f98", style="italic"))
        body.append("</g>")
    bottom = max((b.y + b.h for b in boxes), default=4.0)
    body.append(f'<rect x="2" y="2" width="{width - 4:.1f}" height="{bottom - 0:.1f}" fill="none" stroke="#2b2f36" '
                f'stroke-width="5"/>')
    # legend (state colours, then highlights) and the people away
    y = bottom + 22
    x = 6.0
    items = [("disc", c, label) for c, label in legend_items()]
    items += [("box", PROPOSED, "recommended: now → proposed"), ("box", WITHHELD, "withheld by the gate"),
              ("box", CHANGED, "just changed (accepted)")]
    for shape, colour, label in items:
        need = 24 + 6.8 * len(label)
        if x + need > width:
            x, y = 6.0, y + 20
        if shape == "disc":
            body.append(f'<circle cx="{x + 7:.1f}" cy="{y - 4:.1f}" r="7" fill="{colour}"/>')
        else:
            body.append(f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="16" height="14" rx="3" fill="none" '
                        f'stroke="{colour}" stroke-width="2.5"/>')
        body.append(_text(x + 20, y, label, 12, "#333"))
        x += need + 16
    away = [f"{u} ({str(p.get('persona', '')).replace('_', ' ')})" for u, p in people.items() if p.get("where") == "away"]
    y2 = y + 22
    people_line = ("Away: " + ", ".join(away) + ".") if away else "Everyone is at home."
    body.append(_text(6, y2, people_line + "  People in rooms: green disc awake, dark blue asleep.", 12, "#333"))
    height = y2 + 8
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="floor-plan" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'width="100%" style="max-width:{width:.0f}px;height:auto" font-family="sans-serif" role="img" '
            f'aria-label="Floor plan of home {escape(str(snapshot.get("home_id", "")))}">\n' + "".join(body) + "</svg>")

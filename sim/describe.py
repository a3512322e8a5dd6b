"""Natural-language descriptions of operations: several phrasings per field, always naming the room.

``describe(actions, style)`` turns an ordered action list into one sentence such as
"open the bedroom curtains and turn on the bedroom light". ``style`` (an integer the caller
draws once per operation) picks the phrasing, so the description is as reproducible as the
rest of the simulation. Every field kind has at least three phrasings (``N_STYLES``).
The text obeys the grammar's description rule: no brackets, no angle brackets.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from sim.catalog import device_type, room_label, type_of_device_name
from sim.records import Action

N_STYLES = 3

#: Spoken name of each device type (the catalogue id is not always what people say).
DEVICE_LABELS: dict[str, str] = {
    "light": "light", "wall_switch": "wall switch", "smart_plug": "smart plug", "ac": "air conditioner",
    "bath_warmer": "bath heater", "curtain": "curtains", "camera": "camera", "humidifier": "humidifier",
    "dehumidifier": "dehumidifier", "air_purifier": "air purifier", "fan": "fan", "heater": "heater",
    "water_heater": "water heater", "tv": "TV", "speaker": "speaker", "robot_vacuum": "robot vacuum",
    "washer": "washing machine", "dishwasher": "dishwasher", "lock": "door lock", "kettle": "kettle",
    "fridge": "fridge", "rice_cooker": "rice cooker",
}

FIELD_LABELS: dict[str, str] = {
    "brightness": "brightness", "color_temp": "colour temperature", "target_temperature": "temperature",
    "fan_speed": "fan speed", "target_humidity": "humidity", "speed": "speed", "volume": "volume",
    "position": "position", "suction": "suction", "program": "programme", "mode": "mode",
}

# (room label, device label) -> phrase; one tuple of N_STYLES templates per kind of setting
_POWER_ON = ("turn on the {r} {d}", "switch the {d} in the {r} on", "{r} {d} on please")
_POWER_OFF = ("turn off the {r} {d}", "switch the {d} in the {r} off", "{r} {d} off please")
_SET = ("set the {r} {d} {f} to {v}", "change the {f} of the {d} in the {r} to {v}", "{r} {d} {f} {v}")
_SPECIAL: dict[tuple[str, str, str], tuple[str, ...]] = {
    ("curtain", "action", "open"): ("open the {r} curtains", "draw the curtains in the {r} open",
                                    "let the light into the {r}"),
    ("curtain", "action", "close"): ("close the {r} curtains", "draw the curtains in the {r}",
                                     "shut the {r} curtains"),
    ("curtain", "action", "stop"): ("stop the {r} curtains", "halt the curtains in the {r}", "{r} curtains stop"),
    ("lock", "lock", "locked"): ("lock the {r} door", "lock up the door in the {r}", "{r} door locked"),
    ("lock", "lock", "unlocked"): ("unlock the {r} door", "open the lock in the {r}", "{r} door unlocked"),
    ("robot_vacuum", "command", "start"): ("start the robot vacuum in the {r}", "vacuum the {r}",
                                            "{r} robot vacuum go"),
    ("robot_vacuum", "command", "return_to_base"): ("send the {r} robot vacuum home",
                                                     "dock the robot vacuum in the {r}", "{r} vacuum back to base"),
    ("robot_vacuum", "command", "pause"): ("pause the {r} robot vacuum", "hold the vacuum in the {r}",
                                            "{r} vacuum pause"),
    ("speaker", "playback", "play"): ("play music on the {r} speaker", "start the speaker in the {r}",
                                      "{r} music on"),
    ("speaker", "playback", "pause"): ("pause the {r} speaker", "pause the music in the {r}", "{r} music pause"),
    ("speaker", "playback", "stop"): ("stop the {r} speaker", "stop the music in the {r}", "{r} music off"),
}
_JOIN = (" and ", ", then ", " and ")


def device_label(device: str) -> str:
    """Spoken name of a device id (``light_2`` -> ``light 2``, ``ac`` -> ``air conditioner``)."""
    t = type_of_device_name(device)
    if t is None:
        return device.replace("_", " ")
    label = DEVICE_LABELS.get(t, t.replace("_", " "))
    suffix = device[len(t):].lstrip("_")
    return f"{label} {suffix}" if suffix else label


@lru_cache(maxsize=8192)
def phrase(room: str, device: str, field: str, value: str, style: int) -> str:
    """One action as words, in phrasing ``style`` (0..N_STYLES-1)."""
    style %= N_STYLES
    r, d = room_label(room), device_label(device)
    t = type_of_device_name(device) or ""
    special = _SPECIAL.get((t, field, value))
    if special is not None:
        return special[style].format(r=r, d=d)
    if field == "power" and value in ("on", "off"):
        return (_POWER_ON if value == "on" else _POWER_OFF)[style].format(r=r, d=d)
    unit = ""
    if t:
        spec = device_type(t).fields.get(field)
        if spec is not None and spec.is_numeric:
            unit = {"C": " degrees", "%": " percent", "K": " K"}.get(spec.unit, "")
    f = FIELD_LABELS.get(field, field.replace("_", " "))
    return _SET[style].format(r=r, d=d, f=f, v=value.replace("_", " ") + unit)


def describe(actions: Sequence[Action], style: int = 0) -> str:
    """A one-sentence description of an ordered action list, naming each room."""
    style %= N_STYLES
    parts = [phrase(a.room, a.device, a.field, a.value, style) for a in actions]
    text = _JOIN[style].join(parts)
    return text[:1].upper() + text[1:]

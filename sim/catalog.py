"""The device catalogue: device types, their fields and value spaces, rooms and indicators.

Pure data plus small pure functions. Everything that knows what a device *is* reads it here:
the simulator (what people can operate), the grammar (what a legal action looks like), loose
matching (``sim.matching``) and the metrics ("opposite" actions), the constrained decoder (value
spaces) and the Home Assistant bridge (service calls).

Values travel as strings (the canonical grammar is text). Numeric fields have a range, a step
and a unit; `format_value` gives the one canonical spelling of a number (``26``, ``22.5``).

Equivalence (paper App. B, LM-F1 loose match): every (field, value) has *effects*, the set of
device-state assertions it makes. Setting an AC's target temperature asserts ``power=on``;
a light's brightness asserts ``power=on``; a curtain's ``action=open`` is ``position=100``.
Two settings of one device are functionally equivalent when either one's effects contain the
other's primary assertion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class CatalogError(ValueError):
    """An action or name that the catalogue does not allow; the message names the allowed set."""


# ---------------------------------------------------------------- fields and value spaces


@dataclass(frozen=True)
class HAMapping:
    """How a field maps onto a Home Assistant service call.

    ``service`` is one service for every value, or a mapping value -> service (``on`` ->
    ``turn_on``). ``attribute`` names the service-data key that carries the value (None when
    the service itself says everything); numeric values are multiplied by ``scale`` first
    (``media_player.volume_set`` takes 0-1, the catalogue 0-100).
    """

    domain: str
    service: str | Mapping[str, str]
    attribute: str | None = None
    scale: float = 1.0

    def service_for(self, value: str) -> str:
        if isinstance(self.service, str):
            return self.service
        return self.service[value]


@dataclass(frozen=True)
class FieldSpec:
    """One operable field of a device type.

    An enum field has ``values``; a numeric field has ``low``, ``high``, ``step`` and ``unit``.
    ``implies_on``: setting this field turns the device on (paper App. B: "Set bedroom AC to 26"
    is "Turn on bedroom AC").
    """

    name: str
    ha: HAMapping
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    unit: str = ""
    default: str = ""
    implies_on: bool = False

    @property
    def is_numeric(self) -> bool:
        return self.low is not None

    def __post_init__(self) -> None:
        if self.is_numeric:
            if self.high is None or self.step is None or self.step <= 0 or self.high < self.low:
                raise CatalogError(f"field {self.name!r}: numeric range needs low <= high, step > 0")
        elif not self.values:
            raise CatalogError(f"field {self.name!r}: give enum values or a numeric range")
        if self.default and not self.allows(self.default):
            raise CatalogError(f"field {self.name!r}: default {self.default!r} not allowed")

    def grid(self) -> tuple[str, ...]:
        """Every legal value as its canonical string (numeric: low, low+step, ..., high)."""
        if not self.is_numeric:
            return self.values
        n = int(round((self.high - self.low) / self.step))
        return tuple(format_value(self.low + i * self.step) for i in range(n + 1))

    def allows(self, value: str) -> bool:
        if not self.is_numeric:
            return value in self.values
        try:
            x = float(value)
        except ValueError:
            return False
        if not math.isfinite(x) or x < self.low - 1e-9 or x > self.high + 1e-9:
            return False
        k = (x - self.low) / self.step
        return abs(k - round(k)) < 1e-6 and format_value(x) == value

    def describe_allowed(self) -> str:
        if self.is_numeric:
            return f"{format_value(self.low)}..{format_value(self.high)} step {format_value(self.step)} {self.unit}".strip()
        return ", ".join(self.values)


def format_value(x: float) -> str:
    """Canonical spelling of a number: integers without a point, else one decimal (``22.5``)."""
    s = f"{float(x):.1f}"  # correctly rounded, same as round(x, 1); hot in the simulator
    if s.endswith(".0"):
        s = s[:-2]
    return "0" if s == "-0" else s


# ---------------------------------------------------------------- device types


@dataclass(frozen=True)
class DeviceType:
    """A kind of device: its fields and the rules the metrics, simulator and decoder share.

    ``category`` is the paper's sub-dataset label (Light, Switch, Camera, Warmer, AC, ...).
    ``inverse_pairs`` list (field, value) settings that undo each other ("opposite" in the Rule
    score, "conflicting toggles" in the simulator and the DPO negatives). ``aliases`` list
    settings that mean the same state (curtain ``action=open`` is ``position=100``).
    ``pluggable``: the appliance may sit on a smart plug that must be on first.
    ``high_frequency``: toggled often, so the conflict window is 2 min instead of 10 (paper Sec. 3.2).
    """

    name: str
    category: str
    fields: Mapping[str, FieldSpec]
    inverse_pairs: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = ()
    aliases: tuple[tuple[tuple[str, str], tuple[str, str]], ...] = ()
    high_frequency: bool = False
    pluggable: bool = False
    description: str = ""

    def field(self, name: str) -> FieldSpec:
        try:
            return self.fields[name]
        except KeyError:
            raise CatalogError(
                f"device type {self.name!r} has no field {name!r}; fields: {', '.join(self.fields)}"
            ) from None


def _power(domain: str = "switch", default: str = "off") -> FieldSpec:
    return FieldSpec("power", HAMapping(domain, {"on": "turn_on", "off": "turn_off"}), ("on", "off"), default=default)


def _onoff(name: str, domain: str, on: str, off: str) -> FieldSpec:
    return FieldSpec(name, HAMapping(domain, {"on": on, "off": off}), ("on", "off"), default="off")


def _num(name: str, domain: str, service: str, attribute: str, low: float, high: float, step: float,
         unit: str, default: float, scale: float = 1.0, implies_on: bool = True) -> FieldSpec:
    return FieldSpec(name, HAMapping(domain, service, attribute, scale), low=low, high=high, step=step,
                     unit=unit, default=format_value(default), implies_on=implies_on)


def _enum(name: str, domain: str, service: str, attribute: str | None, values: tuple[str, ...],
          default: str, implies_on: bool = True) -> FieldSpec:
    return FieldSpec(name, HAMapping(domain, service, attribute), values, default=default, implies_on=implies_on)


def _type(name: str, category: str, *fields: FieldSpec, **kw) -> DeviceType:
    return DeviceType(name, category, MappingProxyType({f.name: f for f in fields}), **kw)


_ON_OFF = ((("power", "on"), ("power", "off")),)

DEVICE_TYPES: Mapping[str, DeviceType] = MappingProxyType({t.name: t for t in (
    _type("light", "Light", _power("light"),
          _num("brightness", "light", "turn_on", "brightness_pct", 1, 100, 1, "%", 100),
          _num("color_temp", "light", "turn_on", "color_temp_kelvin", 2700, 6500, 100, "K", 4000),
          inverse_pairs=_ON_OFF, high_frequency=True, description="ceiling light or lamp"),
    _type("wall_switch", "Switch", _power("switch"), inverse_pairs=_ON_OFF, high_frequency=True,
          description="wall switch driving a light circuit"),
    _type("smart_plug", "Switch", _power("switch"), inverse_pairs=_ON_OFF,
          description="smart plug; appliances on it need it on first"),
    _type("ac", "AC", _power("climate"),
          _enum("mode", "climate", "set_hvac_mode", "hvac_mode", ("cool", "heat", "dry", "fan_only", "auto"), "cool"),
          _num("target_temperature", "climate", "set_temperature", "temperature", 16, 30, 1, "C", 26),
          _enum("fan_speed", "climate", "set_fan_mode", "fan_mode", ("auto", "low", "medium", "high"), "auto"),
          inverse_pairs=_ON_OFF, pluggable=True, description="air conditioner"),
    _type("bath_warmer", "Warmer", _power("climate"),
          _enum("mode", "climate", "set_hvac_mode", "hvac_mode", ("heat", "fan_only", "dry"), "heat"),
          _num("target_temperature", "climate", "set_temperature", "temperature", 20, 40, 1, "C", 32),
          inverse_pairs=_ON_OFF, description="bathroom heater / ventilator (Yuba)"),
    _type("curtain", "Curtain",
          _enum("action", "cover", "", None, ("open", "close", "stop"), "stop", implies_on=False),
          _num("position", "cover", "set_cover_position", "position", 0, 100, 1, "%", 0, implies_on=False),
          inverse_pairs=((("action", "open"), ("action", "close")), (("position", "100"), ("position", "0"))),
          aliases=((("action", "open"), ("position", "100")), (("action", "close"), ("position", "0"))),
          description="motorised curtain"),
    _type("camera", "Camera", _power("camera"),
          _onoff("motion_detection", "camera", "enable_motion_detection", "disable_motion_detection"),
          inverse_pairs=(*_ON_OFF, (("motion_detection", "on"), ("motion_detection", "off"))),
          description="security camera"),
    _type("humidifier", "Humidity", _power("humidifier"),
          _num("target_humidity", "humidifier", "set_humidity", "humidity", 30, 80, 5, "%", 50),
          inverse_pairs=_ON_OFF, pluggable=True),
    _type("dehumidifier", "Humidity", _power("humidifier"),
          _num("target_humidity", "humidifier", "set_humidity", "humidity", 30, 80, 5, "%", 50),
          inverse_pairs=_ON_OFF, pluggable=True),
    _type("air_purifier", "Air", _power("fan"),
          _enum("mode", "fan", "set_preset_mode", "preset_mode", ("auto", "sleep", "favorite"), "auto"),
          inverse_pairs=_ON_OFF, pluggable=True),
    _type("fan", "Air", _power("fan"),
          _num("speed", "fan", "set_percentage", "percentage", 10, 100, 10, "%", 50),
          _onoff("oscillate", "fan", "oscillate", "oscillate"),
          inverse_pairs=_ON_OFF, pluggable=True),
    _type("heater", "Heater", _power("climate"),
          _num("target_temperature", "climate", "set_temperature", "temperature", 10, 30, 1, "C", 22),
          inverse_pairs=_ON_OFF, pluggable=True),
    _type("water_heater", "Heater", _power("water_heater"),
          _num("target_temperature", "water_heater", "set_temperature", "temperature", 35, 75, 1, "C", 50),
          inverse_pairs=_ON_OFF),
    _type("tv", "Media", _power("media_player"),
          _num("volume", "media_player", "volume_set", "volume_level", 0, 100, 1, "%", 20, scale=0.01),
          inverse_pairs=_ON_OFF, pluggable=True),
    _type("speaker", "Media", _power("media_player"),
          _num("volume", "media_player", "volume_set", "volume_level", 0, 100, 1, "%", 30, scale=0.01),
          _enum("playback", "media_player", "", None, ("play", "pause", "stop"), "stop"),
          inverse_pairs=(*_ON_OFF, (("playback", "play"), ("playback", "pause")))),
    _type("robot_vacuum", "Cleaning",
          _enum("command", "vacuum", "", None, ("start", "pause", "return_to_base"), "return_to_base", implies_on=False),
          _enum("suction", "vacuum", "set_fan_speed", "fan_speed", ("quiet", "standard", "strong", "max"), "standard",
                implies_on=False),
          inverse_pairs=((("command", "start"), ("command", "return_to_base")),)),
    _type("washer", "Appliance", _power("switch"),
          _enum("program", "select", "select_option", "option", ("cotton", "quick", "delicate", "wool"), "cotton"),
          inverse_pairs=_ON_OFF),
    _type("dishwasher", "Appliance", _power("switch"),
          _enum("program", "select", "select_option", "option", ("eco", "intensive", "quick"), "eco"),
          inverse_pairs=_ON_OFF),
    _type("lock", "Security",
          _enum("lock", "lock", "", None, ("locked", "unlocked"), "locked", implies_on=False),
          inverse_pairs=((("lock", "locked"), ("lock", "unlocked")),)),
    _type("kettle", "Kitchen", _power("water_heater"),
          _num("target_temperature", "water_heater", "set_temperature", "temperature", 40, 100, 5, "C", 100),
          inverse_pairs=_ON_OFF),
    _type("fridge", "Kitchen",
          _num("target_temperature", "number", "set_value", "value", 2, 8, 1, "C", 4, implies_on=False),
          _enum("mode", "select", "select_option", "option", ("normal", "eco", "quick_cool"), "normal",
                implies_on=False)),
    _type("rice_cooker", "Kitchen", _power("switch"),
          _enum("mode", "select", "select_option", "option", ("cook", "keep_warm", "porridge"), "cook"),
          inverse_pairs=_ON_OFF, pluggable=True),
)})

# Per-value services for enum fields whose HA service depends on the value.
_VALUE_SERVICES: Mapping[tuple[str, str], Mapping[str, str]] = MappingProxyType({
    ("curtain", "action"): {"open": "open_cover", "close": "close_cover", "stop": "stop_cover"},
    ("speaker", "playback"): {"play": "media_play", "pause": "media_pause", "stop": "media_stop"},
    ("robot_vacuum", "command"): {"start": "start", "pause": "pause", "return_to_base": "return_to_base"},
    ("lock", "lock"): {"locked": "lock", "unlocked": "unlock"},
})

#: Categories the paper's Table 2 breaks results down by (plus Whole).
REPORT_CATEGORIES: tuple[str, ...] = ("Light", "Switch", "Camera", "Warmer", "AC")

#: Device-count buckets of the paper's Table 2.
DEVICE_BUCKETS: tuple[str, ...] = ("1-5", "6-10", "11-20", "20+")

CONFLICT_WINDOW_S = 600  # 10 min after a manual "off", "on" is unwelcome (paper Sec. 3.2)
CONFLICT_WINDOW_HF_S = 120  # 2 min for high-frequency devices (lights, switches)


# ---------------------------------------------------------------- rooms and indicators

ROOMS: Mapping[str, str] = MappingProxyType({
    "living_room": "living room", "bedroom": "bedroom", "master_bedroom": "master bedroom",
    "kids_room": "kids' room", "guest_room": "guest room", "study": "study", "kitchen": "kitchen",
    "dining_room": "dining room", "bathroom": "bathroom", "hallway": "hallway",
    "balcony": "balcony", "laundry": "laundry room", "garage": "garage",
})
OUTDOOR = "outdoor"

#: Environment indicators: name -> (unit, low, high). Outdoor also has ``weather``.
INDICATORS: Mapping[str, tuple[str, float, float]] = MappingProxyType({
    "temperature": ("C", -30.0, 50.0),
    "humidity": ("%", 0.0, 100.0),
    "illuminance": ("lux", 0.0, 100000.0),
    "occupancy": ("people", 0.0, 10.0),
})
WEATHER: tuple[str, ...] = ("sunny", "cloudy", "rain", "snow")


# ---------------------------------------------------------------- functions over the catalogue


def device_type(name: str) -> DeviceType:
    try:
        return DEVICE_TYPES[name]
    except KeyError:
        raise CatalogError(f"unknown device type {name!r}; known: {', '.join(DEVICE_TYPES)}") from None


def room_label(room: str) -> str:
    """Natural-language name of a room id (``living_room`` -> ``living room``)."""
    return ROOMS.get(room, room.replace("_", " "))


def validate(type_name: str, field_name: str, value: str) -> None:
    """Raise CatalogError naming what is wrong unless ``value`` is legal for the field."""
    spec = device_type(type_name).field(field_name)
    if not spec.allows(value):
        raise CatalogError(
            f"value {value!r} not allowed for {type_name}.{field_name}; allowed: {spec.describe_allowed()}"
        )


def is_legal(type_name: str, field_name: str, value: str) -> bool:
    try:
        validate(type_name, field_name, value)
    except CatalogError:
        return False
    return True


def conflict_window_s(type_name: str) -> int:
    """Seconds after a manual operation during which its inverse is unwelcome."""
    return CONFLICT_WINDOW_HF_S if device_type(type_name).high_frequency else CONFLICT_WINDOW_S


def inverse(type_name: str, field_name: str, value: str) -> tuple[str, str] | None:
    """The (field, value) that undoes this setting, or None (numeric settings of a device with
    a power field are undone by ``power=off``)."""
    dt = device_type(type_name)
    fv = (field_name, value)
    for a, b in dt.inverse_pairs:
        if fv == a:
            return b
        if fv == b:
            return a
    spec = dt.fields.get(field_name)
    if spec is not None and spec.implies_on and "power" in dt.fields:
        return ("power", "off")
    return None


def is_inverse(type_name: str, a: tuple[str, str], b: tuple[str, str]) -> bool:
    """True when setting ``a`` undoes ``b`` or the other way round (power off vs brightness 50)."""
    return inverse(type_name, *a) == b or inverse(type_name, *b) == a


def _alias(dt: DeviceType, fv: tuple[str, str]) -> tuple[str, str] | None:
    for a, b in dt.aliases:
        if fv == a:
            return b
        if fv == b:
            return a
    return None


def effects(type_name: str, field_name: str, value: str) -> frozenset[tuple[str, str]]:
    """Device-state assertions made by a setting: itself, its alias, and power=on if implied."""
    dt = device_type(type_name)
    out = {(field_name, value)}
    alias = _alias(dt, (field_name, value))
    if alias is not None:
        out.add(alias)
    spec = dt.fields.get(field_name)
    if spec is not None and spec.implies_on and "power" in dt.fields:
        out.add(("power", "on"))
    return frozenset(out)


def functionally_equivalent(type_name: str, a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Paper App. B: "Turn on bedroom AC" ~ "Set bedroom AC to 26"; curtain open ~ position 100."""
    if a == b:
        return True
    ea, eb = effects(type_name, *a), effects(type_name, *b)
    return a in eb or b in ea or bool(_alias(device_type(type_name), a) in eb)


def numeric_close(type_name: str, a: tuple[str, str], b: tuple[str, str], rel_tol: float = 0.2) -> bool:
    """Same numeric field with relative error |a-b|/|b| <= rel_tol (paper: 20%; b is the label)."""
    if a[0] != b[0]:
        return False
    spec = device_type(type_name).fields.get(a[0])
    if spec is None or not spec.is_numeric:
        return False
    try:
        x, y = float(a[1]), float(b[1])
    except ValueError:
        return False
    if y == 0:
        return x == 0
    return abs(x - y) / abs(y) <= rel_tol + 1e-12


@dataclass(frozen=True)
class ServiceCall:
    """A Home Assistant service call: ``domain.service`` with ``data``."""

    domain: str
    service: str
    data: Mapping[str, object] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.domain}.{self.service}"


def ha_service_call(type_name: str, field_name: str, value: str, entity_id: str) -> ServiceCall:
    """The Home Assistant service call that performs this setting on ``entity_id``."""
    validate(type_name, field_name, value)
    spec = device_type(type_name).field(field_name)
    ha = spec.ha
    per_value = _VALUE_SERVICES.get((type_name, field_name))
    service = per_value[value] if per_value is not None else ha.service_for(value)
    data: dict[str, object] = {"entity_id": entity_id}
    if ha.attribute is not None and per_value is None and not isinstance(ha.service, Mapping):
        if spec.is_numeric:
            x = float(value) * ha.scale
            data[ha.attribute] = int(x) if x == int(x) and ha.scale == 1.0 else round(x, 4)
        else:
            data[ha.attribute] = value
    return ServiceCall(ha.domain, service, MappingProxyType(data))


def device_bucket(n_devices: int) -> str:
    """The paper's device-count bucket (Table 2): 1-5, 6-10, 11-20, 20+."""
    if n_devices < 1:
        raise CatalogError(f"a home needs at least one device, got {n_devices}")
    if n_devices <= 5:
        return "1-5"
    if n_devices <= 10:
        return "6-10"
    if n_devices <= 20:
        return "11-20"
    return "20+"


def type_of_device_name(device: str) -> str | None:
    """Device type from a simulator-style device name (``light_2`` -> ``light``), or None."""
    if device in DEVICE_TYPES:
        return device
    base, _, suffix = device.rpartition("_")
    if suffix.isdigit() and base in DEVICE_TYPES:
        return base
    return None

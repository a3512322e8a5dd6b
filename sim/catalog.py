"""The device catalogue: device types, their fields and value spaces, rooms and indicators.

Pure data plus small pure functions. Everything that knows what a device *is* reads it here:
the simulator (what people can operate), the grammar (what a legal action looks like), loose
matching (``sim.matching``) and the metrics ("opposite" actions), the constrained decoder (value
spaces) and the Home Assistant bridge: each field's ``HAMapping`` says which service call performs a
setting (``ha_service_call``, on the entity ``ha_entity_id`` names) and how a call parses back
(``actions_from_ha_call``); ``sim.ha_export`` renders whole operations, ``sim.dataset.ha`` imports.

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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType


class CatalogError(ValueError):
    """An action or name that the catalogue does not allow; the message names the allowed set."""


# ---------------------------------------------------------------- fields and value spaces


@dataclass(frozen=True)
class HAMapping:
    """How a field maps onto a Home Assistant service call (and back: ``actions_from_ha_call``).

    ``service`` is one service for every value, or a mapping value -> service (``on`` ->
    ``turn_on``). ``attribute`` names the service-data key that carries the value (None when
    the service itself says everything); numeric values are multiplied by ``scale`` first
    (``media_player.volume_set`` takes 0-1, the catalogue 0-100); ``values`` maps an enum value to
    the attribute's value when they differ (a fan's ``oscillate=on`` is ``oscillating: true``).
    ``entity``: "" when the field is set on the device's own entity; else HA models the field as
    an entity of its own in ``domain`` (a washer's program is a ``select``, a fridge's temperature a
    ``number``), whose object id is the device's followed by ``_<entity>`` (``ha_entity_id``).
    """

    domain: str
    service: str | Mapping[str, str]
    attribute: str | None = None
    scale: float = 1.0
    values: Mapping[str, object] | None = None
    entity: str = ""

    def service_for(self, value: str) -> str:
        if isinstance(self.service, str):
            return self.service
        return self.service[value]

    def data_for(self, value: str, numeric: bool) -> dict[str, object]:
        """The service data that carries ``value`` (empty when the service alone says it)."""
        if self.attribute is None:
            return {}
        if self.values is not None:
            return {self.attribute: self.values[value]}
        if numeric:
            x = float(value) * self.scale
            return {self.attribute: int(x) if x == int(x) and self.scale == 1.0 else round(x, 4)}
        return {self.attribute: value}


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


def _onoff(name: str, ha: HAMapping) -> FieldSpec:
    return FieldSpec(name, ha, ("on", "off"), default="off")


def _num(name: str, domain: str, service: str, attribute: str, low: float, high: float, step: float,
         unit: str, default: float, scale: float = 1.0, implies_on: bool = True, entity: str = "") -> FieldSpec:
    return FieldSpec(name, HAMapping(domain, service, attribute, scale, entity=entity), low=low, high=high, step=step,
                     unit=unit, default=format_value(default), implies_on=implies_on)


def _enum(name: str, domain: str, service: str | Mapping[str, str], attribute: str | None, values: tuple[str, ...],
          default: str, implies_on: bool = True, entity: str = "") -> FieldSpec:
    return FieldSpec(name, HAMapping(domain, service, attribute, entity=entity), values, default=default,
                     implies_on=implies_on)


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
          _enum("action", "cover", {"open": "open_cover", "close": "close_cover", "stop": "stop_cover"}, None,
                ("open", "close", "stop"), "stop", implies_on=False),
          _num("position", "cover", "set_cover_position", "position", 0, 100, 1, "%", 0, implies_on=False),
          inverse_pairs=((("action", "open"), ("action", "close")), (("position", "100"), ("position", "0"))),
          aliases=((("action", "open"), ("position", "100")), (("action", "close"), ("position", "0"))),
          description="motorised curtain"),
    _type("camera", "Camera", _power("camera"),
          _onoff("motion_detection", HAMapping("camera", {"on": "enable_motion_detection",
                                                          "off": "disable_motion_detection"})),
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
          _onoff("oscillate", HAMapping("fan", "oscillate", "oscillating", values={"on": True, "off": False})),
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
          _enum("playback", "media_player", {"play": "media_play", "pause": "media_pause", "stop": "media_stop"}, None,
                ("play", "pause", "stop"), "stop"),
          inverse_pairs=(*_ON_OFF, (("playback", "play"), ("playback", "pause")))),
    _type("robot_vacuum", "Cleaning",
          _enum("command", "vacuum", {"start": "start", "pause": "pause", "return_to_base": "return_to_base"}, None,
                ("start", "pause", "return_to_base"), "return_to_base", implies_on=False),
          _enum("suction", "vacuum", "set_fan_speed", "fan_speed", ("quiet", "standard", "strong", "max"), "standard",
                implies_on=False),
          inverse_pairs=((("command", "start"), ("command", "return_to_base")),)),
    _type("washer", "Appliance", _power("switch"),
          _enum("program", "select", "select_option", "option", ("cotton", "quick", "delicate", "wool"), "cotton",
                entity="program"),
          inverse_pairs=_ON_OFF),
    _type("dishwasher", "Appliance", _power("switch"),
          _enum("program", "select", "select_option", "option", ("eco", "intensive", "quick"), "eco", entity="program"),
          inverse_pairs=_ON_OFF),
    _type("lock", "Security",
          _enum("lock", "lock", {"locked": "lock", "unlocked": "unlock"}, None, ("locked", "unlocked"), "locked",
                implies_on=False),
          inverse_pairs=((("lock", "locked"), ("lock", "unlocked")),)),
    _type("kettle", "Kitchen", _power("water_heater"),
          _num("target_temperature", "water_heater", "set_temperature", "temperature", 40, 100, 5, "C", 100),
          inverse_pairs=_ON_OFF),
    _type("fridge", "Kitchen",
          _num("target_temperature", "number", "set_value", "value", 2, 8, 1, "C", 4, implies_on=False,
               entity="target_temperature"),
          _enum("mode", "select", "select_option", "option", ("normal", "eco", "quick_cool"), "normal",
                implies_on=False, entity="mode")),
    _type("rice_cooker", "Kitchen", _power("switch"),
          _enum("mode", "select", "select_option", "option", ("cook", "keep_warm", "porridge"), "cook", entity="mode"),
          inverse_pairs=_ON_OFF, pluggable=True),
)})

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


# ---------------------------------------------------------------- Home Assistant service calls

#: HA's generic services (any entity): a ``power`` field whose device sits on an entity of another
#: domain (an imported ``switch.kettle`` that drives a kettle) is switched with these.
HA_GENERIC = "homeassistant"
_SLUG = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class ServiceCall:
    """A Home Assistant service call: ``domain.service`` on ``entity_id`` with service ``data``.

    ``to_json`` is the call as HA's REST API and scripts write it: ``{"service": "light.turn_on",
    "target": {"entity_id": "light.bedroom_light"}, "data": {"brightness_pct": 60}}``.
    """

    domain: str
    service: str
    entity_id: str
    data: Mapping[str, object] = field(default_factory=dict)  # without the target

    @property
    def name(self) -> str:
        return f"{self.domain}.{self.service}"

    def to_json(self) -> dict[str, object]:
        return {"service": self.name, "target": {"entity_id": self.entity_id}, "data": dict(self.data)}

    @classmethod
    def from_json(cls, obj: Mapping[str, object]) -> ServiceCall:
        """A call as ``to_json`` writes it; also HA's ``action:`` key (2024.8+) and an ``entity_id``
        inside ``data`` (the older form). ``CatalogError`` naming what is missing otherwise."""
        name = obj.get("service", obj.get("action"))
        if not isinstance(name, str) or name.count(".") != 1:
            raise CatalogError(f"a service call needs 'service': 'domain.service', got {name!r}")
        data = dict(obj.get("data") or {})  # type: ignore[call-overload]
        target = obj.get("target") or {}
        entity = target.get("entity_id") if isinstance(target, Mapping) else None
        entity = entity if entity is not None else data.pop("entity_id", None)
        data.pop("entity_id", None)
        if isinstance(entity, list) and len(entity) == 1:
            entity = entity[0]
        if not isinstance(entity, str) or "." not in entity:
            raise CatalogError(f"service call {name}: needs one target entity_id 'domain.object_id', got {entity!r}")
        domain, service = name.split(".")
        return cls(domain, service, entity, MappingProxyType(data))


def ha_slug(text: str) -> str:
    """``text`` as an HA object id: lower case, runs of other characters than ``a-z0-9_`` as ``_``."""
    return _SLUG.sub("_", text.lower()).strip("_") or "device"


def _is_power(spec: FieldSpec) -> bool:
    return spec.name == "power" and set(spec.values) == {"on", "off"}


def ha_entity_id(type_name: str, field_name: str, room: str, device: str, known: Sequence[str] = ()) -> str:
    """The entity a setting's service call targets.

    ``known``: the device's real entity ids (``homepilot import-ha`` records them): the one in the
    field's HA domain (of a field on its own entity, the one whose object id ends in ``_<entity>``
    when there are several); for ``power`` with none in that domain, the device's first (switched
    with ``homeassistant.turn_on``/``turn_off``); else a sibling of the first named after it
    (``select.<object id>_program``). Without real ids (synthetic homes, CSV imports) the id is
    derived: ``<domain>.<room>_<device>`` (plus ``_<entity>``), e.g. ``light.bedroom_light_2``.
    """
    spec = device_type(type_name).field(field_name)
    ha = spec.ha
    suffix = f"_{ha.entity}" if ha.entity else ""
    same = [e for e in known if e.partition(".")[0] == ha.domain]
    if same:
        return next((e for e in same if suffix and e.endswith(suffix)), same[0])
    if known and _is_power(spec):
        return known[0]
    base = known[0].partition(".")[2] if known else ha_slug(f"{room}_{device}")
    return f"{ha.domain}.{base}{suffix}"


def ha_service_call(type_name: str, field_name: str, value: str, entity_id: str) -> ServiceCall:
    """The Home Assistant service call that performs this setting on ``entity_id`` (a ``power``
    setting on an entity of another domain uses ``homeassistant.turn_on``/``turn_off``)."""
    validate(type_name, field_name, value)
    spec = device_type(type_name).field(field_name)
    ha = spec.ha
    if entity_id.partition(".")[0] != ha.domain and _is_power(spec):
        return ServiceCall(HA_GENERIC, ha.service_for(value), entity_id)
    return ServiceCall(ha.domain, ha.service_for(value), entity_id,
                       MappingProxyType(ha.data_for(value, spec.is_numeric)))


def _from_data(spec: FieldSpec, raw: object) -> str | None:
    """The catalogue value an attribute's value stands for (None when none does)."""
    ha = spec.ha
    if ha.values is not None:
        return next((v for v, x in ha.values.items() if x == raw and type(x) is type(raw)), None)
    if spec.is_numeric:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return None
        return format_value(float(raw) / ha.scale)
    return raw if isinstance(raw, str) else None


def actions_from_ha_call(type_name: str, call: ServiceCall) -> tuple[tuple[str, str], ...]:
    """The catalogue settings ``(field, value)`` a service call makes on a device of this type: the
    inverse of ``ha_service_call`` (one setting per call it emits). A call may carry several
    attributes (``light.turn_on`` with brightness and colour temperature: two settings); a call that
    only switches on (``light.turn_on`` without data) is ``power=on``. ``CatalogError`` naming the
    call when it sets nothing this type has, or a value outside the catalogue (never clamped)."""
    dt = device_type(type_name)
    if call.domain == HA_GENERIC:
        power = dt.fields.get("power")
        if power is None or not _is_power(power) or call.service not in ("turn_on", "turn_off"):
            raise CatalogError(f"{call.name}: a {type_name} has no power field it could switch")
        return (("power", "on" if call.service == "turn_on" else "off"),)
    out: list[tuple[str, str]] = []
    switched: list[tuple[str, str]] = []  # settings named by the service alone (turn_on -> power=on)
    for spec in dt.fields.values():
        ha = spec.ha
        if ha.domain != call.domain:
            continue
        if ha.attribute is not None:
            if call.data.get(ha.attribute) is None or (isinstance(ha.service, str) and ha.service != call.service):
                continue
            value = _from_data(spec, call.data[ha.attribute])
            if value is None or not spec.allows(value):
                raise CatalogError(f"{call.name}: {ha.attribute}={call.data[ha.attribute]!r} is not a {type_name}."
                                   f"{spec.name} value; allowed: {spec.describe_allowed()}")
            out.append((spec.name, value))
        elif not isinstance(ha.service, str):
            switched += [(spec.name, v) for v, sv in ha.service.items() if sv == call.service]
    if not out and not switched:
        raise CatalogError(f"{call.name} sets nothing a {type_name} has (fields: {', '.join(dt.fields)})")
    return tuple(out) if out else tuple(switched[:1])


#: Fields Home Assistant models as an entity of their own (another domain than the device's main
#: entity): (type, field) -> (domain, object-id suffix). Derived from the catalogue, for the docs.
HA_OWN_ENTITY_FIELDS: Mapping[tuple[str, str], tuple[str, str]] = MappingProxyType({
    (t.name, f.name): (f.ha.domain, f.ha.entity) for t in DEVICE_TYPES.values() for f in t.fields.values()
    if f.ha.entity})


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

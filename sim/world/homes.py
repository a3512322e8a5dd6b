"""Sampling homes: rooms, devices (spanning the paper's device-count buckets), residents, climate.

``sample_home(rng, index)`` draws a ``HomeSpec``. The device-count bucket follows the paper's
test-set proportions (Table 2: 970 : 1,037 : 1,650 : 1,225 homes with 1-5, 6-10, 11-20, 20+
devices); within a bucket the count is uniform (20+ is capped at ``MAX_DEVICES``). Rooms are
added in order of how common they are; each device picks a room and then a type by
room-specific weights, so kitchens get kettles and bathrooms bath heaters. Pluggable appliances
sit on a smart plug in the same room with probability ``P_PLUG``. Several devices of one type
in a room are named ``light``, ``light_2``, ...

Residents are persona ids (``sim.world.people.PERSONAS``); a child only lives with an adult.
"""

from __future__ import annotations

import bisect

import numpy as np

from sim.catalog import DEVICE_BUCKETS, DEVICE_TYPES
from sim.log import DeviceSpec, HomeSpec
from sim.world.people import ADULT_PERSONAS, PERSONAS
from sim.world.weather import CLIMATES

#: Paper Table 2 test-set homes per device-count bucket (1-5, 6-10, 11-20, 20+).
BUCKET_WEIGHTS: tuple[int, ...] = (970, 1037, 1650, 1225)
BUCKET_RANGES: dict[str, tuple[int, int]] = {"1-5": (1, 5), "6-10": (6, 10), "11-20": (11, 20), "20+": (21, 32)}
MAX_DEVICES = 32
P_PLUG = 0.3  # share of pluggable appliances that sit on a smart plug

#: Rooms in the order they are added to a home; the first ``n`` of them make an n-room home.
ROOM_ORDER: tuple[str, ...] = ("living_room", "bedroom", "kitchen", "bathroom", "hallway", "master_bedroom",
                               "study", "kids_room", "dining_room", "balcony", "laundry", "guest_room", "garage")
#: How many devices a room attracts relative to the others.
ROOM_WEIGHT: dict[str, float] = {"living_room": 3.0, "bedroom": 2.2, "master_bedroom": 2.0, "kids_room": 1.5,
                                 "guest_room": 0.8, "study": 1.3, "kitchen": 1.6, "dining_room": 0.8,
                                 "bathroom": 1.2, "hallway": 1.0, "balcony": 0.7, "laundry": 0.7, "garage": 0.5}
_BED = {"light": 3, "curtain": 2.2, "ac": 2, "humidifier": 0.8, "heater": 0.6, "fan": 0.5, "air_purifier": 0.6,
        "speaker": 0.3, "wall_switch": 0.4}
#: Device-type weights per room.
ROOM_DEVICES: dict[str, dict[str, float]] = {
    "living_room": {"light": 3, "curtain": 2, "ac": 2, "tv": 2, "speaker": 0.8, "air_purifier": 0.8, "fan": 0.6,
                    "robot_vacuum": 1, "camera": 1, "humidifier": 0.5, "wall_switch": 1, "heater": 0.4},
    "bedroom": _BED, "master_bedroom": _BED, "kids_room": _BED, "guest_room": _BED,
    "study": {"light": 2, "ac": 1, "curtain": 1, "speaker": 0.5, "fan": 0.5, "heater": 0.4},
    "kitchen": {"light": 2, "kettle": 1, "fridge": 1, "dishwasher": 0.7, "rice_cooker": 0.8, "wall_switch": 0.4},
    "dining_room": {"light": 2, "wall_switch": 0.6, "curtain": 0.5},
    "bathroom": {"bath_warmer": 2, "light": 1.5, "water_heater": 1, "fan": 0.3},
    "hallway": {"light": 2, "lock": 1.5, "camera": 1, "wall_switch": 0.8},
    "balcony": {"light": 1, "camera": 0.7, "washer": 1},
    "laundry": {"washer": 2, "dehumidifier": 1, "light": 1},
    "garage": {"light": 1, "camera": 1, "lock": 0.5},
}
#: Share of residents per persona when the home is drawn (children handled separately).
PERSONA_WEIGHTS: dict[str, float] = {"early_bird": 1.0, "night_owl": 1.0, "family_parent": 1.4, "elderly": 0.8,
                                     "remote_worker": 1.0, "shift_worker": 0.6, "student": 0.7}
RESIDENT_WEIGHTS: tuple[float, ...] = (0.22, 0.34, 0.2, 0.17, 0.07)  # 1..5 residents
_N_RESIDENTS = {str(k + 1): w for k, w in enumerate(RESIDENT_WEIGHTS)}
CLIMATE_WEIGHTS: dict[str, float] = {"temperate": 0.45, "hot_humid": 0.2, "cold": 0.2, "dry": 0.15}


_CUM: dict[tuple, tuple[list[str], list[float]]] = {}


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key drawn with probability proportional to its weight (one uniform draw)."""
    key = tuple(weights.items())
    cached = _CUM.get(key)
    if cached is None:
        keys, total, cum = list(weights), 0.0, []
        for k in keys:
            total += weights[k]
            cum.append(total)
        cached = _CUM[key] = (keys, [c / total for c in cum])
    keys, cum = cached
    return keys[min(bisect.bisect_right(cum, rng.random()), len(keys) - 1)]


def sample_residents(rng: np.random.Generator) -> tuple[str, ...]:
    """1-5 persona ids; homes with 3+ residents are usually a family (parents and children)."""
    n = int(_pick(rng, _N_RESIDENTS))
    if n >= 3 and rng.random() < 0.7:
        n_adults = 2 if n < 5 or rng.random() < 0.7 else 3
        adults = ["family_parent"] + [_pick(rng, PERSONA_WEIGHTS) for _ in range(n_adults - 1)]
        return tuple(adults + ["child"] * (n - n_adults))
    out = [_pick(rng, PERSONA_WEIGHTS) for _ in range(n)]
    assert all(p in ADULT_PERSONAS for p in out)
    return tuple(out)


def sample_home(rng: np.random.Generator, index: int, n_devices: int | None = None) -> HomeSpec:
    """Draw a home; ``home_id`` is ``h{index:05d}``. ``n_devices`` fixes the device count (1-32)."""
    if n_devices is None:
        bucket = DEVICE_BUCKETS[int(rng.choice(4, p=np.asarray(BUCKET_WEIGHTS) / sum(BUCKET_WEIGHTS)))]
        lo, hi = BUCKET_RANGES[bucket]
        n_devices = int(rng.integers(lo, hi + 1))
    if not 1 <= n_devices <= MAX_DEVICES:
        raise ValueError(f"n_devices must be in 1..{MAX_DEVICES}, got {n_devices}")
    residents = sample_residents(rng)
    n_rooms = int(np.clip(round(2 + n_devices / 3.2 + rng.normal(0, 0.8)), 1, len(ROOM_ORDER)))
    rooms = [r for r in ROOM_ORDER[:n_rooms]]
    if "child" in residents and "kids_room" not in rooms:
        rooms.append("kids_room")
    room_w = {r: ROOM_WEIGHT[r] for r in rooms}
    devices: list[DeviceSpec] = []
    counts: dict[tuple[str, str], int] = {}

    def add(room: str, type_name: str, plug: str | None = None) -> str:
        k = counts.get((room, type_name), 0) + 1
        counts[(room, type_name)] = k
        name = type_name if k == 1 else f"{type_name}_{k}"
        devices.append(DeviceSpec(room, name, type_name, plug))
        return name

    while len(devices) < n_devices:
        room = _pick(rng, room_w)
        type_name = _pick(rng, ROOM_DEVICES[room])
        if DEVICE_TYPES[type_name].pluggable and n_devices - len(devices) >= 2 and rng.random() < P_PLUG:
            plug = add(room, "smart_plug")
            add(room, type_name, plug)
        else:
            add(room, type_name)
    used = [r for r in rooms if any(d.room == r for d in devices)]
    climate = _pick(rng, CLIMATE_WEIGHTS)
    assert climate in CLIMATES
    return HomeSpec(home_id=f"h{index:05d}", index=index, rooms=tuple(used), devices=tuple(devices),
                    residents=residents, climate_zone=climate)


def validate_home(home: HomeSpec) -> None:
    """Raise ValueError naming the field when a hand-made HomeSpec is not simulable."""
    if not 1 <= len(home.devices) <= 200:
        raise ValueError(f"home.devices: need 1..200 devices, got {len(home.devices)}")
    if not 1 <= len(home.residents) <= 5:
        raise ValueError(f"home.residents: need 1..5 residents, got {len(home.residents)}")
    for p in home.residents:
        if p not in PERSONAS:
            raise ValueError(f"home.residents: unknown persona {p!r}; allowed: {', '.join(PERSONAS)}")
    if all(p == "child" for p in home.residents):
        raise ValueError("home.residents: a child needs at least one adult in the home")
    if home.climate_zone not in CLIMATES:
        raise ValueError(f"home.climate_zone: {home.climate_zone!r} not one of {', '.join(CLIMATES)}")
    seen = set()
    for d in home.devices:
        if d.type not in DEVICE_TYPES:
            raise ValueError(f"home.devices: unknown type {d.type!r} of {d.room}/{d.name}")
        if d.target in seen:
            raise ValueError(f"home.devices: duplicate device {d.room}/{d.name}")
        seen.add(d.target)
        if d.plug is not None and (d.room, d.plug) not in {(x.room, x.name) for x in home.devices}:
            raise ValueError(f"home.devices: {d.room}/{d.name} sits on missing plug {d.plug!r}")

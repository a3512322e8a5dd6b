"""Outdoor weather (precomputed per day) and indoor room physics (first-order, event-driven).

Outdoor: each climate zone has an annual mean, a seasonal amplitude, a diurnal swing, a base
humidity, a rain probability and a latitude (day length). Per simulated day we draw the weather
(sunny/cloudy/rain/snow, a Markov chain) and a daily temperature anomaly (AR(1)); within the day
temperature follows a cosine peaking at 15:00, daylight a half-sine between sunrise and sunset
scaled by cloud cover. Everything is a closed-form function of time: no per-minute ticks.

Indoor: every room relaxes towards an equilibrium with a time constant,
``dT/dt = sum_i (T_i - T) / tau_i`` over the passive building drive (outdoor-coupled) and each
active climate device (AC, heater, bath heater: their set-point; humidifier, dehumidifier,
AC dry mode: humidity). Between events the drives are constant, so ``Room.advance`` integrates
exactly with one exponential. Illuminance is instantaneous: daylight through the curtains plus
lights that are on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.catalog import WEATHER

DAY = 1440.0  # minutes


@dataclass(frozen=True)
class Climate:
    mean: float  # annual mean outdoor temperature, degrees C
    seasonal: float  # half the summer-winter difference, degrees C
    diurnal: float  # day-night swing, degrees C
    humidity: float  # mean outdoor relative humidity, %
    p_rain: float  # probability that a day is rainy
    latitude: float  # degrees; sets the day-length swing


CLIMATES: dict[str, Climate] = {
    "temperate": Climate(12.0, 9.0, 7.0, 70.0, 0.30, 45.0),
    "hot_humid": Climate(24.0, 5.0, 6.0, 80.0, 0.35, 25.0),
    "cold": Climate(4.0, 14.0, 8.0, 70.0, 0.25, 55.0),
    "dry": Climate(16.0, 10.0, 12.0, 38.0, 0.08, 35.0),
}
CLOUD_LIGHT = {"sunny": 1.0, "cloudy": 0.45, "rain": 0.2, "snow": 0.35}  # daylight factor
PEAK_LUX = 60000.0  # clear-sky noon illuminance, lux
DARK_LUX = 1000.0  # outdoor illuminance below which rooms need lights


class Outdoor:
    """Outdoor conditions for ``days`` days from ``start_doy`` (day of year of day 0)."""

    def __init__(self, climate: Climate, start_doy: int, days: int, rng: np.random.Generator) -> None:
        self.climate = climate
        n = days + 2
        doy = (start_doy + np.arange(n)) % 365
        seasonal = climate.mean - climate.seasonal * np.cos(2 * np.pi * (doy - 15) / 365)  # coldest mid-January
        anomaly = np.zeros(n)
        shocks = rng.normal(0, 2.0, n)
        for i in range(1, n):
            anomaly[i] = 0.7 * anomaly[i - 1] + shocks[i]
        self.mean_temp = (seasonal + anomaly).tolist()  # (days,) degrees C
        states = []
        s = "sunny"
        u = rng.random(n)
        for i in range(n):  # sticky weather: keep yesterday's with prob 0.5
            if u[i] >= 0.5 or i == 0:
                v = (u[i] - 0.5) * 2 if i else u[i]
                s = "rain" if v < climate.p_rain else ("cloudy" if v < climate.p_rain + 0.3 else "sunny")
            if s == "rain" and self.mean_temp[i] < 1.0:
                s = "snow"
            elif s == "snow" and self.mean_temp[i] >= 1.0:
                s = "rain"
            states.append(s)
        self.weather = states
        amp = 3.5 * climate.latitude / 45.0  # hours of day-length swing
        length = 12.0 + amp * np.sin(2 * np.pi * (doy - 80) / 365)
        self.sunrise = (12.5 - length / 2).tolist()  # hours
        self.sunset = (12.5 + length / 2).tolist()
        # hourly table at each hour's midpoint (vectorised), what room physics integrates against
        self.cloud = [CLOUD_LIGHT[w] for w in states]
        self.swing = [climate.diurnal * (1.0 if w == "sunny" else 0.6) for w in states]
        self.wet = [18.0 if w in ("rain", "snow") else 0.0 for w in states]
        h = np.tile(np.arange(24) + 0.5, n)
        d = np.repeat(np.arange(n), 24)
        cos = np.cos(2 * np.pi * (h - 15.0) / 24)
        temp = np.asarray(self.mean_temp)[d] + np.asarray(self.swing)[d] / 2 * cos
        hum = np.clip(climate.humidity + np.asarray(self.wet)[d] - 10 * cos, 5.0, 100.0)
        sr, ss = np.asarray(self.sunrise)[d], np.asarray(self.sunset)[d]
        sun = np.where((h > sr) & (h < ss), np.asarray(self.cloud)[d] * np.sin(np.pi * (h - sr) / (ss - sr)), 0.0)
        self.hour_temp, self.hour_hum, self.hour_sun = temp.tolist(), hum.tolist(), sun.tolist()

    def _day(self, t: float) -> tuple[int, float]:
        d = int(t // DAY)
        if d < 0 or d >= len(self.mean_temp):
            d = min(max(d, 0), len(self.mean_temp) - 1)
        return d, (t - d * DAY) / 60.0

    def temperature(self, t: float) -> float:
        d, h = self._day(t)
        return self.mean_temp[d] + self.swing[d] / 2 * math.cos(2 * math.pi * (h - 15.0) / 24)

    def humidity(self, t: float) -> float:
        d, h = self._day(t)
        return min(100.0, max(5.0, self.climate.humidity + self.wet[d] - 10 * math.cos(2 * math.pi * (h - 15.0) / 24)))

    def illuminance(self, t: float) -> float:
        d, h = self._day(t)
        sr, ss = self.sunrise[d], self.sunset[d]
        if h <= sr or h >= ss:
            return 0.0
        return PEAK_LUX * self.cloud[d] * math.sin(math.pi * (h - sr) / (ss - sr))

    def hourly(self, t: float) -> tuple[float, float, float]:
        """(temperature C, humidity %, daylight share) of the hour containing ``t`` (table lookup)."""
        h = min(max(int(t // 60.0), 0), len(self.hour_temp) - 1)
        return self.hour_temp[h], self.hour_hum[h], self.hour_sun[h]

    def weather_at(self, t: float) -> str:
        return self.weather[self._day(t)[0]]

    def is_dark(self, t: float) -> bool:
        return self.illuminance(t) < DARK_LUX

    def sun_hours(self, day: int) -> tuple[float, float]:
        """(sunrise, sunset) of ``day`` in hours after midnight."""
        d = min(max(day, 0), len(self.sunrise) - 1)
        return self.sunrise[d], self.sunset[d]


assert set(CLOUD_LIGHT) == set(WEATHER)

TAU_PASSIVE = 150.0  # minutes: the building's thermal time constant
TAU_HUM = 120.0
TAU_DEVICE = {"ac": 25.0, "heater": 45.0, "bath_warmer": 12.0, "humidifier": 60.0, "dehumidifier": 60.0}


class Room:
    """Temperature (C) and humidity (%) of one room, advanced exactly between events."""

    __slots__ = ("name", "t", "temp", "hum", "drives_t", "drives_h", "daylight", "lamp_lux")

    def __init__(self, name: str, t: float, temp: float, hum: float, daylight: float) -> None:
        self.name = name
        self.t = t  # minutes: time of the current state
        self.temp = temp
        self.hum = hum
        self.drives_t: list[tuple[float, float]] = []  # (set-point C, tau min) of active devices
        self.drives_h: list[tuple[float, float]] = []
        self.daylight = daylight  # share of outdoor light that reaches the room (curtains)
        self.lamp_lux = 0.0  # lux from lights that are on

    def advance(self, t: float, outdoor: Outdoor, occupancy: int) -> None:
        dt = t - self.t
        if dt <= 0:
            return
        t_out, h_out, sun = outdoor.hourly(self.t + dt / 2)
        passive = 19.0 + 0.33 * (t_out - 12.0) + 0.4 * occupancy + 1.5 * sun * self.daylight
        rate, acc = 1.0 / TAU_PASSIVE, passive / TAU_PASSIVE
        for sp, tau in self.drives_t:
            rate += 1.0 / tau
            acc += sp / tau
        target = acc / rate
        self.temp = target + (self.temp - target) * math.exp(-rate * dt)
        h_pass = 0.55 * h_out + 18.0 + 2.0 * occupancy
        rate, acc = 1.0 / TAU_HUM, h_pass / TAU_HUM
        for sp, tau in self.drives_h:
            rate += 1.0 / tau
            acc += sp / tau
        target = acc / rate
        self.hum = target + (self.hum - target) * math.exp(-rate * dt)
        self.t = t

    def illuminance(self, outdoor: Outdoor, t: float) -> float:
        return 0.012 * outdoor.illuminance(t) * self.daylight + self.lamp_lux


def set_drives(room: Room, devices: list[tuple[str, dict[str, str]]]) -> None:
    """Recompute the room's drives from its climate and light devices' states.

    ``devices``: (type, state) of every device in the room. Cooling only pulls the temperature
    down to the set-point, heating only up; those directions are applied through the set-point
    the passive equilibrium is compared with in ``Room.advance`` (a cool AC below room
    temperature acts; one above it is idle).
    """
    dt: list[tuple[float, float]] = []
    dh: list[tuple[float, float]] = []
    lamp = 0.0
    daylight = 1.0
    curtains = []
    for type_name, st in devices:
        on = st.get("power") == "on"
        if type_name == "curtain":
            curtains.append(0.05 + 0.95 * float(st.get("position", "0")) / 100)
        elif not on:
            continue
        elif type_name == "light":
            lamp += 3.0 * float(st.get("brightness", "100"))
        elif type_name == "wall_switch":
            lamp += 200.0
        elif type_name == "ac":
            mode = st.get("mode", "cool")
            sp = float(st.get("target_temperature", "26"))
            if mode == "cool":
                dt.append((min(sp, room.temp), TAU_DEVICE["ac"]))
            elif mode == "heat":
                dt.append((max(sp, room.temp), TAU_DEVICE["ac"]))
            elif mode == "auto":
                dt.append((sp, TAU_DEVICE["ac"]))
            elif mode == "dry":
                dh.append((40.0, TAU_DEVICE["humidifier"]))
        elif type_name in ("heater", "bath_warmer"):
            sp = float(st.get("target_temperature", "22"))
            if type_name == "bath_warmer" and st.get("mode", "heat") != "heat":
                continue
            dt.append((max(sp, room.temp), TAU_DEVICE[type_name]))
        elif type_name == "humidifier":
            dh.append((max(float(st.get("target_humidity", "50")), room.hum), TAU_DEVICE["humidifier"]))
        elif type_name == "dehumidifier":
            dh.append((min(float(st.get("target_humidity", "50")), room.hum), TAU_DEVICE["dehumidifier"]))
    if curtains:
        daylight = sum(curtains) / len(curtains)
    room.drives_t, room.drives_h, room.lamp_lux, room.daylight = dt, dh, lamp, daylight

"""What happens in a home: anchors fire habits, intents execute, people react, noise, automations.

Functions over a ``sim.world.World`` (its state, clock, timeline and chooser). ``perform`` is
the one way an operation happens: it builds the ``Operation`` record (environment readings of
the operated rooms and outdoors, description, source, logged flag), changes device states,
updates physics, writes event rows and the hidden timeline, and may plan a follow-up
(turning the AC on is often followed by adjusting its temperature a few minutes later).
"""

from __future__ import annotations

import bisect
from functools import lru_cache
from typing import TYPE_CHECKING

from sim.catalog import DEVICE_TYPES, effects, format_value
from sim.describe import describe
from sim.records import Action, EnvReading, Operation
from sim.world.behaviour import Habit, Intent, find_device, habit_active
from sim.world.people import GUESTS
from sim.world.timeline import OpRecord

if TYPE_CHECKING:
    from sim.world.world import World

DAY = 1440.0
PLAN_LEAD = 20.0  # minutes: a clock habit's intent forms this long before it is due
LIT = frozenset({"light", "wall_switch", "curtain"})  # device types that change a room's illuminance
FIELD_ORDER = {"power": 0, "mode": 1, "program": 1, "action": 1, "command": 1, "playback": 1, "lock": 1}


@lru_cache(maxsize=65536)
def action(room: str, device: str, field: str, value: str) -> Action:
    return Action(room, device, field, value)


@lru_cache(maxsize=65536)
def reading(room: str, indicator: str, value: str) -> EnvReading:
    return EnvReading(room, indicator, value)


@lru_cache(maxsize=4096)
def _effects(type_name: str, field: str, value: str) -> tuple[tuple[str, str], ...]:
    return tuple(effects(type_name, field, value))


def satisfied(w: World, a: Action, state: dict | None = None) -> bool:
    """True when the device already is in every state the action asserts."""
    st = w.state[a.target] if state is None else state
    return all(st.get(f) == v for f, v in _effects(w.devices[a.target].type, a.field, a.value))


def projected_state(w: World, target: tuple[str, str], due: float) -> dict[str, str]:
    """The device's state as it will be just before ``due`` if every pending plan due earlier
    is carried out (a bedtime routine formed at once plans "light on" then "light off")."""
    st = w.state[target]
    tl = w.timeline
    lo = bisect.bisect_left(tl.intent_dues, w.env.now)
    hi = bisect.bisect_left(tl.intent_dues, due)
    out = None
    for it in tl.intents[lo:hi]:
        if it.status != "pending":
            continue
        for a in it.actions:
            if a.target == target:
                if out is None:
                    out = dict(st)
                for f, v in _effects(w.devices[target].type, a.field, a.value):
                    out[f] = v
    return st if out is None else out


def plan(w: World, steps, due: float | None = None) -> tuple[Action, ...]:
    """Concrete ordered actions for a step bundle: drop steps already satisfied (in the state
    projected to ``due`` when given), add plugs that are off, put each device's actions in
    dependency order (power, then mode, then set-points)."""
    by_dev: dict[tuple[str, str], list[Action]] = {}
    states: dict[tuple[str, str], dict[str, str]] = {}
    for room, dev, f, v in steps:
        target = (room, dev)
        if target not in w.devices:
            continue
        if target not in states:
            states[target] = w.state[target] if due is None else projected_state(w, target, due)
        a = action(room, dev, f, v)
        if not satisfied(w, a, states[target]):
            by_dev.setdefault(target, []).append(a)
    out: list[Action] = []
    for target, acts in by_dev.items():
        acts.sort(key=lambda a: FIELD_ORDER.get(a.field, 2))
        d = w.devices[target]
        turning_off = len(acts) == 1 and acts[0].field == "power" and acts[0].value == "off"
        if d.plug is not None and not turning_off:
            plug = action(d.room, d.plug, "power", "on")
            pst = w.state[plug.target] if due is None else projected_state(w, plug.target, due)
            if not satisfied(w, plug, pst) and plug not in out:
                out.append(plug)
        out.extend(acts)
    return tuple(out)


# ------------------------------------------------------------------ intents


def add_intent(w: World, user: str, name: str, created: float, due: float, actions: tuple[Action, ...],
               source: str = "", **meta) -> Intent | None:
    if not actions or due >= w.horizon:
        return None
    it = Intent(user, name, created, due, actions, source=source, meta=meta)
    w.timeline.add_intent(it)
    w.schedule(due, lambda: execute(w, it))
    return it


def execute(w: World, it: Intent) -> None:
    if it.status != "pending":
        _next_in_chain(w, it, it.status == "accepted")
        return
    now = w.env.now
    if it.user in w.where and w.where[it.user][0] != "home" and not it.meta.get("any_presence"):
        it.status, it.end = "cancelled", now
        _next_in_chain(w, it, False)
        return
    acts = [a for a in it.actions if not satisfied(w, a)]
    if not acts:  # already done (by someone else): the routine goes on as if it had been
        it.status, it.end = "cancelled", now
        _next_in_chain(w, it, True)
        return
    if len(acts) == len(it.actions) and w.ch.chance(w.p_vary):
        acts = vary(w, acts)
    it.status, it.end = "done", now
    perform(w, it.user, tuple(acts), it.source or source_of(w, it.user), cause=it.habit)
    _next_in_chain(w, it, True)


def vary(w: World, acts: list[Action]) -> list[Action]:
    """A person does not do exactly what they planned: a numeric value off by a step or two,
    or the last action of a bundle forgotten."""
    if len(acts) > 1 and w.ch.chance(0.5):
        return acts[:-1]
    for i, a in enumerate(acts):
        spec = DEVICE_TYPES[w.devices[a.target].type].fields[a.field]
        if spec.is_numeric:
            step = spec.step * (5 if spec.unit == "%" and spec.step < 5 else 1)  # % in 5s: people say "60", not "61"
            x = float(a.value) + step * w.ch.pick((-2, -1, 1, 2))
            x = min(spec.high, max(spec.low, x))
            acts = list(acts)
            acts[i] = action(a.room, a.device, a.field, format_value(x))
            return acts
    return acts


def source_of(w: World, user: str) -> str:
    p = w.personas[user]
    r = w.ch.uniform(0.0, 1.0)
    return "app" if r < p.app else ("voice" if r < p.app + p.voice else "physical")


def fire(w: World, h: Habit, now: float, due: float, chain: tuple | None = None) -> Intent | None:
    """A habit fires: check its condition, plan its actions, register the intent. ``chain``:
    (routine, step index) when the habit is a step of a routine (``start_chain``)."""
    if not condition(w, h, due):
        return None
    acts = plan(w, h.steps, due)
    if chain is None:
        return add_intent(w, h.user, h.name, now, due, acts)
    return add_intent(w, h.user, h.name, now, due, acts, chain=chain)


# Routines as chains: a resident's habits at one anchor (by their minutes after it) are one
# ordered routine. Step k+1 is drawn when step k runs (or would have run), its time is step k's
# plus the habits' usual gap (with a little jitter, so the order holds), and it is much more
# likely if step k happened: its probability rises to CHAIN_AFTER of the way to 1 after a done
# step and falls to CHAIN_SKIPPED x its probability after a skipped one.
CHAIN_AFTER = 0.6
CHAIN_SKIPPED = 0.3
CHAIN_JITTER = 2.0  # minutes, sd of the gap between consecutive steps (at most the habit's own jitter)


def start_chain(w: World, chain: tuple[Habit, ...], t0: float, at0: float = 0.0) -> None:
    """Begin a routine at ``t0`` (the anchor's time; ``at0``: the anchor's offset, 0)."""
    if chain:
        _chain_step(w, chain, 0, t0, at0, None)


def _chain_step(w: World, chain: tuple[Habit, ...], k: int, t0: float, at0: float, did: bool | None) -> None:
    """Draw step ``k`` at ``t0`` (when step k-1 ran; ``did``: whether it happened, None at the start)."""
    h = chain[k]
    p = h.prob if did is None else (h.prob + CHAIN_AFTER * (1.0 - h.prob) if did else CHAIN_SKIPPED * h.prob)
    sd = h.jitter if did is None else min(h.jitter, CHAIN_JITTER)
    due = t0 + max(0.5, h.at - at0 + w.ch.normal(0.0, sd))
    if w.ch.chance(p):
        if fire(w, h, w.env.now, due, (chain, k)) is not None:
            return  # the next step is drawn when this one runs (``execute``)
        happened = True  # nothing to do (condition unmet, already so): the routine goes on
    else:
        happened = False  # skipped today
    if k + 1 < len(chain):
        w.schedule(due, lambda: _chain_step(w, chain, k + 1, due, h.at, happened))


def _next_in_chain(w: World, it: Intent, did: bool) -> None:
    chain = it.meta.get("chain")
    if chain is None or chain[1] + 1 >= len(chain[0]):
        return
    routine, k = chain
    _chain_step(w, routine, k + 1, w.env.now, routine[k].at, did)


def condition(w: World, h: Habit, due: float) -> bool:
    """Whether the habit's condition holds, read from what the home senses (``World.sensed``) in
    the room of its first step, against the resident's own thresholds (``Prefs``). A habit that
    operates a children's room needs one of its children home (``World.child_home``)."""
    if not all(w.child_home(s[0]) for s in h.steps):
        return False
    if not h.when:
        return True
    room = h.steps[0][0]
    pf = w.prefs.get(h.user)
    if h.when == "dark":
        return w.sensed[room][2] < (pf.lux_low if pf else 60.0)
    if h.when == "cold":
        return w.sensed[room][0] < (pf.warm_low if pf else 20.0)
    if h.when == "hot":
        return w.sensed[room][0] > (pf.temp_high if pf else 26.0)
    if h.when == "empty":
        return all(w.where[u][0] == "away" for u in w.users if u != h.user)
    if h.when == "acon":
        return all(w.state[(s[0], s[1])].get("power") == "on" for s in h.steps)
    raise ValueError(f"habit {h.name}: unknown condition {h.when!r}")


# ------------------------------------------------------------------ processes' bodies


def on_anchor(w: World, user: str, anchor: str) -> None:
    now = w.env.now
    today = w.room_today(user, now)
    if anchor in ("wake", "return"):
        set_presence(w, user, "home", today if anchor == "return" else w.sleep_rooms[user])
    elif anchor == "leave":
        set_presence(w, user, "away", "")
    elif anchor == "sleep":
        set_presence(w, user, "asleep", w.sleep_rooms[user])
    elif anchor == "prep_leave":
        set_presence(w, user, "home", today)
    wd, mode = w.weekday(now), w.day_mode(now)
    start_chain(w, tuple(h for h in w.anchor_habits.get((user, anchor), ()) if habit_active(h, wd, mode)), now)
    for room, at, sd in MOVES.get(anchor, ()):
        room = {"@day": today, "@sleep": w.sleep_rooms[user]}.get(room, room)
        if room in w.rooms:
            w.schedule(now + max(0.5, at + w.ch.normal(0.0, sd)), lambda room=room: move(w, user, room))
    if anchor in ("wake", "return"):
        w.schedule(now + 12.0, lambda: react(w, user))


# Where a resident goes after an anchor: (room | @day | @sleep, minutes after the anchor, sd minutes).
# Mornings pass through the bathroom and the kitchen; the evening routine (prep_bed, 100 min before
# sleep) through the bathroom, back to the day room to switch it off, then to bed.
MOVES: dict[str, tuple[tuple[str, float, float], ...]] = {
    "wake": (("bathroom", 6.0, 2.0), ("kitchen", 16.0, 3.0), ("@day", 28.0, 5.0)),
    "prep_bed": (("bathroom", 18.0, 3.0), ("@day", 58.0, 2.0), ("@sleep", 66.0, 2.0)),
}
ENTER_DELAY = (1.0, 2.5)  # minutes after an arrival that its light goes on (after the sensor's report)


def move(w: World, user: str, room: str) -> None:
    """An awake resident walks into ``room``: the presence sensors report, and the resident may
    switch on the light of a room that reads dark to them (``Prefs.lux_low``) and switch off the
    light of the room they leave empty (``Prefs.switch_on_enter`` / ``switch_off_leave``)."""
    where, old = w.where[user]
    if where != "home" or old == room:
        return
    set_presence(w, user, "home", room)
    pf, now = w.prefs[user], w.env.now
    if old and w.occ.get(old, 0) == 0:
        lights = [k for k in w.room_targets[old] if w.devices[k].type == "light" and w.state[k].get("power") == "on"]
        if lights and w.ch.chance(pf.switch_off_leave):
            add_intent(w, user, "leave_room", now, now + w.ch.uniform(*ENTER_DELAY),
                       plan(w, [(*k, "power", "off") for k in lights]))
    if w.sensed[room][2] < pf.lux_low:
        light = next((k for k in w.room_targets[room] if w.devices[k].type == "light"), None)
        if light is not None and w.ch.chance(pf.switch_on_enter):
            add_intent(w, user, "enter_room", now, now + w.ch.uniform(*ENTER_DELAY),
                       plan(w, [(*light, "power", "on"), (*light, "brightness", str(pf.brightness))]))


def set_presence(w: World, user: str, where: str, room: str) -> None:
    old = w.where[user]
    for r in {old[1], room} - {""}:
        w.advance_room(r)
    w.where[user] = (where, room)
    if old[0] != "away" and old[1]:
        w.occ[old[1]] -= 1
    if where != "away" and room:
        w.occ[room] = w.occ.get(room, 0) + 1
    w.timeline.record_presence(w.env.now, user, where, room)
    if old[1] != room or (old[0] == "away") != (where == "away"):
        for r in dict.fromkeys((old[1], room)):
            if r:  # a presence sensor reports the room's light level with each arrival/departure
                w.report(r, "occupancy")
                w.report(r, "illuminance")


def guests(w: World, room: str, n: int) -> None:
    """``n`` guests arrive in ``room`` (``-n``: they leave): the presence sensor reports them."""
    w.advance_room(room)
    w.occ[room] = w.occ.get(room, 0) + n
    w.report(room, "occupancy")


def plan_day(w: World, day: int) -> None:
    """Schedule the day's clock habits and automations (each forms its intent PLAN_LEAD before
    due) and each resident's sunset routine (a chain, ``start_chain``, from PLAN_LEAD before sunset),
    the habits that apply under the day's mode (``habit_active``); on a guests day, their visit."""
    wd, mode = w.weekday(day * DAY), w.day_mode(day * DAY)
    sunset = day * DAY + w.outdoor.sun_hours(day)[1] * 60.0
    if mode.name == "guests":
        n = 1 + w.ch.index(4)  # guests, in the day room of the first adult it applies to
        room = w.day_rooms[mode.users[0]]
        come, go = (day * DAY + hour * 60.0 + w.ch.normal(0.0, 15.0) for hour in GUESTS)
        w.schedule(come, lambda: guests(w, room, n))
        w.schedule(go, lambda: guests(w, room, -n))
    dusk: dict[str, list[Habit]] = {}
    for h in list(w.habits) + w.automations:
        if not habit_active(h, wd, mode) or h.anchor not in ("clock", "sunset"):
            continue
        if h.anchor == "sunset" and h.user != "automation":
            dusk.setdefault(h.user, []).append(h)
            continue
        if not w.ch.chance(h.prob):
            continue
        due = (day * DAY + h.at if h.anchor == "clock" else sunset + h.at) + w.ch.normal(0.0, h.jitter)
        w.schedule(due - PLAN_LEAD, lambda h=h, due=due: _form_clock(w, h, due))
    for chain in dusk.values():
        chain.sort(key=lambda h: h.at)
        w.schedule(sunset - PLAN_LEAD, lambda c=tuple(chain): start_chain(w, c, sunset))


def _form_clock(w: World, h: Habit, due: float) -> None:
    if h.user == "automation":
        acts = plan(w, h.steps, due)
        it = add_intent(w, "automation", h.name, w.env.now, due, acts, source="automation", any_presence=True)
        if it is not None:
            it.meta["override"] = True
        return
    if w.where[h.user][0] == "away" and h.anchor == "clock":
        return
    fire(w, h, w.env.now, due)


def sensor_tick(w: World) -> None:
    """Periodic readings of every room (temperature, humidity, illuminance, occupancy) and outdoors.

    The hot loop of the simulator (rooms x ticks): physics and the timeline append are inlined.
    """
    now = w.env.now
    noise = w.sensor_noise_row()  # 3 per room: temperature, humidity, illuminance
    out = w.outdoor
    lux_out = 0.012 * out.illuminance(now)
    fmt = format_value
    tl_times, tl_vals, occ, sensed = w.timeline.room_times, w.timeline.room_vals, w.occ, w.sensed
    rows = []
    i = 0
    for name, room in w.rooms.items():
        n_occ = occ.get(name, 0)
        if room.t < now:
            room.advance(now, out, n_occ)
            tl_times[name].append(now)
            tl_vals[name].append((room.temp, room.hum))
        temp = room.temp + 0.3 * noise[i]
        hum = room.hum + 2.0 * noise[i + 1]
        hum = 100.0 if hum > 100.0 else (hum if hum > 0.0 else 0.0)
        lux = (lux_out * room.daylight + room.lamp_lux) * (1.0 + 0.05 * noise[i + 2])
        lux = lux if lux > 0.0 else 0.0
        sensed[name] = [temp, hum, lux]
        rows += ((name, "temperature", fmt(temp)), (name, "humidity", fmt(hum)), (name, "illuminance", fmt(lux)),
                 (name, "occupancy", str(n_occ)))
        i += 3
    rows += (("outdoor", "temperature", fmt(out.temperature(now))),
             ("outdoor", "humidity", fmt(out.humidity(now))),
             ("outdoor", "illuminance", fmt(lux_out / 0.012)),
             ("outdoor", "weather", out.weather_at(now)))
    w.events.add_readings(now, "sensor", rows)


def react_all(w: World) -> None:
    for u in w.users:
        if w.where[u][0] == "home":
            react(w, u)


def react(w: World, user: str) -> None:
    """Comfort reaction of an awake resident at home to their room's temperature and humidity as
    its sensors last reported them (``World.sensed``), against the resident's ``Prefs``."""
    if w.where[user][0] != "home":
        return
    pending = w.reactive.get(user)
    if pending is not None and pending.status == "pending":
        return
    room = w.where[user][1]
    if room not in w.rooms:
        return
    temp, hum, _ = w.sensed[room]
    pf, now = w.prefs[user], w.env.now
    kinds = {w.devices[k].type: k for k in reversed(w.room_targets[room])}
    steps: list[tuple[str, str, str, str]] = []
    name = ""
    if temp > pf.temp_high and "ac" in kinds:
        k, name = kinds["ac"], "comfort_cool"
        steps = [(*k, "power", "on"), (*k, "mode", "cool"), (*k, "target_temperature", str(pf.cool_target))]
    elif temp > pf.temp_high and "fan" in kinds:
        k, name = kinds["fan"], "comfort_fan"
        steps = [(*k, "power", "on"), (*k, "speed", "50")]
    elif temp < pf.temp_low and ("heater" in kinds or "ac" in kinds):
        if "heater" in kinds:
            k, name = kinds["heater"], "comfort_heat"
            steps = [(*k, "power", "on"), (*k, "target_temperature", str(pf.heat_target))]
        else:
            k, name = kinds["ac"], "comfort_heat"
            steps = [(*k, "power", "on"), (*k, "mode", "heat"), (*k, "target_temperature", str(pf.heat_target))]
    elif hum < pf.hum_low and "humidifier" in kinds:
        k, name = kinds["humidifier"], "comfort_humidify"
        steps = [(*k, "power", "on"), (*k, "target_humidity", "50")]
    elif hum > pf.hum_high and "dehumidifier" in kinds:
        k, name = kinds["dehumidifier"], "comfort_dry"
        steps = [(*k, "power", "on"), (*k, "target_humidity", "50")]
    else:  # too much of a good thing: switch off what overshot
        for t in ("ac", "heater"):
            k = kinds.get(t)
            if k is None or w.state[k].get("power") != "on":
                continue
            heating = t == "heater" or w.state[k].get("mode") == "heat"
            if (heating and temp > pf.temp_high - 1.0) or (not heating and temp < pf.temp_low + 1.5):
                steps, name = [(*k, "power", "off")], "comfort_off"
                break
    if steps:
        acts = plan(w, steps)
        w.reactive[user] = add_intent(w, user, name, now, now + w.ch.uniform(2.0, 10.0), acts)


# Unplanned operations: mostly a context-dependent adjustment, a few truly random settings.
ADJUST_SHARE = 0.85  # share of unplanned operations that adjust a device in use (the rest: random)
ADJUST_RECENT = 30.0  # minutes: a device operated this recently counts as in use
ADJUSTABLE = ("brightness", "volume", "target_temperature", "speed", "target_humidity")


def adjustment(w: World, user: str) -> tuple[Action, ...]:
    """One step up or down (5 for % fields) of the brightness, volume, set-point or speed of a
    device that is on and was operated in the last ``ADJUST_RECENT`` minutes or stands in an
    occupied room; () when there is none."""
    now = w.env.now
    recent = dict.fromkeys(a.target for op in reversed(w.timeline.ops_between(now - ADJUST_RECENT, now))
                           for a in op.actions)
    occupied = [k for r, n in w.occ.items() if n > 0 for k in w.room_targets.get(r, ())]
    for pool in (list(recent), occupied):
        cands = []
        for k in pool:
            if k not in w.devices or w.state[k].get("power", "on") != "on" or not w.child_home(k[0]):
                continue
            fields = DEVICE_TYPES[w.devices[k].type].fields
            f = next((f for f in ADJUSTABLE if f in fields), None)
            if f is not None and f in w.state[k]:
                cands.append((k, f))
        if cands:
            (room, dev), f = w.ch.pick(cands)
            spec = DEVICE_TYPES[w.devices[(room, dev)].type].fields[f]
            step = spec.step * (5 if spec.unit == "%" and spec.step < 5 else 1)
            x = float(w.state[(room, dev)][f]) + step * w.ch.pick((-1, 1))
            if not spec.low <= x <= spec.high:
                x = float(w.state[(room, dev)][f]) - (x - float(w.state[(room, dev)][f]))
            return (action(room, dev, f, format_value(min(spec.high, max(spec.low, x)))),)
    return ()


def noise_op(w: World) -> None:
    """An unplanned operation by someone at home: with ``ADJUST_SHARE`` a one-step adjustment of a
    device in use (``adjustment``), otherwise (or when nothing is in use) a random legal setting
    of a random device."""
    users = w.at_home_awake()
    if not users:
        return
    user = w.ch.pick(users)
    if w.ch.chance(ADJUST_SHARE):
        acts = adjustment(w, user)
        if acts:
            perform(w, user, acts, source_of(w, user), cause="adjust")
            return
    d = w.home.devices[w.ch.index(len(w.home.devices))]
    if not w.child_home(d.room):  # nobody touches a children's room while the children are out
        return
    dt = DEVICE_TYPES[d.type]
    f = w.ch.pick(tuple(dt.fields))
    spec = dt.fields[f]
    grid = spec.grid()
    cur = w.state[d.target].get(f)
    choices = [v for v in grid if v != cur] or list(grid)
    if spec.is_numeric and len(choices) > 12:  # people pick round values
        choices = choices[:: max(1, len(choices) // 8)]
    acts = plan(w, [(d.room, d.name, f, w.ch.pick(choices))])
    if acts:
        perform(w, user, acts, source_of(w, user), cause="noise")


def decision_point(w: World) -> None:
    users = w.at_home_awake()
    if not users:
        return
    user = w.ch.pick(users)
    if w.decision_hook is not None:
        w.decision_hook(user)
    if w.config.log_exposures and not w.live:
        from sim.world.logging_policy import expose

        expose(w, user)


def draw_automations(w: World) -> list[Habit]:
    """Scenes some homes run: morning curtains at a fixed time, a porch light at sunset, cameras."""
    if not w.ch.chance(w.config.p_automation):
        return []
    out = []
    u0 = w.users[0]
    cur = find_device(w.home, w.sleep_rooms[u0], "curtain")
    if cur is not None and w.ch.chance(0.6):
        out.append(Habit("auto_curtain", "automation", "clock", 7 * 60 + 30, 0.0, "all", 1.0,
                         ((cur.room, cur.name, "action", "open"),)))
    light = find_device(w.home, "hallway", "light")
    if light is not None and w.ch.chance(0.6):
        out.append(Habit("auto_porch", "automation", "sunset", 0.0, 0.0, "all", 1.0,
                         ((light.room, light.name, "power", "on"),)))
    cam = find_device(w.home, "*", "camera")
    if cam is not None and w.ch.chance(0.5):
        out.append(Habit("auto_camera", "automation", "clock", 9 * 60, 0.0, "weekday", 1.0,
                         ((cam.room, cam.name, "power", "on"),)))
    return out


# ------------------------------------------------------------------ performing an operation


def environment(w: World, rooms: list[str]) -> tuple[EnvReading, ...]:
    now = w.env.now
    out = []
    for room in rooms:
        w.advance_room(room)
        r = w.rooms[room]
        out.append(reading(room, "temperature", format_value(r.temp)))
        out.append(reading(room, "humidity", format_value(r.hum)))
        out.append(reading(room, "illuminance", format_value(r.illuminance(w.outdoor, now))))
    out.append(reading("outdoor", "temperature", format_value(w.outdoor.temperature(now))))
    out.append(reading("outdoor", "weather", w.outdoor.weather_at(now)))
    return tuple(out)


def perform(w: World, user: str, acts: tuple[Action, ...], source: str, description: str | None = None,
            logged: bool | None = None, cause: str = "") -> Operation:
    """Carry out ``acts`` now. ``cause``: the habit/intent name, ``noise``, ``recommendation``."""
    now = w.env.now
    rooms = list(dict.fromkeys(a.room for a in acts))
    env = environment(w, rooms)
    if description is None:
        description = describe(acts, w.ch.index(3))
    if logged is None:
        p = w.personas.get(user)
        logged = not (source == "physical" and p is not None
                      and w.ch.chance(min(1.0, p.unlogged * w.config.unlogged_scale)))
    op = Operation(w.datetime_of(now), acts, env, description, w.home.home_id, user, source, logged)
    w.log.operations.append(op)
    if logged:
        w.policy.observe(op)
    ev = w.events
    for a in acts:
        st = w.state[a.target]
        for f, v in _effects(w.devices[a.target].type, a.field, a.value):
            st[f] = v
        w.timeline.record_device(now, a.target, st)
        ev.append(now, "action", a.room, a.device, a.field, a.value, source, user, logged)
    for room in rooms:
        w._set_drives(room)
    for room in dict.fromkeys(a.room for a in acts if w.devices[a.target].type in LIT):
        w.report(room, "illuminance")
    w.timeline.record_op(OpRecord(now, user, source, acts, cause))
    if source != "automation":
        follow_up(w, user, acts)
    else:
        override(w, acts)
    return op


TOGGLE_BACK = 0.15  # chance that another resident in the room switches back on what was just switched off


def follow_up(w: World, user: str, acts: tuple[Action, ...]) -> None:
    """Operations that lead to another: AC on -> adjust its temperature; TV on -> volume; a light
    or TV switched off while someone else is in the room -> they switch it back on (a conflicting
    toggle between residents, after the conflict window)."""
    now = w.env.now
    for a in acts:
        t = w.devices[a.target].type
        if a.field == "power" and a.value == "off" and t in ("light", "tv", "wall_switch", "fan"):
            others = [u for u in w.users if u != user and w.where[u] == ("home", a.room)]
            if others and w.ch.chance(TOGGLE_BACK):
                add_intent(w, w.ch.pick(others), "toggle_back", now, now + w.ch.uniform(3.0, 12.0),
                           (action(a.room, a.device, "power", "on"),))
                return
        if t == "ac" and a.field == "power" and a.value == "on" and w.ch.chance(0.4):
            cur = float(w.state[a.target].get("target_temperature", "26"))
            step = -1 if w.state[a.target].get("mode") == "cool" else 1
            v = format_value(min(30, max(16, cur + step)))
            add_intent(w, user, "followup_ac", now, now + w.ch.uniform(3.0, 8.0),
                       (action(a.room, a.device, "target_temperature", v),))
            return
        if t == "tv" and a.field == "power" and a.value == "on" and w.ch.chance(0.3):
            cur = float(w.state[a.target].get("volume", "20"))
            add_intent(w, user, "followup_tv", now, now + w.ch.uniform(2.0, 6.0),
                       (action(a.room, a.device, "volume", format_value(min(100, cur + 5))),))
            return
        if t == "light" and a.field == "power" and a.value == "on" and w.ch.chance(0.15):
            v = "80" if w.state[a.target].get("brightness") == "50" else "50"
            add_intent(w, user, "followup_light", now, now + w.ch.uniform(5.0, 20.0),
                       (action(a.room, a.device, "brightness", v),))
            return


def override(w: World, acts: tuple[Action, ...]) -> None:
    """A scene fired while a resident sleeps in that room: they undo it (a conflicting toggle)."""
    now = w.env.now
    for a in acts:
        if a.field == "action" and a.value == "open":
            for u in w.users:
                if w.where[u] == ("asleep", a.room) and w.ch.chance(0.7):
                    add_intent(w, u, "override", now, now + w.ch.uniform(1.0, 4.0),
                               (action(a.room, a.device, "action", "close"),), any_presence=True)
                    return

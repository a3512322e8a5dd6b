"""What the recommender is asked about: one decision point in one home.

A ``Context`` holds the home's devices with their catalogue types, the operation history, the
current time and the environment readings. Its prompt comes from the one prompt builder
(``sim.prompts.prompt_text``), exactly as the dataset builder makes SFT prompts: the history
window is the last ``k`` *logged* operations strictly before ``time``; the candidate devices are
the home's devices (or a given subset), ranked by ``sim.prompts.rank_devices`` from the whole
history (a context parsed from a prompt keeps the prompt's order).

``problems()`` lists what is wrong with a context (a candidate the home lacks, an unknown device
type, an empty history) without raising; the recommender turns them into an error or an
abstention with the reason.

``random_contexts`` makes synthetic, grammar-valid contexts from the catalogue for tests and
benchmarks (not the simulator: no habits, no physics).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from sim.catalog import DEVICE_TYPES, ROOMS, format_value
from sim.log import HomeSpec
from sim.prompts import HISTORY_K, history_window, prompt_text
from sim.records import Action, EnvReading, Operation, Prompt, parse_prompt

Device = tuple[str, str, str]  # (room, device, catalogue type)


@dataclass(frozen=True)
class Context:
    """One decision point.

    devices: the home's devices as (room, device, type), in home order.
    history: operations before ``time`` (logged and unlogged; the window keeps logged ones), by time.
    time: the decision time (minute resolution in the prompt).
    environment: readings ``[room][indicator][value]`` at ``time``.
    candidates: (room, device) pairs to recommend for; None = every device of the home.
    home_id: for reports only.
    ranked: the candidates are already in prompt order (a context parsed from a prompt, whose
    history is only the window): the prompt keeps that order instead of ranking them again.
    usual: the prompt's usual operations when they cannot be counted from ``history`` (a context
    parsed from a prompt); None = ``sim.prompts.usual_operations`` over ``history``.
    state: the prompt's device states, per candidate in prompt order (a context parsed from a
    prompt); None = ``sim.prompts.device_state`` over ``history``.
    current: the devices' true state now, (room, device) -> {field: value}, where the caller
    reads it from the devices (the live app); None = unknown. The prompt does not show it (the
    model reads the logged state it was trained on); candidate scoring and the app's advisors
    leave out recommendations it shows already in place (``sim.candidates.is_noop``).
    """

    devices: tuple[Device, ...]
    history: tuple[Operation, ...]
    time: datetime
    environment: tuple[EnvReading, ...] = ()
    candidates: tuple[tuple[str, str], ...] | None = None
    home_id: str = ""
    ranked: bool = False
    usual: tuple[tuple[Action, ...], ...] | None = None
    state: tuple[tuple[tuple[str, str], ...], ...] | None = None  # per candidate; None = from ``history``
    current: Mapping[tuple[str, str], Mapping[str, str]] | None = None  # true state; None = unknown

    def __post_init__(self) -> None:
        object.__setattr__(self, "devices", tuple(tuple(d) for d in self.devices))
        object.__setattr__(self, "history", tuple(self.history))
        object.__setattr__(self, "environment", tuple(self.environment))
        if self.candidates is not None:
            object.__setattr__(self, "candidates", tuple(tuple(c) for c in self.candidates))
        if self.usual is not None:
            object.__setattr__(self, "usual", tuple(tuple(u) for u in self.usual))
        if self.state is not None:
            object.__setattr__(self, "state", tuple(tuple(tuple(fv) for fv in s) for s in self.state))

    @classmethod
    def from_home(cls, home: HomeSpec, history: Sequence[Operation], time: datetime,
                  environment: Sequence[EnvReading] = (), candidates: Sequence[tuple[str, str]] | None = None
                  ) -> Context:
        return cls(devices=tuple((d.room, d.name, d.type) for d in home.devices), history=tuple(history),
                   time=time, environment=tuple(environment),
                   candidates=None if candidates is None else tuple(candidates), home_id=home.home_id)

    @classmethod
    def from_prompt(cls, text: str, types: dict[tuple[str, str], str]) -> Context:
        """A context from a prompt string (``GrammarError`` if malformed); ``types`` maps
        (room, device) -> catalogue type for the prompt's devices."""
        p = parse_prompt(text)
        return cls(devices=tuple((r, d, types.get((r, d), "")) for r, d in p.devices), history=p.history,
                   time=p.time, environment=p.environment, ranked=True, usual=p.usual, state=p.state)

    @property
    def types(self) -> dict[tuple[str, str], str]:
        return {(r, d): t for r, d, t in self.devices}

    @property
    def targets(self) -> tuple[tuple[str, str], ...]:
        """The candidate devices the prompt lists and decoding may choose from."""
        return self.candidates if self.candidates is not None else tuple((r, d) for r, d, _ in self.devices)

    def legal_devices(self) -> tuple[Device, ...]:
        """(room, device, type) of the candidates that exist in the home with a known type."""
        types = self.types
        return tuple((r, d, types[(r, d)]) for r, d in self.targets if types.get((r, d)) in DEVICE_TYPES)

    def problems(self, min_history: int = 1, k: int = HISTORY_K) -> list[str]:
        """What makes this context unusable; empty when it is fine."""
        out = []
        types = self.types
        for r, d in self.targets:
            if (r, d) not in types:
                out.append(f"candidate device [{r}][{d}] is not in the home")
            elif types[(r, d)] not in DEVICE_TYPES:
                out.append(f"device [{r}][{d}] has unknown type {types[(r, d)]!r}")
        if not self.targets:
            out.append("no candidate devices")
        if min_history > 0 and len(history_window(self.history, self.time, k)) < min_history:
            out.append(f"history has fewer than {min_history} logged operation(s) before {self.time:%Y-%m-%d %H:%M}")
        return out

    def prompt(self, k: int = HISTORY_K) -> Prompt:
        return parse_prompt(self.prompt_text(k))

    def prompt_text(self, k: int = HISTORY_K) -> str:
        """The prompt the model reads, from the one prompt builder (same as the SFT rows)."""
        return prompt_text(self.history, self.time, self.environment, self.targets, k, rank=not self.ranked,
                           usual=self.usual, state=self.state)


# ---------------------------------------------------------------- synthetic contexts (tests, benchmarks)


def random_device_set(rng: np.random.Generator, n_devices: int) -> tuple[Device, ...]:
    """``n_devices`` devices of random types in random rooms, named ``type``, ``type_2``, ..."""
    rooms = list(ROOMS)
    types = list(DEVICE_TYPES)
    out: list[Device] = []
    count: dict[tuple[str, str], int] = {}
    for _ in range(n_devices):
        room = rooms[int(rng.integers(len(rooms)))]
        t = types[int(rng.integers(len(types)))]
        n = count[(room, t)] = count.get((room, t), 0) + 1
        out.append((room, t if n == 1 else f"{t}_{n}", t))
    return tuple(out)


def random_action(rng: np.random.Generator, devices: Sequence[Device]) -> Action:
    room, device, t = devices[int(rng.integers(len(devices)))]
    fields = list(DEVICE_TYPES[t].fields.values())
    spec = fields[int(rng.integers(len(fields)))]
    grid = spec.grid()
    return Action(room, device, spec.name, grid[int(rng.integers(len(grid)))])


def random_contexts(n: int, seed: int, *, devices: tuple[int, int] = (1, 24), history: int = 8,
                    homes: int | None = None, start: datetime = datetime(2026, 3, 2, 7, 0)) -> list[Context]:
    """``n`` synthetic contexts with legal histories and readings; identical for the same seed.

    devices: (min, max) devices per home; history: operations before each decision;
    homes: distinct homes the contexts cycle through (None = one home per context).
    """
    rng = np.random.default_rng(seed)
    out = []
    sets: list[tuple[Device, ...]] = []
    for i in range(n):
        h = i if homes is None else i % homes
        if h == len(sets):
            sets.append(random_device_set(rng, int(rng.integers(devices[0], devices[1] + 1))))
        devs = sets[h]
        t = start + timedelta(minutes=int(rng.integers(0, 60 * 24 * 30)))
        hist = []
        for j in range(history):
            when = t - timedelta(minutes=10 * (history - j) + int(rng.integers(0, 5)))
            acts = tuple(random_action(rng, devs) for _ in range(int(rng.integers(1, 3))))
            hist.append(Operation(time=when, actions=acts, description="", logged=bool(rng.random() < 0.9)))
        rooms = sorted({r for r, _, _ in devs})
        env = [EnvReading(r, "temperature", format_value(18 + 8 * rng.random())) for r in rooms[:3]]
        env.append(EnvReading("outdoor", "humidity", format_value(round(100 * rng.random()))))
        out.append(Context(devices=devs, history=tuple(hist), time=t, environment=tuple(env), home_id=f"rand-{h}"))
    return out

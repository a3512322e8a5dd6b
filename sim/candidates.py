"""Legal candidate operations of a home, and the decision contexts the baselines read.

A *context* is what every recommender sees at a decision point: the parsed prompt
(``sim.records.Prompt``: history window, time, environment, candidate devices) plus the home's
device types, ``{(room, device): type}`` (``sim.log.HomeSpec.types()``). ``context_from_row``
builds both from a row of the dataset's ``sft`` config (schema in ``sim.dataset.schema``) and
``label_from_row`` parses the row's ``actions`` column, so every baseline reads rows one way.

A *candidate* is one legal single action ``[room][device][field][value]``: a device of the home
(one the prompt lists), a field of its catalogue type, a value on that field's grid
(``FieldSpec.grid()``). Numeric grids make the full set large (a light alone has 2 + 100 + 45
settings): ``legal_actions`` enumerates all of it (the random-legal baseline samples from it),
``legal_fields`` gives the factored (device, field) view that the CGC baseline scores before
its value head.

It lives in ``sim`` (it needs only the catalogue and the grammar) because three layers read it: the
baselines, the recommender's candidate scoring and the listwise training stage, which trains on the
very sets candidate scoring ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sim.catalog import CatalogError, device_type
from sim.records import Action, Prompt, parse_actions, parse_prompt

Types = Mapping[tuple[str, str], str]  # (room, device) -> catalogue type name


def check_types(devices: Iterable[tuple[str, str]], types: Types) -> None:
    """Raise CatalogError naming the device when one has no type or an unknown catalogue type."""
    for target in devices:
        if target not in types:
            raise CatalogError(f"device {target[0]}/{target[1]} has no type in the given types mapping")
        device_type(types[target])  # raises naming the unknown type


def home_devices(prompt: Prompt, types: Types) -> tuple[tuple[str, str], ...]:
    """The candidate home-devices: the prompt's device list (or every typed device if it is empty)."""
    devices = prompt.devices or tuple(types)
    if not devices:
        raise ValueError("no candidate device: the prompt lists none and the types mapping is empty")
    check_types(devices, types)
    return tuple(devices)


def legal_fields(prompt: Prompt, types: Types) -> tuple[tuple[tuple[str, str], str], ...]:
    """Every legal (home-device, field) pair, in prompt device order then catalogue field order."""
    out = []
    for target in home_devices(prompt, types):
        for name in device_type(types[target]).fields:
            out.append((target, name))
    return tuple(out)


def legal_actions(prompt: Prompt, types: Types) -> tuple[Action, ...]:
    """Every legal single action for this home: devices x fields x ``FieldSpec.grid()``."""
    out = []
    for (room, device), name in legal_fields(prompt, types):
        for value in device_type(types[(room, device)]).field(name).grid():
            out.append(Action(room, device, name, value))
    return tuple(out)


def is_legal_action(action: Action, prompt: Prompt, types: Types) -> bool:
    """True when ``action`` operates a listed device with a field and value its type allows."""
    if action.target not in set(home_devices(prompt, types)):
        return False
    spec = device_type(types[action.target]).fields.get(action.field)
    return spec is not None and spec.allows(action.value)


def types_from_devices(devices: Iterable[Mapping[str, str]]) -> dict[tuple[str, str], str]:
    """``{(room, device): type}`` from the ``devices`` column (list of {room, device, type})."""
    out = {}
    for d in devices:
        device_type(d["type"])  # unknown type -> CatalogError naming it
        out[(d["room"], d["device"])] = d["type"]
    return out


def context_from_row(row: Mapping[str, Any]) -> tuple[Prompt, dict[tuple[str, str], str]]:
    """(prompt, types) from an ``sft`` (or ``feedback``) row dict."""
    for key in ("prompt", "devices"):
        if key not in row:
            raise KeyError(f"row has no {key!r} column; columns: {', '.join(row)}")
    prompt = parse_prompt(row["prompt"])
    types = types_from_devices(row["devices"])
    check_types(prompt.devices, types)
    return prompt, types


def label_from_row(row: Mapping[str, Any]) -> tuple[Action, ...]:
    """The label actions of an ``sft`` row (its ``actions`` column, canonical grammar)."""
    if "actions" not in row:
        raise KeyError(f"row has no 'actions' column; columns: {', '.join(row)}")
    return parse_actions(row["actions"])


def read_sft_rows(data_dir: str | Path, split: str = "train", columns: Sequence[str] | None = None) -> list[dict]:
    """Rows of the ``sft`` config's ``split`` as dicts (all columns when ``columns`` is None);
    ``sim.dataset.files.DatasetError`` naming the path if the split is absent or incomplete."""
    from sim.dataset.files import read_rows

    return read_rows(data_dir, "sft", split, columns)


# ---------------------------------------------------------------- plausible action sets (candidate scoring)

#: Ranked devices whose known settings are offered toggled (the inverse of what they are now).
TOGGLE_DEVICES = 6


def inverse_action(a: Action, types: Types) -> Action | None:
    """The action that undoes ``a`` on its device (``sim.catalog.inverse``), or None."""
    from sim.catalog import inverse

    t = types.get(a.target)
    try:
        inv = inverse(t, a.field, a.value) if t else None
    except CatalogError:
        return None
    return Action(a.room, a.device, *inv) if inv else None


def is_noop(actions: Sequence[Action], state: Mapping[tuple[str, str], Mapping[str, str]],
            types: Types | None = None) -> bool:
    """True when every action sets a field to the value the device's state already has.

    ``types`` given: an action is a no-op only when everything it asserts already holds
    (``sim.catalog.effects``: brightness 60 on a light that is off also turns it on, so it is not
    a no-op), the simulated user's definition of a redundant recommendation
    (``sim.world.acceptance``). For a device's full true state (the live app), pass ``types``."""
    if types is None:
        return all(state.get(a.target, {}).get(a.field) == a.value for a in actions)
    from sim.catalog import effects

    def holds(a: Action) -> bool:
        now = state.get(a.target, {})
        t = types.get(a.target)
        asserted = effects(t, a.field, a.value) if t else {(a.field, a.value)}
        return all(now.get(f) == v for f, v in asserted)

    return all(holds(a) for a in actions)


def plausible_sets(prompt: Prompt, types: Types, toggle_devices: int = TOGGLE_DEVICES,
                   drop_noops: bool = False, current: Mapping[tuple[str, str], Mapping[str, str]] | None = None
                   ) -> list[tuple[Action, ...]]:
    """The action sets a recommender scores at this decision, from the prompt alone, in this order:
    the usual operations, the history window's operations (latest first), every single action of
    those and its inverse (``sim.catalog.inverse``), and the inverse of each known setting of the
    first ``toggle_devices`` ranked devices. Duplicates (as sets) are kept once, first order wins;
    actions illegal in the home are dropped. ``drop_noops``: also leave out the sets whose every
    action the device already has (``is_noop`` against the prompt's known state).

    No-ops are kept by default because the known state is the *logged* one: unlogged physical
    operations make it stale, and on the quickstart preset's test contexts (generator 0.4.0) 8% of
    labels set what the logged state already shows. The label is among the sets for 74% of those
    contexts (68% with ``drop_noops``; mean ~12 sets); among the usual operations alone for 66%.
    The recommender drops no-ops (``RecommenderConfig.drop_noops``, measured there); the GBDT
    reranker keeps them and learns from an is-no-op feature.

    ``current``: the devices' true state, (room, device) -> {field: value}, where the caller knows
    it (the live app reads it from the devices): no-ops are then judged against it, with
    ``is_noop(..., types)``, instead of against the prompt's logged state. The toggles still come
    from the prompt's state (what the model reads).
    """
    state = prompt.known_state()

    def noop(acts: tuple[Action, ...]) -> bool:
        return is_noop(acts, state) if current is None else is_noop(acts, current, types)

    seen: set[frozenset[Action]] = set()
    out: list[tuple[Action, ...]] = []

    def legal(a: Action) -> bool:
        t = types.get(a.target)
        if t is None:
            return False
        spec = device_type(t).fields.get(a.field)
        return spec is not None and spec.allows(a.value)

    def add(actions: Sequence[Action]) -> None:
        acts = tuple(dict.fromkeys(actions))
        key = frozenset(acts)
        if acts and key not in seen and all(legal(a) for a in acts) and not (drop_noops and noop(acts)):
            seen.add(key)
            out.append(acts)

    ops = [*prompt.usual, *(o.actions for o in reversed(prompt.history))]
    for acts in ops:
        add(acts)
    for acts in ops:
        for a in acts:
            add((a,))
            inv = inverse_action(a, types)
            if inv is not None:
                add((inv,))
    for target, known in list(zip(prompt.devices, prompt.state, strict=True))[:toggle_devices]:
        for f, v in known:
            inv = inverse_action(Action(target[0], target[1], f, v), types)
            if inv is not None:
                add((inv,))
    return out


#: candidate pools a recommender may score (``agent.recommender.RecommenderConfig.pool``)
POOLS: tuple[str, ...] = ("plausible", "usual")


def restrict_pool(candidates: Sequence[tuple[Action, ...]], prompt: Prompt, pool: str) -> list[tuple[Action, ...]]:
    """The candidates a recommender scores under ``pool``: ``plausible`` keeps them all; ``usual`` keeps
    those that are one of the prompt's usual operations (as sets), or all of them when none is.

    Why a pool at all: the quickstart LMs' answers that are *not* usual operations (cut-out single
    actions, inverses, toggles, window operations) were right 5 of 187 times on seed 0's test
    contexts and 3 of 171 on seed 1's, while restricting the same models to the usual operations took
    EM-Acc from 0.235 / 0.217 to 0.285 / 0.273. ``agent.calibrate`` chooses a run's pool on its held-out
    prompts. The pool restricts the choice, not the distribution: the recommender scores every plausible
    set and the answer's confidence is its posterior over all of them (``Recommender._score``)."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if pool == "plausible":
        return list(candidates)
    usual = {frozenset(u) for u in prompt.usual}
    return [c for c in candidates if frozenset(c) in usual] or list(candidates)

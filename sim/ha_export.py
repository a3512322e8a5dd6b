"""Recommendations as Home Assistant service calls: the export side of the HA bridge (the import side
is ``sim.dataset.ha``; the per-field mapping lives in the catalogue, ``sim.catalog``).

An operation becomes one service call per action, in the operation's order (dependency order: the
smart plug before the appliance on it), each on the entity ``sim.catalog.ha_entity_id`` names: the
device's real entity when the dataset recorded it (``homepilot import-ha`` keeps them in the
``homes`` config's ``entities``), else a derived ``<domain>.<room>_<device>``. Two renderings:

- ``calls_json``: a list of ``{"service": "light.turn_on", "target": {"entity_id": ...}, "data": {...}}``
  (HA's REST API and script step shape);
- ``script_yaml``: a ``script:`` block for ``configuration.yaml`` (or ``scripts.yaml`` without the
  top key) whose ``sequence`` holds the same calls. It writes ``service:``, which every Home
  Assistant the importer reads (2023.4+) accepts; HA 2024.8+ also calls the key ``action:``.

``actions_from_calls`` is the inverse (service calls on a home's entities -> actions), used to check
that an export parses back to the recommendation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sim.catalog import CatalogError, ServiceCall, actions_from_ha_call, device_type, ha_entity_id, ha_service_call
from sim.log import DeviceSpec
from sim.records import Action

Devices = Mapping[tuple[str, str], DeviceSpec]


def device_map(devices: Iterable[DeviceSpec]) -> dict[tuple[str, str], DeviceSpec]:
    """(room, device) -> DeviceSpec."""
    return {d.target: d for d in devices}


def service_calls(actions: Sequence[Action], devices: Devices) -> list[ServiceCall]:
    """One call per action, in order; ``CatalogError`` naming an action whose device is not in ``devices``."""
    out = []
    for a in actions:
        d = devices.get(a.target)
        if d is None:
            raise CatalogError(f"action {a}: device {a.room}/{a.device} is not in the home")
        out.append(ha_service_call(d.type, a.field, a.value, ha_entity_id(d.type, a.field, a.room, a.device, d.entity_ids)))
    return out


def calls_json(calls: Iterable[ServiceCall]) -> list[dict[str, object]]:
    return [c.to_json() for c in calls]


def script_yaml(calls: Sequence[ServiceCall], script_id: str = "homepilot_recommendation", alias: str = "",
                description: str = "") -> str:
    """A ``script:`` block (YAML text) running ``calls`` in order."""
    import yaml

    steps = []
    for c in calls:
        step: dict[str, object] = {"service": c.name, "target": {"entity_id": c.entity_id}}
        if c.data:
            step["data"] = dict(c.data)
        steps.append(step)
    body: dict[str, object] = {}
    if alias:
        body["alias"] = alias
    if description:
        body["description"] = description
    body["mode"] = "single"
    body["sequence"] = steps
    return yaml.safe_dump({"script": {script_id: body}}, sort_keys=False, allow_unicode=True, width=1000)


def actions_from_calls(calls: Iterable[ServiceCall], devices: Devices) -> tuple[Action, ...]:
    """The actions service calls on a home's entities perform (the inverse of ``service_calls``):
    each call's entity is looked up among the entities ``ha_entity_id`` gives the home's devices
    (real or derived); ``CatalogError`` naming an entity no device has."""
    owner: dict[str, DeviceSpec] = {}
    for d in devices.values():
        for f in device_type(d.type).fields:
            owner.setdefault(ha_entity_id(d.type, f, d.room, d.name, d.entity_ids), d)
        for e in d.entity_ids:
            owner.setdefault(e, d)
    out: list[Action] = []
    for c in calls:
        d = owner.get(c.entity_id)
        if d is None:
            raise CatalogError(f"{c.name}: entity {c.entity_id} is no device of the home")
        out += [Action(d.room, d.name, f, v) for f, v in actions_from_ha_call(d.type, c)]
    return tuple(out)

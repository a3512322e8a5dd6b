"""Loose matching of one action against another (paper App. B, the LM-F1 match), pure.

A predicted action loosely matches a label action on the same home-device when it sets the same
(field, value), a numeric value within 20% relative error of the label's
(``sim.catalog.numeric_close``), or a functionally equivalent setting
(``sim.catalog.functionally_equivalent``: "Turn on bedroom AC" ~ "Set bedroom AC to 26").

Used by the metrics (``agent.metrics``: LM-F1) and by the replay env's label
(``sim.envs.replay.label_accepts``). Matching needs each action's device type: by default it is
read from the device name (``light_2`` -> ``light``); ``types`` maps (room, device) -> type for
other names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sim.catalog import functionally_equivalent, numeric_close, type_of_device_name
from sim.records import Action

TypeOf = Callable[[Action], "str | None"]


def type_resolver(types: Mapping[tuple[str, str], str] | TypeOf | None) -> TypeOf:
    """Action -> device type: from ``types`` (a mapping or a function), else from the device name."""
    if types is None:
        return lambda a: type_of_device_name(a.device)
    if callable(types):
        return types
    return lambda a: types.get(a.target) or type_of_device_name(a.device)


def loose_match(label: Action, pred: Action, type_of: TypeOf | None = None) -> bool:
    """Paper App. B loose match of one predicted action against one label action."""
    if label.target != pred.target:
        return False
    if (label.field, label.value) == (pred.field, pred.value):
        return True
    t = (type_of or type_resolver(None))(label)
    if t is None:
        return False
    lab, prd = (label.field, label.value), (pred.field, pred.value)
    return numeric_close(t, prd, lab) or functionally_equivalent(t, prd, lab)

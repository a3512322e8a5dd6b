"""The live stepping API: time, decisions, snapshots, applying legal and illegal recommendations."""

import json
from datetime import datetime

import pytest

from sim.catalog import CatalogError
from sim.records import Action
from sim.world import SimConfig
from sim.world.live import LiveHome


@pytest.fixture()
def home() -> LiveHome:
    return LiveHome(SimConfig(seed=3, days=2), 11)


def test_steps_through_decisions_until_the_end(home):
    times = []
    while (t := home.step_to_next_decision()) is not None:
        assert home.decision_user in home.world.users
        times.append(t)
    assert len(times) >= 2 and times == sorted(times)
    assert home.now == home.end and home.step_to_next_decision() is None
    assert not home.log.exposures  # the caller recommends, not the logging policy


def test_advance_and_snapshot(home):
    home.advance(datetime(2026, 1, 5, 8, 30))
    assert home.now == datetime(2026, 1, 5, 8, 30)
    snap = home.snapshot()
    json.dumps(snap)
    assert snap["time"] == "2026-01-05T08:30"
    assert set(snap["rooms"]) == set(home.home.rooms)
    devs = {(r, n) for r, room in snap["rooms"].items() for n in room["devices"]}
    assert devs == set(home.home.targets)
    assert set(snap["people"]) == set(home.world.users)
    states = home.device_states()  # the true state, the same as the snapshot's, as a copy
    assert states == {(r, n): {k: v for k, v in dev.items() if k != "type"}
                      for r, room in snap["rooms"].items() for n, dev in room["devices"].items()}
    next(iter(states.values())).clear()
    assert home.device_states() != states
    with pytest.raises(ValueError, match="already at"):
        home.advance(datetime(2026, 1, 5, 8, 0))


def test_illegal_apply_raises_and_changes_nothing(home):
    home.advance(datetime(2026, 1, 5, 19, 0))
    before = (home.snapshot(), len(home.log.operations), len(home.log.events))
    d = home.home.devices[0]
    bad = [
        (Action("attic", "light", "power", "on"),),  # no such device
        (Action(d.room, d.name, "no_such_field", "on"),),
        (Action(d.room, d.name, "power", "on"), Action("attic", "light", "power", "on")),  # one bad -> none done
    ]
    for acts in bad:
        with pytest.raises(CatalogError):
            home.apply(acts)
    with pytest.raises(CatalogError, match="at least one"):
        home.apply(())
    assert (home.snapshot(), len(home.log.operations), len(home.log.events)) == before


def test_legal_apply_changes_the_home_and_is_logged(home):
    home.advance(datetime(2026, 1, 5, 19, 0))
    light = next(d for d in home.home.devices if d.type in ("light", "wall_switch", "smart_plug", "tv", "ac"))
    want = "off" if home.world.state[light.target]["power"] == "on" else "on"
    acts = (Action(light.room, light.name, "power", want),)
    j = home.judge(acts, "")
    assert 0.0 < j.p < 1.0
    op = home.apply(acts, "switch it")
    assert op.source == "app" and op.logged and home.log.operations[-1] is op
    assert home.snapshot()["rooms"][light.room]["devices"][light.name]["power"] == want
    assert home.world.timeline.ops[-1].cause == "recommendation"
    with pytest.raises(ValueError, match="not a resident"):
        home.apply(acts, user="stranger")

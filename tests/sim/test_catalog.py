"""The catalogue: coverage of the device zoo, validation errors, equivalence, inverses, HA calls."""

import json

import pytest

from sim import catalog
from sim.catalog import CatalogError

REQUIRED = ("light", "wall_switch", "smart_plug", "ac", "bath_warmer", "curtain", "camera", "humidifier",
            "dehumidifier", "air_purifier", "fan", "heater", "water_heater", "tv", "speaker", "robot_vacuum",
            "washer", "lock", "kettle", "fridge")


def test_at_least_twenty_types_including_the_required_ones():
    assert len(catalog.DEVICE_TYPES) >= 20
    assert set(REQUIRED) <= set(catalog.DEVICE_TYPES)
    for cat in catalog.REPORT_CATEGORIES:
        assert any(t.category == cat for t in catalog.DEVICE_TYPES.values()), cat


def test_every_field_default_is_legal_and_grid_is_legal():
    for t in catalog.DEVICE_TYPES.values():
        assert t.fields, t.name
        for f in t.fields.values():
            assert f.allows(f.default), (t.name, f.name)
            grid = f.grid()
            assert grid and all(f.allows(v) for v in grid)


def test_high_frequency_flag_sets_the_conflict_window():
    assert catalog.conflict_window_s("light") == 120
    assert catalog.conflict_window_s("wall_switch") == 120
    assert catalog.conflict_window_s("ac") == 600
    assert catalog.conflict_window_s("curtain") == 600


@pytest.mark.parametrize("args, words", [
    (("toaster", "power", "on"), ["unknown device type 'toaster'", "light"]),
    (("ac", "colour", "red"), ["no field 'colour'", "target_temperature"]),
    (("ac", "target_temperature", "45"), ["'45'", "16..30 step 1 C"]),
    (("ac", "target_temperature", "26.5"), ["'26.5'", "step 1"]),
    (("ac", "mode", "turbo"), ["'turbo'", "cool, heat"]),
])
def test_validation_errors_name_the_problem_and_the_allowed_values(args, words):
    with pytest.raises(CatalogError) as e:
        catalog.validate(*args)
    for w in words:
        assert w in str(e.value)


def test_format_value_is_canonical():
    assert catalog.format_value(26.0) == "26"
    assert catalog.format_value(22.49) == "22.5"
    assert catalog.is_legal("ac", "target_temperature", "26")
    assert not catalog.is_legal("ac", "target_temperature", "26.0")  # one spelling per number


def test_functional_equivalence_from_the_paper():
    # App. B: "Turn on bedroom AC" ~ "Set bedroom AC to 26"; brightness 50 implies on.
    assert catalog.functionally_equivalent("ac", ("power", "on"), ("target_temperature", "26"))
    assert catalog.functionally_equivalent("ac", ("target_temperature", "26"), ("power", "on"))
    assert catalog.functionally_equivalent("light", ("power", "on"), ("brightness", "50"))
    assert catalog.functionally_equivalent("curtain", ("position", "100"), ("action", "open"))
    assert not catalog.functionally_equivalent("curtain", ("position", "0"), ("action", "open"))
    assert not catalog.functionally_equivalent("ac", ("power", "off"), ("target_temperature", "26"))
    # Two different temperatures are not equivalent (numeric closeness is a separate rule).
    assert not catalog.functionally_equivalent("ac", ("target_temperature", "20"), ("target_temperature", "26"))


def test_inverse_pairs():
    assert catalog.inverse("light", "power", "on") == ("power", "off")
    assert catalog.inverse("lock", "lock", "unlocked") == ("lock", "locked")
    assert catalog.inverse("curtain", "action", "close") == ("action", "open")
    assert catalog.inverse("ac", "target_temperature", "26") == ("power", "off")
    assert catalog.inverse("fridge", "target_temperature", "4") is None
    assert catalog.is_inverse("light", ("brightness", "50"), ("power", "off"))


def test_numeric_close_uses_the_label_as_reference():
    # 24 vs 28: |24-28|/28 = 0.143 <= 0.2 ; |28-24|/24 = 0.167 <= 0.2 -> close either way
    assert catalog.numeric_close("ac", ("target_temperature", "24"), ("target_temperature", "28"))
    assert catalog.numeric_close("ac", ("target_temperature", "28"), ("target_temperature", "24"))
    # 20 vs 26: |20-26|/26 = 0.23 > 0.2
    assert not catalog.numeric_close("ac", ("target_temperature", "20"), ("target_temperature", "26"))
    assert not catalog.numeric_close("ac", ("mode", "cool"), ("mode", "heat"))


def test_device_buckets():
    assert [catalog.device_bucket(n) for n in (1, 5, 6, 10, 11, 20, 21, 60)] == [
        "1-5", "1-5", "6-10", "6-10", "11-20", "11-20", "20+", "20+"]
    with pytest.raises(CatalogError):
        catalog.device_bucket(0)


def test_type_of_device_name():
    assert catalog.type_of_device_name("light_2") == "light"
    assert catalog.type_of_device_name("bath_warmer") == "bath_warmer"
    assert catalog.type_of_device_name("my_lamp") is None


def _every_setting():
    for t in catalog.DEVICE_TYPES.values():
        for f in t.fields.values():
            values = f.grid() if not f.is_numeric else (f.default, f.grid()[0], f.grid()[len(f.grid()) // 3], f.grid()[-1])
            for v in dict.fromkeys(values):
                yield t.name, f.name, v


@pytest.mark.parametrize("type_name, field_name, value", list(_every_setting()))
def test_every_field_builds_a_home_assistant_service_call(type_name, field_name, value):
    call = catalog.ha_service_call(type_name, field_name, value, f"x.{type_name}")
    assert call.domain and call.service and call.entity_id == f"x.{type_name}" and "entity_id" not in call.data
    spec = catalog.device_type(type_name).field(field_name)
    if spec.is_numeric:
        # the value travels in the mapped attribute, scaled (volume 0-100 -> 0-1)
        assert call.data[spec.ha.attribute] == pytest.approx(float(value) * spec.ha.scale)


@pytest.mark.parametrize("type_name, field_name, value", list(_every_setting()))
def test_service_calls_parse_back_to_the_same_setting(type_name, field_name, value):
    """ha_service_call -> JSON text -> ServiceCall.from_json -> actions_from_ha_call is the identity, on the
    derived entity id of a synthetic home and on a real imported entity of another domain."""
    entity = catalog.ha_entity_id(type_name, field_name, "living_room", f"{type_name}_2")
    call = catalog.ha_service_call(type_name, field_name, value, entity)
    back = catalog.ServiceCall.from_json(json.loads(json.dumps(call.to_json())))
    assert back == call
    assert catalog.actions_from_ha_call(type_name, back) == ((field_name, value),)
    # the entity lives in the field's domain: HA would refuse a service of another domain on it
    assert back.entity_id.partition(".")[0] == back.domain == catalog.device_type(type_name).field(field_name).ha.domain
    real = catalog.ha_entity_id(type_name, field_name, "living_room", "x", known=("switch.real_plug",))
    call = catalog.ha_service_call(type_name, field_name, value, real)
    assert catalog.actions_from_ha_call(type_name, catalog.ServiceCall.from_json(call.to_json())) == ((field_name, value),)


def test_every_value_of_the_whole_grid_round_trips():
    n = 0
    for t in catalog.DEVICE_TYPES.values():
        for f in t.fields.values():
            entity = catalog.ha_entity_id(t.name, f.name, "hallway", t.name)
            for v in f.grid():
                call = catalog.ServiceCall.from_json(catalog.ha_service_call(t.name, f.name, v, entity).to_json())
                assert catalog.actions_from_ha_call(t.name, call) == ((f.name, v),), (t.name, f.name, v)
                n += 1
    assert n > 2 * len(list(_every_setting()))  # every numeric step (675 settings), not the sample


def test_home_assistant_entity_ids():
    e = catalog.ha_entity_id
    assert e("light", "brightness", "bedroom", "light_2") == "light.bedroom_light_2"
    # fields HA models as entities of their own (documented in README and HA_OWN_ENTITY_FIELDS)
    assert e("washer", "power", "laundry", "washer") == "switch.laundry_washer"
    assert e("washer", "program", "laundry", "washer") == "select.laundry_washer_program"
    assert e("fridge", "target_temperature", "kitchen", "fridge") == "number.kitchen_fridge_target_temperature"
    assert catalog.HA_OWN_ENTITY_FIELDS[("fridge", "mode")] == ("select", "mode")
    assert all(catalog.device_type(t).field(f).ha.domain == d for (t, f), (d, _) in catalog.HA_OWN_ENTITY_FIELDS.items())
    # real ids win: the one in the field's domain; power of a device on another domain's entity
    assert e("light", "power", "bedroom", "ceiling", ("light.bedroom_ceiling",)) == "light.bedroom_ceiling"
    assert e("kettle", "power", "kitchen", "kettle", ("switch.kettle_plug",)) == "switch.kettle_plug"
    c = catalog.ha_service_call("kettle", "power", "on", "switch.kettle_plug")
    assert (c.name, dict(c.data)) == ("homeassistant.turn_on", {})
    assert e("washer", "program", "laundry", "w", ("switch.washer", "select.washer_program")) == "select.washer_program"
    assert e("washer", "program", "laundry", "w", ("switch.washer",)) == "select.washer_program"  # derived from the real one
    assert e("light", "power", "Kids Room", "Lamp #1") == "light.kids_room_lamp_1"


def test_fan_oscillate_on_and_off_are_different_calls():
    on = catalog.ha_service_call("fan", "oscillate", "on", "fan.f")
    off = catalog.ha_service_call("fan", "oscillate", "off", "fan.f")
    assert on.to_json() == {"service": "fan.oscillate", "target": {"entity_id": "fan.f"}, "data": {"oscillating": True}}
    assert off.to_json()["data"] == {"oscillating": False}


def test_parsing_real_home_assistant_calls():
    parse = lambda t, obj: catalog.actions_from_ha_call(t, catalog.ServiceCall.from_json(obj))  # noqa: E731
    assert parse("light", {"action": "light.turn_on", "target": {"entity_id": "light.x"},
                           "data": {"brightness_pct": 40, "color_temp_kelvin": 3000}}) == (
        ("brightness", "40"), ("color_temp", "3000"))
    assert parse("light", {"service": "light.turn_on", "data": {"entity_id": "light.x"}}) == (("power", "on"),)
    assert parse("tv", {"service": "media_player.volume_set", "target": {"entity_id": ["media_player.tv"]},
                        "data": {"volume_level": 0.25}}) == (("volume", "25"),)
    with pytest.raises(CatalogError, match="brightness_pct=250 is not a light.brightness value"):
        parse("light", {"service": "light.turn_on", "target": {"entity_id": "light.x"}, "data": {"brightness_pct": 250}})
    with pytest.raises(CatalogError, match="climate.set_temperature sets nothing a light has"):
        parse("light", {"service": "climate.set_temperature", "target": {"entity_id": "climate.x"},
                        "data": {"temperature": 20}})
    with pytest.raises(CatalogError, match="needs one target entity_id"):
        catalog.ServiceCall.from_json({"service": "light.turn_on"})


def test_known_home_assistant_calls():
    c = catalog.ha_service_call("ac", "target_temperature", "26", "climate.bedroom")
    assert (c.name, dict(c.data)) == ("climate.set_temperature", {"temperature": 26})
    c = catalog.ha_service_call("light", "brightness", "50", "light.desk")
    assert (c.name, c.data["brightness_pct"]) == ("light.turn_on", 50)
    assert catalog.ha_service_call("light", "power", "off", "light.desk").name == "light.turn_off"
    assert catalog.ha_service_call("curtain", "action", "open", "cover.c").name == "cover.open_cover"
    c = catalog.ha_service_call("curtain", "position", "100", "cover.c")
    assert (c.name, c.data["position"]) == ("cover.set_cover_position", 100)
    assert catalog.ha_service_call("lock", "lock", "unlocked", "lock.front").name == "lock.unlock"
    c = catalog.ha_service_call("tv", "volume", "30", "media_player.tv")
    assert (c.name, c.data["volume_level"]) == ("media_player.volume_set", 0.3)
    with pytest.raises(CatalogError):
        catalog.ha_service_call("ac", "target_temperature", "99", "climate.x")

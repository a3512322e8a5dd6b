"""The catalogue: coverage of the device zoo, validation errors, equivalence, inverses, HA calls."""

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
            values = f.grid() if not f.is_numeric else (f.default, f.grid()[0], f.grid()[-1])
            for v in values:
                yield t.name, f.name, v


@pytest.mark.parametrize("type_name, field_name, value", list(_every_setting()))
def test_every_field_builds_a_home_assistant_service_call(type_name, field_name, value):
    call = catalog.ha_service_call(type_name, field_name, value, f"x.{type_name}")
    assert call.domain and call.service and call.data["entity_id"] == f"x.{type_name}"
    spec = catalog.device_type(type_name).field(field_name)
    if spec.is_numeric:
        # the value travels in the mapped attribute, scaled (volume 0-100 -> 0-1)
        assert call.data[spec.ha.attribute] == pytest.approx(float(value) * spec.ha.scale)


def test_known_home_assistant_calls():
    c = catalog.ha_service_call("ac", "target_temperature", "26", "climate.bedroom")
    assert (c.name, dict(c.data)) == ("climate.set_temperature", {"entity_id": "climate.bedroom", "temperature": 26})
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

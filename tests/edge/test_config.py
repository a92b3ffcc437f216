"""Locker configuration files, environment overrides and pin profiles."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helmet_edge.config import load_settings
from helmet_edge.errors import ConfigError
from helmet_edge.profile import load_profile

MINIMAL = 'locker_id = "LK-0001"\n'


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No HELMET_EDGE_* variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.upper().startswith("HELMET_EDGE_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str, name: str = "edge.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_settings_come_from_the_file_with_defaults_for_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        MINIMAL
        + f"""
data_dir = "{tmp_path / "data"}"
[mqtt]
host = "broker.town.example"
tls = true
[timing]
repeat_window_s = 2.5
[passes]
keys = {{ k1 = "ICi5fFUGhBmuih4eBgyH1cAP7Necsfy+/rPsKKW2Gos=" }}
helmet_url_host = "helmets.example.org"
""",
    )
    s = load_settings(path)
    assert s.locker_id == "LK-0001"
    assert s.data_dir == tmp_path / "data"
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls) == ("broker.town.example", 1883, True)
    assert s.timing.repeat_window_s == 2.5
    assert s.timing.unlock_timeout_s == 20.0
    assert s.timing.door_open_fault_s == 90.0
    assert s.passes.keys == {"k1": "ICi5fFUGhBmuih4eBgyH1cAP7Necsfy+/rPsKKW2Gos="}
    assert s.pin_profile == "pi-gpio-6"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL + "lockr_id = 3\n", "lockr_id"),
        (MINIMAL + "[mqtt]\nhots = 'broker'\n", "mqtt.hots"),
        (MINIMAL + "[timing]\nunlock_timeout = 5\n", "timing.unlock_timeout"),
        (MINIMAL + "[camera.extra]\nx = 1\n", "camera.extra"),
    ],
    ids=["top-level", "mqtt", "timing", "section"],
)
def test_unknown_key_fails_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert key in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_bad_value_fails_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_settings(write(tmp_path, MINIMAL + "[mqtt]\nport = 70000\n"))


def test_missing_locker_id_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="locker_id"):
        load_settings(write(tmp_path, "[mqtt]\nhost = 'x'\n"))


def test_bad_locker_id_fails(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="locker_id"):
        load_settings(write(tmp_path, 'locker_id = "helmet locker 1"\n'))


def test_toml_syntax_error_fails_with_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_settings(write(tmp_path, MINIMAL + "[mqtt\nhost = \n"))


def test_missing_file_fails_with_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_environment_overrides_one_nested_key_and_keeps_the_file_for_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, MINIMAL + "[mqtt]\nhost = 'broker.town.example'\nport = 1883\n")
    monkeypatch.setenv("HELMET_EDGE_MQTT__PORT", "8883")
    s = load_settings(path)
    assert s.mqtt.port == 8883
    assert s.mqtt.host == "broker.town.example"


def test_environment_typo_in_a_section_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELMET_EDGE_MQTT__PROT", "8883")
    with pytest.raises(ConfigError, match=r"mqtt\.prot"):
        load_settings(write(tmp_path, MINIMAL))


def test_bad_environment_value_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELMET_EDGE_MQTT__PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_settings(write(tmp_path, MINIMAL))


def test_explicit_overrides_win(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, MINIMAL), locker_id="LK-0002")
    assert s.locker_id == "LK-0002"


# -- pin profiles ----------------------------------------------------------------------

PROFILE = """
name = "test-2"
led = "GPIO12"
[[slots]]
slot = 1
lock = "GPIO5"
door = "GPIO17"
presence = "GPIO27"
[[slots]]
slot = 2
lock = "GPIO6"
door = "GPIO22"
presence = "{presence2}"
"""


def test_bundled_profile_loads_with_every_pin_distinct() -> None:
    p = load_profile("pi-gpio-6")
    assert [s.slot for s in p.slots] == [1, 2, 3, 4, 5, 6]
    pins = [x for s in p.slots for x in (s.lock, s.door, s.presence)] + [p.led, p.buzzer]
    assert len(pins) == len(set(pins)) == 20
    assert p.lock_active_high is True
    assert p.door_closed_level == "low"


def test_profile_file_loads(tmp_path: Path) -> None:
    p = load_profile(str(write(tmp_path, PROFILE.format(presence2="GPIO23"), "p.toml")))
    assert (p.name, len(p.slots), p.slots[1].presence) == ("test-2", 2, "GPIO23")


@pytest.mark.parametrize("dupe", ["GPIO5", "GPIO17", "GPIO12"], ids=["lock", "door", "led"])
def test_profile_with_a_pin_used_twice_is_refused(tmp_path: Path, dupe: str) -> None:
    path = write(tmp_path, PROFILE.format(presence2=dupe), "p.toml")
    with pytest.raises(ConfigError, match=f"pins used twice: {dupe}"):
        load_profile(str(path))


def test_profile_with_slots_out_of_order_is_refused(tmp_path: Path) -> None:
    text = PROFILE.format(presence2="GPIO23").replace("slot = 2", "slot = 3")
    with pytest.raises(ConfigError, match="numbered"):
        load_profile(str(write(tmp_path, text, "p.toml")))


def test_profile_with_unknown_key_is_refused(tmp_path: Path) -> None:
    text = PROFILE.format(presence2="GPIO23").replace("led =", "lock_active_hihg = false\nled =", 1)
    with pytest.raises(ConfigError, match="lock_active_hihg"):
        load_profile(str(write(tmp_path, text, "p.toml")))


def test_unknown_profile_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown pin profile"):
        load_profile("pi-gpio-99")


def test_missing_profile_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_profile(str(tmp_path / "nope.toml"))


def test_an_unknown_key_error_points_at_its_line(tmp_path: Path) -> None:
    cfg = tmp_path / "edge.toml"
    cfg.write_text('locker_id = "LK-0001"\n\n[mqtt]\nhost = "broker"\nprot = 8883\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert f"{cfg}:5: mqtt.prot: Extra inputs are not permitted" in str(info.value)


def test_the_examples_placeholder_password_is_refused(tmp_path: Path) -> None:
    """hardware/config.example.toml once shipped `password = "change-me"`: a Pi must not run on it."""
    path = tmp_path / "config.toml"
    path.write_text('locker_id = "LK-0001"\n[mqtt]\nusername = "LK-0001"\npassword = "change-me"\n')
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings(path)

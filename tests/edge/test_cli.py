"""``helmet-edge selftest`` and ``status`` as a technician runs them on site."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helmet_sim.broker import Broker

BIN = Path(sys.executable).parent / "helmet-edge"


def run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # gpiozero's mock pins stand in for the header: every sensor line floats high (pulled up).
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    return subprocess.run([BIN, *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def write_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(f'locker_id = "LK-0001"\ndata_dir = "{tmp_path}/data"\n')
    return cfg


def test_selftest_with_no_sensors_wired_reports_every_door_open(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = run("selftest", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["slot", "state", "door", "helmet", "lock", "result"]
    assert sum("door reads open" in line for line in lines[1:7]) == 6
    assert all(" ok " in line for line in lines[1:7])  # every lock output followed
    status = json.loads(run("status", "--config", str(cfg), tmp_path=tmp_path).stdout)
    # The self-test was recorded as an event, waiting in the outbox for the cloud.
    assert (status["last_seq"], status["acked_seq"], status["outbox"]) == (1, 0, 1)
    assert [s["state"] for s in status["slots"]] == ["empty"] * 6


def test_a_config_typo_names_the_key_and_exits_2(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + "[mqtt]\nhots = 'broker'\n")
    result = run("status", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "mqtt.hots" in result.stderr and "Extra inputs are not permitted" in result.stderr


def test_an_expander_profile_without_an_expander_driver_exits_2_with_the_reason(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + 'pin_profile = "pi-mcp23017-12"\n')
    result = run("run", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: pin profile pi-mcp23017-12 puts slots on MCP23017 expanders")
    assert "Traceback" not in result.stderr


# -- the first hour: one line for what a new user gets wrong ----------------------------------------------


def without_pin_factory() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}


def test_run_on_a_machine_without_gpio_says_so_in_one_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    result = subprocess.run([BIN, "run", "--config", str(cfg)], env=without_pin_factory(), capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: no GPIO pin factory loads (lgpio: ")
    assert 'pin_factory = "mock"' in lines[0] and "helmet-sim locker" in lines[0]


def test_a_pin_factory_that_does_not_exist_is_named(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + 'pin_factory = "lgpoi"\n')
    result = run("run", "--config", str(cfg), tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: pin_factory 'lgpoi' is not a gpiozero pin factory (known: lgpio, mock, native, pigpio, rpigpio)"
    )


def test_run_with_a_mistyped_config_path_stops_at_once(tmp_path: Path) -> None:
    """It used to fall into first-boot enrolment and log the missing camera every second, forever."""
    result = run("run", "--config", str(tmp_path / "edge.tmol"), tmp_path=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: config file {tmp_path / 'edge.tmol'} does not exist (hardware/config.example.toml is a start)"
    )


def test_scan_says_no_such_file_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    result = run("scan", str(tmp_path / "missing.png"), str(tmp_path / "notes.txt"), tmp_path=tmp_path)
    assert result.returncode == 1
    assert [json.loads(line)["error"] for line in result.stdout.splitlines()] == [
        "no such file",
        "not an image OpenCV can read",
    ]
    assert result.stderr == ""  # no OpenCV warning, no pyzbar warning


def test_a_locker_without_a_camera_says_so_once_and_keeps_running(tmp_path: Path, mosquitto: Broker) -> None:
    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text()
        + f'pin_factory = "mock"\n[mqtt]\nport = {mosquitto.port}\n[camera]\ndevice = "/dev/no-such-video"\n'
    )
    proc = subprocess.Popen([BIN, "run", "--config", str(cfg)], env=without_pin_factory(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(6)  # the camera is tried at 0, 1, 3 s ...
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    camera = [line for line in err.splitlines() if "camera" in line.lower()]
    opened = [line for line in camera if "cannot be opened" in line]
    assert len(opened) == 1, err
    assert "camera /dev/no-such-video cannot be opened (is it connected, and is camera.device right?)" in opened[0]
    assert "[ WARN" not in err and "Traceback" not in err  # OpenCV's own warnings are silenced
    assert "connected to 127.0.0.1" in err  # the locker runs on without its camera


@pytest.mark.filterwarnings("ignore:'click.utils.:DeprecationWarning")  # typer's import, on the Click here
def test_the_cli_drives_the_slots_through_the_pin_factory_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The composition root passes ``pin_factory=`` to every device; gpiozero's global default stays unset."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    from helmet_edge.cli import _slot_bank
    from helmet_edge.config import EdgeSettings
    from helmet_edge.profile import load_profile

    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    monkeypatch.setattr(Device, "pin_factory", None)
    settings = EdgeSettings(locker_id="LK-0001", data_dir=tmp_path, pin_factory="mock")
    bank = _slot_bank(settings, load_profile("pi-gpio-6"))
    try:
        assert isinstance(bank.pin_factory, MockFactory)
        devices = [*bank._locks.values(), *bank._doors.values(), *bank._present.values(), bank._led, bank._buzzer]
        assert all(d is not None and d.pin_factory is bank.pin_factory for d in devices)
        assert Device.pin_factory is None
    finally:
        bank.close()
        bank.pin_factory.reset()


def test_a_slot_bank_needs_its_pin_factory() -> None:
    from helmet_edge.profile import load_profile
    from helmet_edge.slots_gpiozero import GpioSlotBank

    with pytest.raises(TypeError, match="pin_factory"):
        GpioSlotBank(load_profile("pi-gpio-6"))  # type: ignore[call-arg]


def test_selftest_runs_on_the_pin_factory_in_the_config_file(tmp_path: Path) -> None:
    """A dry run: no GPIOZERO_PIN_FACTORY, no GPIO on this machine; only the config's pin_factory makes it work."""
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text() + 'pin_factory = "mock"\n')
    result = subprocess.run([BIN, "selftest", "--config", str(cfg)], env=without_pin_factory(), capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 1, result.stderr  # it ran: every door reads open on unwired mock pins
    assert sum("door reads open" in line for line in result.stdout.splitlines()[1:7]) == 6

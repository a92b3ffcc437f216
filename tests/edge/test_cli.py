"""``helmet-edge selftest`` and ``status`` as a technician runs them on site."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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

"""``helmet-cloud`` on the command line: structured logs and clear errors for bad settings."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from support.processes import BIN


def run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "HELMET_DATABASE_URL": f"sqlite:///{tmp_path}/cloud.db", **env}
    return subprocess.run([BIN / "helmet-cloud", *args], env=full, capture_output=True, text=True, timeout=60)


def test_json_logs_are_one_object_per_line(tmp_path: Path) -> None:
    done = run(tmp_path, "migrate", HELMET_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]
    assert lines and all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)


def test_a_bad_setting_stops_the_command_with_a_clear_message(tmp_path: Path) -> None:
    done = run(tmp_path, "migrate", HELMET_LOG_FORMAT="xml")
    assert done.returncode == 2
    assert "log_format" in done.stderr and "bad setting" in done.stderr
    assert not (tmp_path / "cloud.db").exists()  # nothing was done

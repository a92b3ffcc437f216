"""What a private Mosquitto says about itself in its $SYS tree (start it with ``sys_interval 1``)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest


def sys_value(port: int, name: str) -> int:
    """One figure of the broker's $SYS tree, read with mosquitto_sub (no client left open in the test)."""
    sub = shutil.which("mosquitto_sub")
    if sub is None:
        pytest.skip("mosquitto_sub is not installed (mosquitto-clients)")
    got = subprocess.run(
        [sub, "-h", "127.0.0.1", "-p", str(port), "-t", f"$SYS/broker/{name}", "-C", "1", "-W", "10"],
        capture_output=True, text=True, timeout=20, check=True,
    )  # fmt: skip
    return int(got.stdout.strip())


def gone_sessions(port: int) -> int:
    """Persistent sessions whose client is not connected (Mosquitto's ``clients/disconnected``)."""
    time.sleep(1.5)  # one sys_interval after the last change
    return sys_value(port, "clients/disconnected")

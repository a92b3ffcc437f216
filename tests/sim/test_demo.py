"""The README's first command: the demo starts, its URLs answer, and the town moves."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from helmet_sim.broker import free_port

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_prints_urls_that_answer_and_helmets_move(tmp_path: Path, broker: str) -> None:
    port = free_port()
    cmd = [
        Path(sys.executable).parent / "helmet-sim",
        "demo",
        "--port",
        str(port),
        "--workdir",
        str(tmp_path / "demo"),
        "--duration",
        "15",
        "--broker",
        broker,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output: list[str] = []
    url = None
    deadline = time.monotonic() + 120
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        found = re.search(r"http://127\.0\.0\.1:\d+/api/stations", line)
        url = found.group(0) if found else None
    assert url, "".join(output)
    stations = httpx.get(url, timeout=10).json()
    assert len(stations) == 3
    assert sum(s["helmets_available"] for s in stations) == 12
    assert httpx.get(url.replace("/api/stations", "/docs"), timeout=10).status_code == 200
    rest, _ = proc.communicate(timeout=120)
    output.append(rest)
    assert proc.returncode == 0, "".join(output)
    assert "consistency check: OK" in "".join(output)
    borrowed = [int(n) for n in re.findall(r"borrowed (\d+)", "".join(output))]
    assert borrowed and max(borrowed) > 0, "".join(output[-20:])

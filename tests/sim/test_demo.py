"""The README's first command: the demo (a town of 6 stations) starts, its URLs answer, and the town moves."""

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
    cmd: list[str | Path] = [
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
    deadline = time.monotonic() + 180
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        output.append(line)
        found = re.search(r"http://127\.0\.0\.1:\d+/api/stations", line)
        url = found.group(0) if found else None
    assert url, "".join(output)
    text = "".join(output)
    assert "18 helmets in 6 lockers" in text, text
    assert f"staff dashboard: http://127.0.0.1:{port}/staff/" in text
    stations = httpx.get(url, timeout=10).json()
    assert [s["id"] for s in stations] == [f"ST-00{n}" for n in range(1, 7)]
    assert all(s["lockers_online"] == 1 for s in stations)
    assert httpx.get(url.replace("/api/stations", "/docs"), timeout=10).status_code == 200
    rest, _ = proc.communicate(timeout=180)
    output.append(rest)
    assert proc.returncode == 0, "".join(output)
    assert "consistency check: OK" in "".join(output)
    borrowed = [int(n) for n in re.findall(r"helmets borrowed (\d+)", "".join(output))]
    assert borrowed and max(borrowed) > 0, "".join(output[-20:])

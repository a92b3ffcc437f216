"""The README's first command: the demo (a town of 6 stations) starts, its URLs answer, and the town moves."""

from __future__ import annotations

import re
import socket
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
    # Piped (as `make demo | tee log`): set-up progress and the live figures come as plain lines, none wrapped.
    lines = "".join(output).splitlines()
    assert "  lockers stocked: 6/6" in lines
    assert any(re.fullmatch(r"  simulated \w{3} \d\d:\d\d, borrows \d+, returns \d+, .*", line) for line in lines)
    refused = [line for line in lines if line.startswith("- refused as expected:")]
    assert len(refused) == 1 and refused[0].endswith(f"errors {refused[0].rsplit(' ', 1)[-1]}")
    assert len(refused[0]) > 80 and "codes not read" in refused[0]  # one line, not cut at 80 columns


def test_demo_on_a_busy_port_says_so_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        done = subprocess.run(
            [Path(sys.executable).parent / "helmet-sim", "demo", "--port", str(port), "--workdir", str(tmp_path / "d")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 2
    assert time.monotonic() - started < 30  # not the 60 s it once waited for a cloud that could not start
    lines = done.stdout.splitlines()
    assert lines[-1] == (
        f"error: port {port} is not free for the cloud (address already in use): stop what holds it, "
        f"or choose another port with --port {port + 1} (make demo DEMO_ARGS=--port={port + 1})"
    ), done.stdout
    assert "Traceback" not in done.stdout + done.stderr

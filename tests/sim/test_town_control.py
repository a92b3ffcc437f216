"""``helmet-sim town``'s faults from the command line, through the real processes.

A town of three stations on its own Mosquitto and cloud (``helmet-sim town`` as a child process),
steered over its control socket and by ``helmet-sim control``: a locker's cable cut and restored, a
locker killed and restarted on its own data, the town paused and checked, then stopped; started again
with ``--keep`` on the same work directory, it goes on with the same lockers, cloud and residents and
checks consistent again. Every answer carries its request's id; bad requests get an error in words.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.waiting import eventually

from helmet_sim.broker import free_port
from helmet_sim.cloud_client import CloudClient

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# Three stations with two helmets each, six residents making a trip every two simulated hours, x120.
TOWN = ["--stations", "3", "--slots", "6", "--residents", "6", "--fill", "0.34", "--trips-per-day", "12",
        "--forgers", "0", "--replayers", "0", "--keepers", "0", "--door-leavers", "0",
        "--speed", "120", "--hours", "0", "--seed", "4", "--broker", "mosquitto"]  # fmt: skip


class TownProcess:
    """``helmet-sim town`` with its output collected line by line, and a connection to its control socket."""

    def __init__(self, workdir: Path, *extra: str) -> None:
        self.workdir = workdir
        self.proc = subprocess.Popen(
            [BIN / "helmet-sim", "town", *TOWN, "--workdir", str(workdir), "--port", str(free_port()), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.lines: list[str] = []
        self.collector = threading.Thread(target=self._collect, daemon=True)
        self.collector.start()
        self.sock: socket.socket | None = None

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 90) -> None:
        eventually(lambda: "control: helmet-sim control" in self.output or self.proc.poll() is not None, timeout)
        assert self.proc.poll() is None, self.output
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(self.workdir / "control.sock"))
        self.stream = self.sock.makefile("rw")

    def ask_line(self, line: str) -> dict[str, Any]:
        self.stream.write(line + "\n")
        self.stream.flush()
        answer: dict[str, Any] = json.loads(self.stream.readline())
        return answer

    def ask(self, **request: Any) -> dict[str, Any]:
        return self.ask_line(json.dumps(request))

    def locker(self, locker_id: str) -> dict[str, Any]:
        lockers = self.ask(op="status")["lockers"]
        return next(lk for lk in lockers if lk["locker"] == locker_id)

    def wait_end(self, timeout: float = 150) -> int:
        code = self.proc.wait(timeout=timeout)
        self.collector.join(timeout=10)  # the last lines
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.collector.join(timeout=10)
        if self.sock is not None:
            self.stream.close()
            self.sock.close()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def control(workdir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """``helmet-sim control --workdir W ...``: its exit code and its answer."""
    done = subprocess.run(
        [BIN / "helmet-sim", "control", "--workdir", str(workdir), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    if not (shutil.which("mosquitto") or Path("/usr/sbin/mosquitto").exists()):
        pytest.skip("mosquitto is not installed")
    yield tmp_path / "town"


def test_faults_from_the_command_line_and_a_kept_town_end_consistent(workdir: Path) -> None:
    town = TownProcess(workdir)
    try:
        town.wait_ready()
        status = town.ask(id="s1", op="status")
        assert status["id"] == "s1" and status["ok"] and status["paused"] is False
        assert [(lk["locker"], lk["running"], lk["cable"]) for lk in status["lockers"]] == [
            (f"LK-000{n}", True, "plugged") for n in (1, 2, 3)
        ]

        # Bad requests: an error in words, the id where there was one, and the channel goes on.
        assert town.ask_line("cut LK-0001")["error"].startswith("not JSON")
        assert town.ask(id=7, op="explode") == {"id": 7, "ok": False, "error": town.ask(op="explode")["error"]}
        assert "unknown op 'explode'; the ops: status, cut" in town.ask(op="explode")["error"]
        assert town.ask(id=8, op="cut")["error"].startswith('missing "locker"')
        assert town.ask(id=9, op="kill", locker="LK-0099") == {
            "id": 9, "ok": False,
            "error": "no locker 'LK-0099' in this town (lockers LK-0001..LK-0003, or their station ids or numbers)",
        }  # fmt: skip
        assert town.ask(id=10, op="restart", locker="ST-002")["error"] == "LK-0002 is running: kill it first"
        assert town.ask(id=11, op="pause", timeout="soon")["error"] == "'timeout' must be a number, not \"soon\""
        assert town.ask(id=12, op="status")["ok"]

        # LK-0001's cable, from the command line: its connection dies and stays dead until restored.
        code, answer = control(workdir, "cut", "LK-0001", "--id", "c1")
        assert (code, answer) == (0, {"id": "c1", "ok": True, "locker": "LK-0001", "cable": "cut"})
        eventually(lambda: not town.locker("LK-0001")["connected"], timeout=15)

        # LK-0002 loses power (between two visits) and boots again on its own files.
        events = town.locker("LK-0002")["events"]
        killed = town.ask(id="k1", op="kill", locker="LK-0002")
        assert killed == {"id": "k1", "ok": True, "locker": "LK-0002", "running": False, "events": events}
        assert town.locker("LK-0002")["running"] is False
        assert town.ask(id="k2", op="kill", locker=2)["error"] == "LK-0002 is already killed: restart it"
        time.sleep(3)  # residents find its kiosk dark meanwhile
        restarted = town.ask(id="k3", op="restart", locker="LK-0002")
        assert restarted == {"id": "k3", "ok": True, "locker": "LK-0002", "running": True, "connected": True}
        assert town.locker("LK-0002")["events"] >= events  # nothing it had recorded is gone

        assert town.ask(id="c2", op="restore", locker="LK-0001") == {
            "id": "c2", "ok": True, "locker": "LK-0001", "cable": "plugged"
        }  # fmt: skip
        eventually(lambda: town.locker("LK-0001")["connected"], timeout=40)

        paused = town.ask(id="p1", op="pause")
        assert paused["id"] == "p1" and paused["paused"] and paused["acting"] == 0, paused
        frozen = town.ask(op="status")["figures"]["simulated"]
        check = town.ask(id="x1", op="check", timeout=40)
        assert check["id"] == "x1" and check["consistent"], check
        assert check["problems"] == [] and check["paused_for_check"] is False
        assert town.ask(op="status")["figures"]["simulated"] == frozen  # still
        recorded = check["events"]
        resumed = town.ask(id="r1", op="resume")
        assert resumed["id"] == "r1" and resumed["ok"] and resumed["paused"] is False

        # Only the lockers that were cut or killed went offline (the cable once dropped quiet links every 5 s).
        staff = CloudClient(re.findall(r"(http://127\.0\.0\.1:\d+)/staff/", town.output)[0])
        staff.login(*re.findall(r"staff login: (\S+) / (\S+)", town.output)[0])
        offline = {a["subject_id"] for a in staff.alerts(kind="locker_offline")}
        staff.close()
        assert "LK-0003" not in offline and "LK-0001" in offline, offline

        assert town.ask(id="z", op="stop") == {"id": "z", "ok": True, "stopping": True}
        assert town.wait_end() == 0, town.output
        assert "consistency check: OK (3 lockers" in town.output, town.output
        assert "before the check" not in town.output  # every fault had been restored
        first = int(re.findall(r"events recorded by the lockers: (\d+)", town.output)[-1])
        assert first >= recorded
        assert not (workdir / "control.sock").exists()
    finally:
        town.close()

    # Again on the kept work directory: the same cloud, lockers and residents go on.
    kept = json.loads((workdir / "town.json").read_text())
    assert len(kept["residents"]) == 6 and kept["tally"]["trips"] >= 1
    again = TownProcess(workdir, "--keep")
    try:
        again.wait_ready()
        assert f"going on with the town kept in {workdir}" in again.output
        assert "6 helmets in 3 lockers" in again.output
        lockers = again.ask(op="status")["lockers"]
        assert sum(lk["events"] for lk in lockers) >= first  # the lockers' stores, not new ones
        code, answer = control(workdir, "check", "--id", "x2", "--timeout", "40")
        assert code == 0 and answer["id"] == "x2" and answer["consistent"], answer
        assert again.ask(id="z2", op="stop")["stopping"]
        assert again.wait_end() == 0, again.output
        assert "consistency check: OK (3 lockers" in again.output, again.output
    finally:
        again.close()

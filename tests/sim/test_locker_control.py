"""``helmet-sim locker``'s control channel, through the real process on a real Mosquitto.

Every answer carries the request's id; a bad request gets an error in words and the process goes
on serving; the locker's own cable cuts its MQTT connection until restored; ``kill`` cuts its
power (the process goes on) and ``restart`` boots it on its own data.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import LockerProcess
from support.waiting import eventually

from helmet_sim.broker import Broker


@pytest.fixture
def locker(tmp_path: Path, mosquitto: Broker) -> Iterator[LockerProcess]:
    process = LockerProcess("LK-0001", tmp_path / "lockers", mosquitto.port)
    yield process
    if process.proc.poll() is None:
        process.stop()
    else:  # it ended on "quit"
        process._reap()


def test_bad_requests_get_an_error_with_their_id_and_the_process_keeps_serving(locker: LockerProcess) -> None:
    first = locker.ask(id=1, op="state")
    assert list(first)[:2] == ["id", "ok"] and first["id"] == 1 and first["ok"] is True
    for line, error in [
        ('{"op": "state"', "not JSON"),
        ("[1, 2]", "a request is a JSON object"),
        ('{"id": 2}', 'the request has no "op"'),
    ]:
        answer = locker.ask_line(line)
        assert answer["ok"] is False and error in answer["error"], answer
        assert "Traceback" not in answer["error"]
    assert locker.ask_line('{"id": 7, "op": 3}')["id"] == 7  # an answer names its request whenever it can
    answer = locker.ask(id="x", op="fly")
    assert answer == {"id": "x", "ok": False, "error": answer["error"]}
    assert "unknown op 'fly'" in answer["error"] and "cable" in answer["error"]  # it names the ops
    assert locker.ask(id=3, op="take", count="two") == {
        "id": 3, "ok": False, "error": "'count' must be a whole number, not \"two\""
    }  # fmt: skip
    assert locker.ask(id=4, op="show")["error"] == "missing 'text'"
    unplugged = locker.ask(id=5, op="cable", state="unplugged")
    assert unplugged["error"] == '"state" must be "cut" or "restore", not "unplugged"'
    assert locker.ask(id=6, op="restart")["error"] == "LK-0001 is running: kill it first"
    assert locker.ask(id={"run": 7}, op="help")["id"] == {"run": 7}  # any JSON value is an id
    state = locker.ask(id=8, op="state")
    assert state["id"] == 8 and state["ok"] and state["connected"] and state["cable"] == "plugged"
    assert locker.proc.poll() is None


def test_cable_cut_and_restored_then_killed_and_restarted_on_its_own_data(locker: LockerProcess) -> None:
    assert locker.ask(id="c1", op="cable", state="cut") == {"id": "c1", "ok": True, "cable": "cut"}
    eventually(lambda: not locker.ask(op="state")["connected"], timeout=10)
    time.sleep(3)  # reconnecting fails while the cable is out (paho tries again after 1 s, 2 s, ...)
    assert locker.ask(op="state")["connected"] is False
    assert locker.ask(id="c2", op="restore") == {"id": "c2", "ok": True, "cable": "plugged"}
    eventually(lambda: locker.ask(op="state")["connected"], timeout=20)

    before = locker.ask(op="state")
    killed = locker.ask(id="k1", op="kill")
    assert killed == {"id": "k1", "ok": True, "running": False, "last_seq": before["last_seq"]}
    state = locker.ask(id="k2", op="state")
    assert state["running"] is False and "connected" not in state and state["helmets"] == before["helmets"]
    assert locker.ask(id="k3", op="kill")["error"] == "LK-0001 is killed: restart it first"
    restarted = locker.ask(id="k4", op="restart")
    assert restarted["id"] == "k4" and restarted["running"] and restarted["connected"], restarted
    assert restarted["last_seq"] >= before["last_seq"]  # the same store: nothing it had recorded is gone
    assert locker.ask(op="state")["pass_keys"] == before["pass_keys"]
    assert locker.ask(id="q", op="quit") == {"id": "q", "ok": True}
    assert locker.proc.wait(timeout=15) == 0


def test_without_a_cable_the_locker_connects_directly_and_says_there_is_none_to_pull(
    tmp_path: Path, mosquitto: Broker
) -> None:
    locker = LockerProcess("LK-0002", tmp_path / "lockers", mosquitto.port, extra_args=["--no-cable"])
    try:
        state = locker.ask(id=1, op="state")
        assert state["connected"] and state["cable"] == "none"
        assert locker.ask(id=2, op="cut") == {
            "id": 2, "ok": False, "error": "this locker has no cable to pull: it was started with --no-cable"
        }  # fmt: skip
    finally:
        locker.stop()

"""One borrow through real processes: Mosquitto, the cloud, and a simulated locker.

The locker process runs the real edge code on gpiozero mock pins, with a
virtual camera that renders each QR code into a 640x480 frame for the real
decoder. The only ways in are the ones people and lockers use: HTTP and MQTT.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.processes import CloudProcess, LockerProcess
from support.waiting import eventually

from helmet_sim.broker import Broker
from helmet_sim.cloud_client import CloudClient, CloudError

pytestmark = pytest.mark.slow


@pytest.fixture
def town(
    tmp_path: Path, mosquitto: Broker, request: pytest.FixtureRequest
) -> Iterator[tuple[CloudProcess, CloudClient]]:
    env = getattr(request, "param", {})
    cloud = CloudProcess(tmp_path / "cloud", mosquitto.port, f"sqlite:///{tmp_path}/cloud/cloud.db", **env)
    cloud.add_user("tech", "admin", "correct horse")
    client = cloud.start()
    client.login("tech", "correct horse")
    client.create_station("ST-1", "Town hall", 47.37, 8.54)
    client.register_locker("LK-0001", "ST-1", slot_count=6)
    yield cloud, client
    client.close()
    cloud.stop()


@pytest.fixture
def locker(tmp_path: Path, mosquitto: Broker, town: tuple[CloudProcess, CloudClient]) -> Iterator[LockerProcess]:
    """LK-0001 as a locker process, registered in the town's cloud."""
    locker = LockerProcess("LK-0001", tmp_path / "lockers", mosquitto.port)
    yield locker
    locker.stop()


def stock_and_sign_in(
    locker: LockerProcess, town: tuple[CloudProcess, CloudClient], helmets: list[str], *, counted: bool = True
) -> CloudClient:
    """A technician stocks ``helmets`` with their pass, then a resident signs in by SMS code.

    With ``counted``, the resident signs in once the cloud shows the helmets at ST-1.
    """
    cloud, staff = town
    locker.wait_for_keys()
    assert locker.ask(op="show", text=staff.technician_pass(), seconds=1.0)["ok"]
    for helmet in helmets:
        answer = locker.ask(op="insert", helmet_id=helmet)
        assert answer["ok"], answer
    if counted:
        eventually(lambda: staff.station("ST-1")["helmets_available"] == len(helmets))
    return CloudClient(cloud.url).sign_in_resident("+41791234567", cloud.sms_file)


def test_a_resident_borrows_a_helmet_and_the_cloud_shows_the_loan(
    town: tuple[CloudProcess, CloudClient], locker: LockerProcess
) -> None:
    _cloud, staff = town
    resident = stock_and_sign_in(locker, town, ["H-0001", "H-0002"])
    assert staff.station("ST-1")["lockers_online"] == 1

    borrow_pass = resident.request_pass(1, station_id="ST-1")
    assert locker.ask(op="show", text=borrow_pass["text"])["ok"]
    took = locker.ask(op="take", count=1)
    assert took["ok"] and len(took["helmets"]) == 1
    helmet = took["helmets"][0]

    loans = eventually(lambda: resident.loans(status="open"))
    assert [(loan["helmet_id"], loan["pass_id"], loan["borrow_locker_id"]) for loan in loans] == [
        (helmet, borrow_pass["pass_id"], "LK-0001")
    ]
    station = eventually(lambda: (s := staff.station("ST-1"))["helmets_available"] == 1 and s)
    assert station["free_slots"] == 5
    # Every event reached the cloud, so the locker's outbox drained.
    eventually(lambda: locker.ask(op="state")["outbox"] == 0)
    resident.close()


@pytest.mark.parametrize("town", [{"HELMET_INGEST_IN_PROCESS": "false"}], indirect=True)
def test_without_ingest_no_loan_appears_and_the_locker_keeps_its_events(
    town: tuple[CloudProcess, CloudClient], locker: LockerProcess
) -> None:
    _cloud, staff = town
    resident = stock_and_sign_in(locker, town, ["H-0001"], counted=False)  # nothing ingests the stocking
    assert locker.ask(op="show", text=resident.request_pass(1)["text"])["ok"]
    assert locker.ask(op="take", count=1)["helmets"] == ["H-0001"]
    state = locker.ask(op="state")
    assert state["helmets"]["1"] is None
    with pytest.raises(AssertionError):
        eventually(lambda: resident.loans(status="open"), timeout=3)
    assert staff.station("ST-1")["helmets_available"] == 0
    # Nothing acknowledged it: stocked + borrowed are still in the outbox, ready to resend.
    assert locker.ask(op="state")["outbox"] >= 2
    resident.close()


def test_open_now_and_technician_commands_reach_the_locker_and_report_back(
    town: tuple[CloudProcess, CloudClient], locker: LockerProcess
) -> None:
    _cloud, staff = town
    resident = stock_and_sign_in(locker, town, ["H-0001", "H-0002"])
    issued = resident.request_pass(1, station_id="ST-1")
    cmd = resident._call("POST", f"/api/passes/{issued['pass_id']}/open", json={"locker_id": "LK-0001"})
    done = eventually(lambda: (c := resident._call("GET", f"/api/commands/{cmd['id']}"))["status"] != "sent" and c)
    assert done["status"] == "ok" and done["result"]["opened"] == [1]
    assert locker.ask(op="take", count=1)["helmets"] == ["H-0001"]
    eventually(lambda: resident.loans(status="open"))

    disable = staff._call("POST", "/api/lockers/LK-0001/commands", json={"op": "disable_slot", "slot": 2})
    eventually(lambda: staff._call("GET", f"/api/commands/{disable['id']}")["status"] == "ok")
    slots = eventually(lambda: (s := staff.locker("LK-0001")["slots"])[1]["state"] == "disabled" and s)
    assert [s["state"] for s in slots] == ["empty", "disabled", "empty", "empty", "empty", "empty"]
    station = staff.station("ST-1")
    assert (station["helmets_available"], station["disabled_slots"]) == (0, 1)
    # A resident cannot see a technician's command.
    with pytest.raises(CloudError, match="404"):
        resident._call("GET", f"/api/commands/{disable['id']}")
    resident.close()

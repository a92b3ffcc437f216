"""Per-locker broker users and the pattern ACL, on a real Mosquitto with dynamic security.

A locker can write only its own topics and read only its own commands, config
and acks; it cannot listen to everything; a decommissioned locker is cut off at
once and cannot come back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.cloud_users import user_headers
from support.secure_broker import Peer, cloud_settings, connects
from support.waiting import eventually

from helmet_cloud.adapters.dynsec import INGEST_ROLE, DynsecAdmin, locker_acls
from helmet_cloud.app import create_app
from helmet_protocol.enrolment import read_bundle_file
from helmet_sim.broker import Broker

ManagingCloud = tuple[int, TestClient, dict[str, str]]


@pytest.fixture
def managing_cloud(
    secure_broker: tuple[Broker, DynsecAdmin], tmp_path: Path, database_url: str
) -> Iterator[ManagingCloud]:
    """The secure broker's port, the cloud app managing locker users on it, and an admin's headers."""
    broker, _ = secure_broker
    settings = cloud_settings(broker, database_url=database_url, data_dir=tmp_path / "cloud")
    with TestClient(create_app(settings)) as api:
        yield broker.port, api, user_headers(api, settings, role="admin")


def register_locker(api: TestClient, headers: dict[str, str]) -> str:
    """Station ST-1 and locker LK-0001 through the API; returns the broker password shown once at registration."""
    station = {"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8}
    assert api.post("/api/stations", headers=headers, json=station).status_code == 201
    resp = api.post("/api/lockers", headers=headers, json={"id": "LK-0001", "station_id": "ST-1", "slot_count": 6})
    assert resp.status_code == 201, resp.text
    password: str = resp.json()["mqtt_password"]
    return password


def test_a_locker_only_reaches_its_own_topics(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    broker, admin = secure_broker
    one, two = admin.create_locker("LK-0001"), admin.create_locker("LK-0002")
    cloud = Peer(broker.port, "cloud", "cloud-secret")
    eventually(lambda: cloud.accepted)
    assert cloud.subscribe("helmet/v1/+/events")
    lk1 = Peer(broker.port, "LK-0001", one)
    lk2 = Peer(broker.port, "LK-0002", two)
    try:
        eventually(lambda: lk1.connect_rc is not None and lk2.connect_rc is not None)
        # Own topics: allowed.
        assert lk1.subscribe("helmet/v1/LK-0001/cmd")
        lk1.client.publish("helmet/v1/LK-0001/events", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: "helmet/v1/LK-0001/events" in cloud.topics)
        # Another locker's topics and the whole tree: refused.
        assert not lk1.subscribe("helmet/v1/LK-0002/cmd")
        assert not lk1.subscribe("#")
        assert not lk1.subscribe("helmet/v1/+/events")
        lk1.client.publish("helmet/v1/LK-0002/events", b"{}", qos=1).wait_for_publish(5)
        lk1.client.publish("helmet/v1/LK-0001/cmd", b"{}", qos=1).wait_for_publish(5)
        lk2.client.publish("helmet/v1/LK-0002/events", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: "helmet/v1/LK-0002/events" in cloud.topics)
        assert cloud.topics.count("helmet/v1/LK-0002/events") == 1  # only LK-0002's own message
    finally:
        for p in (lk1, lk2, cloud):
            p.close()


def test_one_lockers_credentials_cannot_take_over_another_session(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    """The probe: LK-0001's user with client id LK-0002 threw the real LK-0002 off, resumed its session and
    read its commands; with an ingest worker's client id it received another locker's events."""
    broker, admin = secure_broker
    one, two = admin.create_locker("LK-0001"), admin.create_locker("LK-0002")
    real = Peer(broker.port, "LK-0002", two, clean_session=False)
    worker = Peer(broker.port, "cloud", "cloud-secret", client_id="ingest-1")
    try:
        eventually(lambda: real.accepted and worker.accepted)
        assert real.subscribe("helmet/v1/LK-0002/cmd")
        for victim in ("LK-0002", "ingest-1", "api-1"):
            for clean in (True, False):
                intruder = Peer(broker.port, "LK-0001", one, client_id=victim, clean_session=clean)
                try:
                    eventually(lambda: intruder.connect_rc is not None)  # noqa: B023
                    assert intruder.refused, f"LK-0001 got in as {victim} (clean session: {clean})"
                    assert intruder.session_present is False
                finally:
                    intruder.close()
        time.sleep(0.5)  # a takeover would have dropped them by now
        assert not real.disconnected.is_set() and not worker.disconnected.is_set()
        assert connects(broker.port, "LK-0001", one)  # its own id still works
    finally:
        real.close()
        worker.close()


def test_an_ingest_workers_user_reads_what_lockers_send_and_writes_only_acks_and_commands(
    secure_broker: tuple[Broker, DynsecAdmin],
) -> None:
    broker, admin = secure_broker
    admin.create_cloud_user("ingest", "ingest-secret", role=INGEST_ROLE)
    one = admin.create_locker("LK-0001")
    worker = Peer(broker.port, "ingest", "ingest-secret", client_id="ingest-1")
    lk = Peer(broker.port, "LK-0001", one)
    try:
        eventually(lambda: worker.accepted and lk.accepted)
        assert worker.subscribe("$share/ingest/helmet/v1/+/events") and worker.subscribe("helmet/v1/+/status")
        assert not worker.subscribe("helmet/v1/#") and not worker.subscribe("$CONTROL/dynamic-security/v1/response")
        assert lk.subscribe("helmet/v1/LK-0001/ack") and lk.subscribe("helmet/v1/LK-0001/config")
        lk.client.publish("helmet/v1/LK-0001/events", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: worker.topics == ["helmet/v1/LK-0001/events"])
        worker.client.publish("helmet/v1/LK-0001/config", b"forged", qos=1).wait_for_publish(5)
        worker.client.publish("helmet/v1/LK-0001/ack", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: lk.topics == ["helmet/v1/LK-0001/ack"])  # the ack, never the forged config
    finally:
        worker.close()
        lk.close()


def test_a_broker_set_up_before_the_binding_is_brought_up_to_it(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    """A locker user made the old way (no client id) is bound when the cloud starts (ensure_roles)."""
    broker, admin = secure_broker
    admin.command("createRole", rolename="locker-LK-0009", acls=locker_acls("LK-0009")[:4])
    admin.command("createClient", username="LK-0009", password="old-pi", roles=[{"rolename": "locker-LK-0009"}])
    assert connects(broker.port, "LK-0009", "old-pi", client_id="LK-0002")  # the hole, before
    admin.ensure_roles(["LK-0009", "LK-0404"])  # LK-0404 has no broker user: skipped
    assert not connects(broker.port, "LK-0009", "old-pi", client_id="LK-0002")
    lk = Peer(broker.port, "LK-0009", "old-pi")
    try:
        eventually(lambda: lk.accepted)
        assert lk.subscribe("helmet/v1/LK-0009/cmd")  # the role gained today's ACLs too
    finally:
        lk.close()


def test_a_locker_receives_nothing_but_its_own_topics(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    """What reaches the locker, not only what it may subscribe to: with receiving denied by default, its role
    must still let its own commands through, and nothing else arrives."""
    broker, admin = secure_broker
    one = admin.create_locker("LK-0001")
    lk1 = Peer(broker.port, "LK-0001", one)
    cloud = Peer(broker.port, "cloud", "cloud-secret")
    try:
        eventually(lambda: lk1.accepted and cloud.accepted)
        assert lk1.subscribe("helmet/v1/LK-0001/cmd") and lk1.subscribe("helmet/v1/LK-0001/config")
        cloud.client.publish("helmet/v1/LK-0002/cmd", b"{}", qos=1).wait_for_publish(5)
        cloud.client.publish("helmet/v1/LK-0001/cmd", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: lk1.topics == ["helmet/v1/LK-0001/cmd"])
    finally:
        lk1.close()
        cloud.close()


def test_wrong_passwords_and_decommissioned_lockers_are_refused(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    broker, admin = secure_broker
    password = admin.create_locker("LK-0001")
    assert not connects(broker.port, "LK-0001", "guess")
    live = Peer(broker.port, "LK-0001", password)
    eventually(lambda: live.accepted)
    admin.delete_locker("LK-0001")
    assert live.disconnected.wait(5), "a decommissioned locker must be cut off at once"
    live.close()
    assert not connects(broker.port, "LK-0001", password)


def test_registering_a_locker_creates_its_broker_user_and_revoking_cuts_it_off(managing_cloud: ManagingCloud) -> None:
    port, api, staff = managing_cloud
    password = register_locker(api, staff)
    assert password and api.get("/api/lockers/LK-0001", headers=staff).json()["mqtt_password"] is None
    locker = Peer(port, "LK-0001", password)
    eventually(lambda: locker.accepted)
    assert locker.subscribe("helmet/v1/LK-0001/config")
    assert not locker.subscribe("helmet/v1/+/config")
    # A replaced Pi gets a new password; the old one no longer connects.
    fresh = api.post("/api/lockers/LK-0001/credentials", headers=staff).json()["mqtt_password"]
    assert not connects(port, "LK-0001", password)
    assert api.post("/api/lockers/LK-0001/revoke", headers=staff).status_code == 204
    assert locker.disconnected.wait(5)
    locker.close()
    assert not connects(port, "LK-0001", fresh)


def test_enrolled_credentials_work_until_a_replacement_or_decommissioning(managing_cloud: ManagingCloud) -> None:
    port, api, admin_headers = managing_cloud
    registered = register_locker(api, admin_headers)

    def enrol() -> str:
        code = api.post("/api/lockers/LK-0001/enrolment", headers=admin_headers).json()["code"]
        password = read_bundle_file(api.post("/api/enrolment", json={"code": code}).content).mqtt.password
        assert password
        return password

    first = enrol()
    assert first != registered  # the password shown at registration is replaced by the enrolled one
    pi = Peer(port, "LK-0001", first)
    eventually(lambda: pi.accepted)
    assert pi.subscribe("helmet/v1/LK-0001/cmd") and not pi.subscribe("#")
    # A replacement Pi enrols: the running one is dropped and its password refused.
    second = enrol()
    assert pi.disconnected.wait(5), "the replaced Pi must be cut off at once"
    pi.close()
    assert not connects(port, "LK-0001", first)
    new_pi = Peer(port, "LK-0001", second)
    eventually(lambda: new_pi.accepted)
    # Decommissioning: cut off at once, and a code handed out before is dead too.
    pending = api.post("/api/lockers/LK-0001/enrolment", headers=admin_headers).json()["code"]
    assert api.post("/api/lockers/LK-0001/revoke", headers=admin_headers).status_code == 204
    assert new_pi.disconnected.wait(5)
    new_pi.close()
    refused = api.post("/api/enrolment", json={"code": pending})
    assert refused.status_code == 410 and "decommissioned" in refused.json()["detail"]
    assert not connects(port, "LK-0001", second)

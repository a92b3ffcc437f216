"""Per-locker broker users and the pattern ACL, on a real Mosquitto with dynamic security.

A locker can write only its own topics and read only its own commands, config
and acks; it cannot listen to everything; a decommissioned locker is cut off at
once and cannot come back.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.waiting import eventually

from helmet_cloud.broker_admin import DynsecAdmin
from helmet_sim.broker import Broker, start_mosquitto

PLUGIN = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[Broker, DynsecAdmin]]:
    ctrl = shutil.which("mosquitto_ctrl")
    if ctrl is None or not PLUGIN.exists():
        pytest.skip("mosquitto's dynamic-security plugin is not installed")
    dynsec = tmp_path / "dynamic-security.json"
    subprocess.run([ctrl, "dynsec", "init", str(dynsec), "admin", "admin-secret"], check=True, capture_output=True)
    broker = start_mosquitto(
        tmp_path / "broker",
        extra_conf=f"allow_anonymous false\nplugin {PLUGIN}\nplugin_opt_config_file {dynsec}\n",
        anonymous=False,
    )
    admin = DynsecAdmin("127.0.0.1", broker.port, "admin", "admin-secret")
    admin.ensure_roles()
    yield broker, admin
    admin.close()
    broker.stop()


class Peer:
    def __init__(self, port: int, username: str, password: str) -> None:
        self.received: list[str] = []
        self.connect_rc: Any = None
        self.disconnected = threading.Event()
        self.subacks: dict[int, list[Any]] = {}
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{username}-peer")
        c.username_pw_set(username, password)
        c.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "connect_rc", rc)
        c.on_disconnect = lambda *_a: self.disconnected.set()
        c.on_message = lambda _c, _u, msg: self.received.append(msg.topic)
        c.on_subscribe = lambda _c, _u, mid, codes, _p: self.subacks.__setitem__(mid, codes)
        c.reconnect_delay_set(1, 1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c

    def subscribe(self, topic: str) -> bool:
        _, mid = self.client.subscribe(topic, qos=1)
        codes = eventually(lambda: self.subacks.get(mid), timeout=5)
        return not codes[0].is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_locker_only_reaches_its_own_topics(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    broker, admin = secure_broker
    admin.create_cloud_user("cloud", "cloud-secret")
    one, two = admin.create_locker("LK-0001"), admin.create_locker("LK-0002")
    cloud = Peer(broker.port, "cloud", "cloud-secret")
    eventually(lambda: cloud.connect_rc is not None and not cloud.connect_rc.is_failure)
    assert cloud.subscribe("helmet/v1/+/events")
    lk1 = Peer(broker.port, "LK-0001", one)
    lk2 = Peer(broker.port, "LK-0002", two)
    try:
        eventually(lambda: lk1.connect_rc is not None and lk2.connect_rc is not None)
        # Own topics: allowed.
        assert lk1.subscribe("helmet/v1/LK-0001/cmd")
        lk1.client.publish("helmet/v1/LK-0001/events", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: "helmet/v1/LK-0001/events" in cloud.received)
        # Another locker's topics and the whole tree: refused.
        assert not lk1.subscribe("helmet/v1/LK-0002/cmd")
        assert not lk1.subscribe("#")
        assert not lk1.subscribe("helmet/v1/+/events")
        lk1.client.publish("helmet/v1/LK-0002/events", b"{}", qos=1).wait_for_publish(5)
        lk1.client.publish("helmet/v1/LK-0001/cmd", b"{}", qos=1).wait_for_publish(5)
        lk2.client.publish("helmet/v1/LK-0002/events", b"{}", qos=1).wait_for_publish(5)
        eventually(lambda: "helmet/v1/LK-0002/events" in cloud.received)
        assert cloud.received.count("helmet/v1/LK-0002/events") == 1  # only LK-0002's own message
    finally:
        for p in (lk1, lk2, cloud):
            p.close()


def test_wrong_passwords_and_decommissioned_lockers_are_refused(secure_broker: tuple[Broker, DynsecAdmin]) -> None:
    broker, admin = secure_broker
    password = admin.create_locker("LK-0001")
    wrong = Peer(broker.port, "LK-0001", "guess")
    eventually(lambda: wrong.connect_rc is not None)
    assert wrong.connect_rc.is_failure
    wrong.close()
    live = Peer(broker.port, "LK-0001", password)
    eventually(lambda: live.connect_rc is not None and not live.connect_rc.is_failure)
    admin.delete_locker("LK-0001")
    assert live.disconnected.wait(5), "a decommissioned locker must be cut off at once"
    live.close()
    again = Peer(broker.port, "LK-0001", password)
    eventually(lambda: again.connect_rc is not None)
    assert again.connect_rc.is_failure
    again.close()


def test_registering_a_locker_creates_its_broker_user_and_revoking_cuts_it_off(
    secure_broker: tuple[Broker, DynsecAdmin], tmp_path: Path, database_url: str
) -> None:
    from fastapi.testclient import TestClient
    from support.cloud_users import user_headers

    from helmet_cloud.app import create_app
    from helmet_cloud.settings import CloudSettings

    broker, admin = secure_broker
    admin.create_cloud_user("cloud", "cloud-secret")
    settings = CloudSettings(
        database_url=database_url,
        data_dir=tmp_path / "cloud",
        mqtt_port=broker.port,
        mqtt_username="cloud",
        mqtt_password="cloud-secret",
        broker_admin_username="admin",
        broker_admin_password="admin-secret",
    )
    with TestClient(create_app(settings)) as api:
        staff = user_headers(api, settings, role="admin")
        assert (
            api.post(
                "/api/stations", headers=staff, json={"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8}
            ).status_code
            == 201
        )
        registered = api.post(
            "/api/lockers", headers=staff, json={"id": "LK-0001", "station_id": "ST-1", "slot_count": 6}
        ).json()
        password = registered["mqtt_password"]
        assert password and api.get("/api/lockers/LK-0001", headers=staff).json()["mqtt_password"] is None
        locker = Peer(broker.port, "LK-0001", password)
        eventually(lambda: locker.connect_rc is not None and not locker.connect_rc.is_failure)
        assert locker.subscribe("helmet/v1/LK-0001/config")
        assert not locker.subscribe("helmet/v1/+/config")
        # A replaced Pi gets a new password; the old one no longer connects.
        fresh = api.post("/api/lockers/LK-0001/credentials", headers=staff).json()["mqtt_password"]
        stale = Peer(broker.port, "LK-0001", password)
        eventually(lambda: stale.connect_rc is not None)
        assert stale.connect_rc.is_failure
        stale.close()
        assert api.post("/api/lockers/LK-0001/revoke", headers=staff).status_code == 204
        assert locker.disconnected.wait(5)
        locker.close()
        gone = Peer(broker.port, "LK-0001", fresh)
        eventually(lambda: gone.connect_rc is not None)
        assert gone.connect_rc.is_failure
        gone.close()


def test_enrolled_credentials_work_until_a_replacement_or_decommissioning(
    secure_broker: tuple[Broker, DynsecAdmin], tmp_path: Path, database_url: str
) -> None:
    from fastapi.testclient import TestClient
    from support.cloud_users import user_headers

    from helmet_cloud.app import create_app
    from helmet_cloud.settings import CloudSettings
    from helmet_protocol.enrolment import read_bundle_file

    broker, admin = secure_broker
    admin.create_cloud_user("cloud", "cloud-secret")
    settings = CloudSettings(
        database_url=database_url,
        data_dir=tmp_path / "cloud",
        mqtt_port=broker.port,
        mqtt_username="cloud",
        mqtt_password="cloud-secret",
        broker_admin_username="admin",
        broker_admin_password="admin-secret",
    )
    with TestClient(create_app(settings)) as api:
        admin_headers = user_headers(api, settings, role="admin")
        api.post("/api/stations", headers=admin_headers, json={"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8})
        body = {"id": "LK-0001", "station_id": "ST-1", "slot_count": 6}
        registered = api.post("/api/lockers", headers=admin_headers, json=body).json()["mqtt_password"]

        def enrol() -> str:
            code = api.post("/api/lockers/LK-0001/enrolment", headers=admin_headers).json()["code"]
            password = read_bundle_file(api.post("/api/enrolment", json={"code": code}).content).mqtt.password
            assert password
            return password

        first = enrol()
        assert first != registered  # the password shown at registration is replaced by the enrolled one
        pi = Peer(broker.port, "LK-0001", first)
        eventually(lambda: pi.connect_rc is not None and not pi.connect_rc.is_failure)
        assert pi.subscribe("helmet/v1/LK-0001/cmd") and not pi.subscribe("#")
        # A replacement Pi enrols: the running one is dropped and its password refused.
        second = enrol()
        assert pi.disconnected.wait(5), "the replaced Pi must be cut off at once"
        pi.close()
        stale = Peer(broker.port, "LK-0001", first)
        eventually(lambda: stale.connect_rc is not None)
        assert stale.connect_rc.is_failure
        stale.close()
        new_pi = Peer(broker.port, "LK-0001", second)
        eventually(lambda: new_pi.connect_rc is not None and not new_pi.connect_rc.is_failure)
        # Decommissioning: cut off at once, and a code handed out before is dead too.
        pending = api.post("/api/lockers/LK-0001/enrolment", headers=admin_headers).json()["code"]
        assert api.post("/api/lockers/LK-0001/revoke", headers=admin_headers).status_code == 204
        assert new_pi.disconnected.wait(5)
        new_pi.close()
        refused = api.post("/api/enrolment", json={"code": pending})
        assert refused.status_code == 410 and "decommissioned" in refused.json()["detail"]
        gone = Peer(broker.port, "LK-0001", second)
        eventually(lambda: gone.connect_rc is not None)
        assert gone.connect_rc.is_failure
        gone.close()

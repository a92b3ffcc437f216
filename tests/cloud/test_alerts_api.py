"""Alerts over HTTP: a locker's real Last Will through Mosquitto, then staff acknowledge and resolve it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from support.cloud_events import status
from support.cloud_users import resident_headers, user_headers

from helmet_cloud.settings import CloudSettings


def connect_locker(port: int, boot_id: str) -> mqtt.Client:
    """A locker's connection as the edge makes it: retained Last Will, then "online"."""
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"LK-0001-{boot_id}")
    topic, will = status("LK-0001", datetime.now(UTC), online=False, boot_id=boot_id)
    c.will_set(topic, will, qos=1, retain=True)
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    topic, online = status("LK-0001", datetime.now(UTC), online=True, boot_id=boot_id)
    c.publish(topic, online, qos=1, retain=True).wait_for_publish(5)
    return c


def poll(
    api: TestClient, headers: dict[str, str], query: str, want: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict[str, Any]] = api.get(f"/api/alerts?{query}", headers=headers).json()
        if len(rows) == want or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_staff_see_acknowledge_and_resolve_a_locker_offline_alert(api: TestClient, settings: CloudSettings) -> None:
    staff = user_headers(api, settings, role="staff", username="sam")
    resident = resident_headers(api, settings, "+41790000077")
    assert api.post("/api/stations", headers=staff, json={"id": "ST-1", "name": "Hall", "lat": 47, "lon": 8}).is_success
    assert api.post("/api/lockers", headers=staff, json={"id": "LK-0001", "station_id": "ST-1", "slot_count": 2})
    locker = connect_locker(settings.mqtt_port, "b-1")
    assert poll(api, staff, "kind=locker_offline", 0, timeout=0.5) == []
    # The process dies without a DISCONNECT: the broker publishes the Will.
    locker.loop_stop()
    sock = locker.socket()
    assert sock is not None
    sock.close()
    [alert] = poll(api, staff, "kind=locker_offline&status=open", 1)
    assert (alert["subject_type"], alert["subject_id"], alert["severity"]) == ("locker", "LK-0001", "critical")

    # Only staff: anonymous callers must sign in, residents are refused.
    assert api.get("/api/alerts").status_code == 401
    assert api.get("/api/alerts", headers=resident).status_code == 403
    assert api.post(f"/api/alerts/{alert['id']}/acknowledge", headers=resident).status_code == 403
    assert api.post(f"/api/alerts/{alert['id']}/resolve").status_code == 401
    assert api.post("/api/alerts/999999/acknowledge", headers=staff).status_code == 404

    acked = api.post(f"/api/alerts/{alert['id']}/acknowledge", headers=staff).json()
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "sam") and acked["acknowledged_at"]
    again = api.post(f"/api/alerts/{alert['id']}/acknowledge", headers=staff).json()
    assert again["acknowledged_at"] == acked["acknowledged_at"]
    assert poll(api, staff, "status=acknowledged&subject_type=locker&subject_id=LK-0001", 1)[0]["id"] == alert["id"]
    assert poll(api, staff, "status=unresolved", 1)[0]["id"] == alert["id"]

    done = api.post(f"/api/alerts/{alert['id']}/resolve", headers=staff).json()
    assert (done["status"], done["resolved_by"]) == ("resolved", "sam") and done["resolved_at"]
    assert api.post(f"/api/alerts/{alert['id']}/acknowledge", headers=staff).status_code == 409
    assert api.get("/api/alerts?status=open", headers=staff).json() == []

    # Back online after a restart: nothing new opens.
    back = connect_locker(settings.mqtt_port, "b-2")
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not api.get("/api/stations/ST-1").json()["lockers_online"]:
            time.sleep(0.05)
        assert api.get("/api/stations/ST-1").json()["lockers_online"] == 1
        assert [a["status"] for a in api.get("/api/alerts?kind=locker_offline", headers=staff).json()] == ["resolved"]
    finally:
        back.disconnect()
        back.loop_stop()

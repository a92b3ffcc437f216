"""Alerts over HTTP: a locker's real Last Will through Mosquitto, then staff acknowledge and resolve it."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlmodel import Session

from helmet_cloud.db import make_engine
from helmet_cloud.models import User
from helmet_cloud.security import hash_password
from helmet_cloud.settings import CloudSettings
from helmet_protocol.messages import Status


def staff_headers(api: TestClient, settings: CloudSettings) -> dict[str, str]:
    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        s.add(User(username="sam", password_hash=hash_password("s3cret pass"), role="staff"))
        s.commit()
    engine.dispose()
    resp = api.post("/api/auth/login", json={"username": "sam", "password": "s3cret pass"})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def resident_headers(api: TestClient, settings: CloudSettings, phone: str) -> dict[str, str]:
    assert api.post("/api/auth/code", json={"phone": phone}).status_code == 202
    sms = [json.loads(m) for m in Path(settings.sms_backend.removeprefix("file:")).read_text().splitlines()]
    code = re.search(r"\d{6}", [m for m in sms if m["phone"] == phone][-1]["text"])
    assert code is not None
    resp = api.post("/api/auth/verify", json={"phone": phone, "code": code.group(0)})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def status(online: bool, boot_id: str) -> bytes:
    return Status(locker_id="LK-0001", online=online, boot_id=boot_id, fw="0.1.0", ts=datetime.now(UTC)).to_json()


def connect_locker(port: int, boot_id: str) -> mqtt.Client:
    """A locker's connection as the edge makes it: retained Last Will, then "online"."""
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"LK-0001-{boot_id}")
    c.will_set("helmet/v1/LK-0001/status", status(False, boot_id), qos=1, retain=True)
    c.connect("127.0.0.1", port, keepalive=5)
    c.loop_start()
    c.publish("helmet/v1/LK-0001/status", status(True, boot_id), qos=1, retain=True).wait_for_publish(5)
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
    staff = staff_headers(api, settings)
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

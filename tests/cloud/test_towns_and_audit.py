"""Towns group stations; every staff, technician and admin action leaves an audit entry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from support.cloud_users import user_headers
from support.processes import BIN

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.models import AuditEntry
from helmet_cloud.settings import CloudSettings

STATION = {"id": "DE-NORD1", "name": "Nordbahnhof", "lat": 52.53, "lon": 13.39}


def test_stations_belong_to_a_town_and_list_by_town(api: TestClient, settings: CloudSettings) -> None:
    admin = user_headers(api, settings, role="admin")
    assert [t["id"] for t in api.get("/api/towns").json()] == ["default"]  # existing stations live here

    resp = api.post(
        "/api/towns", json={"id": "riverton", "name": "Riverton", "timezone": "Europe/Berlin"}, headers=admin
    )
    assert resp.status_code == 201, resp.text
    assert api.post("/api/stations", json={**STATION, "town_id": "riverton"}, headers=admin).status_code == 201
    assert api.post("/api/stations", json={**STATION, "id": "DE-OLD1"}, headers=admin).status_code == 201

    assert [s["id"] for s in api.get("/api/stations", params={"town": "riverton"}).json()] == ["DE-NORD1"]
    assert [s["id"] for s in api.get("/api/stations", params={"town": "default"}).json()] == ["DE-OLD1"]
    assert api.get("/api/towns/riverton").json()["timezone"] == "Europe/Berlin"


def test_bad_towns_are_refused_and_change_nothing(api: TestClient, settings: CloudSettings) -> None:
    admin = user_headers(api, settings, role="admin")
    staff = user_headers(api, settings, role="staff", username="clerk")
    bad_zone = api.post("/api/towns", json={"id": "x", "name": "X", "timezone": "Mars/Olympus"}, headers=admin)
    assert bad_zone.status_code == 422 and "time zone" in bad_zone.text
    assert api.post("/api/towns", json={"id": "y", "name": "Y"}, headers=staff).status_code == 403
    unknown = api.post("/api/stations", json={**STATION, "town_id": "nowhere"}, headers=admin)
    assert unknown.status_code == 422 and "no town nowhere" in unknown.text
    assert [t["id"] for t in api.get("/api/towns").json()] == ["default"]
    assert api.get("/api/stations").json() == []
    assert api.get("/api/audit", headers=admin).json() == []


def test_staff_actions_are_audited_with_who_what_and_when(api: TestClient, settings: CloudSettings) -> None:
    staff = user_headers(api, settings, role="staff", username="alice")
    tech = user_headers(api, settings, role="technician", username="bob")
    assert api.post("/api/stations", json=STATION, headers=staff).status_code == 201
    locker = {"id": "DE-L0001", "station_id": "DE-NORD1", "slot_count": 6}
    assert api.post("/api/lockers", json=locker, headers=tech).status_code == 201

    entries = api.get("/api/audit", headers=staff).json()
    assert [(e["actor"], e["role"], e["action"], e["subject_id"]) for e in entries] == [
        ("bob", "technician", "locker.register", "DE-L0001"),
        ("alice", "staff", "station.create", "DE-NORD1"),
    ]
    assert entries[0]["detail"] == {"pin_profile": "pi-gpio-6", "slot_count": 6, "station_id": "DE-NORD1"}
    assert api.get("/api/audit", params={"actor": "alice"}, headers=staff).json()[0]["action"] == "station.create"
    older = api.get("/api/audit", params={"before_id": entries[0]["id"]}, headers=staff).json()
    assert [e["action"] for e in older] == ["station.create"]
    assert api.get("/api/audit", headers=tech).status_code == 403  # technicians do not read the log


def test_a_refused_action_leaves_no_audit_entry(api: TestClient, settings: CloudSettings) -> None:
    staff = user_headers(api, settings, role="staff")
    assert api.post("/api/stations", json=STATION, headers=staff).status_code == 201
    assert api.post("/api/stations", json=STATION, headers=staff).status_code == 409
    assert [e["action"] for e in api.get("/api/audit", headers=staff).json()] == ["station.create"]


def test_the_command_line_audits_accounts_and_key_changes(settings: CloudSettings, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HELMET_DATABASE_URL": settings.database_url,
        "HELMET_DATA_DIR": str(settings.data_dir),
    }
    cli = [str(BIN / "helmet-cloud")]
    run = subprocess.run(
        [*cli, "add-user", "carol", "--role", "staff", "--password", "pw-1234567890ab"], env=env, capture_output=True
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run([*cli, "keys", "rotate"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    kid = run.stdout.split(":")[-1].strip()

    engine = make_engine(settings.database_url)
    with Session(engine) as s:
        rows = s.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
    engine.dispose()
    assert [(r.action, r.subject_id) for r in rows] == [("user.create", "carol"), ("keys.rotate", kid)]
    assert all(r.actor.startswith("cli:") for r in rows)
    assert "pw-1234567890ab" not in str([r.detail for r in rows])

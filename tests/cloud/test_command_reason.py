"""A command sent by hand keeps why (issue 17, finding 11): the API takes an optional reason, the command and
the audit entry keep it; the pages require one for a remote open (tests/web/test_remote_open_page.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.cloud_events import Recorder, inbound, register_town, status
from support.cloud_users import user_headers

from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.settings import CloudSettings

URL = "/api/lockers/LK-000A/commands"


def test_the_reason_for_a_remote_open_goes_into_the_command_and_the_audit_log(
    api: TestClient, settings: CloudSettings, engine: Engine
) -> None:
    staff = user_headers(api, settings, role="staff")
    register_town(api, staff, {"LK-000A": ("ST-A", 4)})
    tech = user_headers(api, settings, role="technician", username="tech")
    Ingestor(engine, Recorder()).handle(inbound([status("LK-000A", datetime.now(UTC), online=True)]))

    sent = api.post(URL, headers=tech, json={"op": "unlock", "slot": 2, "reason": "  resident phoned:\n door stuck "})
    assert sent.status_code == 202, sent.text
    assert sent.json()["reason"] == "resident phoned: door stuck"
    plain = api.post(URL, headers=tech, json={"op": "selftest"})  # no reason: still one call
    assert (plain.status_code, plain.json()["reason"]) == (202, None)
    assert api.post(URL, headers=tech, json={"op": "unlock", "slot": 2, "reason": "x" * 201}).status_code == 422

    listed = {c["op"]: c["reason"] for c in api.get(URL, headers=tech).json()}
    assert listed == {"unlock": "resident phoned: door stuck", "selftest": None}
    audit = api.get("/api/audit", headers=staff, params={"action": "command.unlock"}).json()
    assert [(a["actor"], a["subject_id"], a["detail"]) for a in audit] == [
        ("tech", "LK-000A/2", {"reason": "resident phoned: door stuck"})
    ]
    [selftest] = api.get("/api/audit", headers=staff, params={"action": "command.selftest"}).json()
    assert selftest["detail"] is None

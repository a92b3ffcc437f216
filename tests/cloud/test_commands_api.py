"""Technicians' commands through the API: the protocol's ops, refused in a sentence when they cannot go."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from support.cloud_events import Recorder, inbound, register_town, status
from support.cloud_users import user_headers

from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.settings import CloudSettings

URL = "/api/lockers/LK-000A/commands"


@pytest.fixture
def tech(api: TestClient, settings: CloudSettings) -> dict[str, str]:
    register_town(api, user_headers(api, settings, role="staff"), {"LK-000A": ("ST-A", 4)})
    return user_headers(api, settings, role="technician", username="tech")


def test_an_offline_locker_is_refused_in_a_sentence(api: TestClient, tech: dict[str, str]) -> None:
    resp = api.post(URL, headers=tech, json={"op": "unlock", "slot": 1})
    assert (resp.status_code, resp.json()) == (409, {"detail": "locker LK-000A is offline"})


def test_ops_the_cloud_sends_itself_and_slots_the_locker_lacks_are_refused(
    api: TestClient, tech: dict[str, str], engine: Engine
) -> None:
    Ingestor(engine, Recorder()).handle(inbound([status("LK-000A", datetime.now(UTC), online=True)]))
    for op in ("borrow", "resend"):
        resp = api.post(URL, headers=tech, json={"op": op, "slot": 1})
        assert resp.status_code == 422 and "is not sent by hand" in resp.json()["detail"], resp.text
    resp = api.post(URL, headers=tech, json={"op": "unlock", "slot": 5})
    assert (resp.status_code, resp.json()) == (422, {"detail": "unlock needs a slot from 1 to 4"})
    assert api.post(URL, headers=tech, json={"op": "unlock", "slot": 257}).status_code == 422  # past MAX_SLOTS
    assert api.post(URL, headers=tech, json={"op": "self_destruct"}).status_code == 422
    assert api.get("/api/lockers/LK-000A/commands", headers=tech).json() == []  # nothing was sent

"""The HTTP API against a real database and a real broker."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from support.cloud_users import resident_headers, user_headers

from helmet_cloud.settings import CloudSettings
from helmet_protocol.keys import load_public_keys
from helmet_protocol.messages import utcnow
from helmet_protocol.passes import Role, verify_pass


def test_staff_register_a_station_and_locker_and_see_its_slots(api: TestClient, settings: CloudSettings) -> None:
    staff = user_headers(api, settings, role="admin")
    assert (
        api.post(
            "/api/stations", headers=staff, json={"id": "ST-1", "name": "Hall", "lat": 47.3, "lon": 8.5}
        ).status_code
        == 201
    )
    resp = api.post("/api/lockers", headers=staff, json={"id": "LK-0001", "station_id": "ST-1", "slot_count": 6})
    assert resp.status_code == 201, resp.text
    assert [s["state"] for s in resp.json()["slots"]] == ["empty"] * 6
    station = api.get("/api/stations/ST-1").json()
    assert (station["helmets_available"], station["free_slots"], station["lockers"]) == (0, 6, 1)
    assert (
        api.post(
            "/api/lockers", headers=staff, json={"id": "LK-0002", "station_id": "ST-9", "slot_count": 6}
        ).status_code
        == 422
    )
    assert (
        api.post("/api/stations", headers=staff, json={"id": "ST-1", "name": "x", "lat": 0, "lon": 0}).status_code
        == 409
    )


def test_a_resident_signs_in_by_code_and_gets_a_pass_a_locker_accepts(api: TestClient, settings: CloudSettings) -> None:
    resident = resident_headers(api, settings, "+41 79 123 45 67")
    resp = api.post("/api/passes", headers=resident, json={"quantity": 2})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    keys = json.loads((settings.keys_path).read_text())
    from helmet_protocol.keys import load_private_key, public_key_b64

    public = load_public_keys({kid: public_key_b64(load_private_key(b64)) for kid, b64 in keys["keys"].items()})
    p = verify_pass(body["text"], keys=public, now=utcnow(), max_quantity=settings.max_quantity)
    assert (p.pass_id, p.quantity, p.role) == (body["pass_id"], 2, Role.RESIDENT)


def test_a_wrong_code_is_refused_and_attempts_are_limited(api: TestClient) -> None:
    api.post("/api/auth/code", json={"phone": "+41791110000"})
    for _ in range(5):
        assert api.post("/api/auth/verify", json={"phone": "+41791110000", "code": "000000"}).status_code == 401
    # The limits under concurrency and across new codes: test_sign_in_limits.py.
    refused = api.post("/api/auth/verify", json={"phone": "+41791110000", "code": "000000"})
    assert refused.status_code == 429 and "too many tries" in refused.text


@pytest.mark.parametrize("body", [{"phone": "call me"}, {"phone": "1" * 40}, {}])
def test_bad_bodies_get_a_clear_422(api: TestClient, body: dict[str, str]) -> None:
    resp = api.post("/api/auth/code", json=body)
    assert resp.status_code == 422
    assert resp.json()["detail"]


def test_the_per_resident_limit_holds_under_parallel_requests(api: TestClient, settings: CloudSettings) -> None:
    resident = resident_headers(api, settings, "+41790000001")
    with ThreadPoolExecutor(6) as pool:
        codes = list(
            pool.map(lambda _: api.post("/api/passes", headers=resident, json={"quantity": 1}).status_code, range(6))
        )
    # The limit is 3 helmets: exactly three passes of one helmet each.
    assert sorted(codes) == [201, 201, 201, 409, 409, 409]


def test_roles_are_enforced(api: TestClient, settings: CloudSettings) -> None:
    resident = resident_headers(api, settings, "+41790000002")
    assert api.post("/api/passes", json={"quantity": 1}).status_code == 401
    assert api.post("/api/passes", headers={"Authorization": "Bearer nope"}, json={"quantity": 1}).status_code == 401
    assert (
        api.post("/api/stations", headers=resident, json={"id": "ST-2", "name": "x", "lat": 0, "lon": 0}).status_code
        == 403
    )
    assert api.post("/api/passes/technician", headers=resident).status_code == 403
    staff = user_headers(api, settings, role="admin")
    assert api.post("/api/passes", headers=staff, json={"quantity": 1}).status_code == 403
    assert api.post("/api/passes/technician", headers=staff).status_code == 201


def test_readiness_reports_database_and_broker(api: TestClient) -> None:
    health = api.get("/health").json()
    assert health["status"] == "ok" and {"mqtt", "ingest_mqtt"} <= set(health)
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json()["database"] is True
